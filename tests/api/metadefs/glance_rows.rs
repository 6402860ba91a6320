//! A database Glance filled (`glance-manage db load_metadefs` writes these rows: Python's
//! `json.dumps` text, comma-joined `required`, protected seeded resource types) is served in
//! place; and every change announces Glance's event through the `EventSink`.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::*;
use crate::all_databases;
use glint::domain::events::{Event, EventSink};
use glint::domain::listing::PageLimits;
use glint::domain::metadefs::MetadefService;
use glint::domain::RequestContext;

const SEED: &[&str] = &[
    "INSERT INTO metadef_namespaces (id, namespace, display_name, description, visibility, \
     protected, owner, created_at, updated_at) VALUES (101, 'OS::Compute::Watchdog', \
     'Watchdog Behavior', 'Compute watchdog', 'public', TRUE, 'admin', \
     '2026-01-02 03:04:05', '2026-01-02 03:04:05')",
    "INSERT INTO metadef_resource_types (id, name, protected, created_at, updated_at) \
     VALUES (201, 'OS::Glance::Image', TRUE, '2026-01-02 03:04:05', NULL)",
    "INSERT INTO metadef_namespace_resource_types (resource_type_id, namespace_id, \
     properties_target, prefix, created_at, updated_at) VALUES (201, 101, NULL, 'hw_', \
     '2026-01-02 03:04:05', '2026-01-02 03:04:05')",
    "INSERT INTO metadef_properties (id, namespace_id, name, json_schema, created_at, \
     updated_at) VALUES (301, 101, 'watchdog_action', '{\"title\": \"Watchdog Action\", \
     \"type\": \"string\", \"enum\": [\"disabled\", \"reset\"], \"default\": \"reset\", \
     \"description\": \"What to do\"}', '2026-01-02 03:04:05', '2026-01-02 03:04:05')",
    "INSERT INTO metadef_objects (id, namespace_id, name, description, required, json_schema, \
     created_at, updated_at) VALUES (401, 101, 'Timer', 'A timer', 'period,unit', \
     '{\"period\": {\"title\": \"Period\", \"type\": \"integer\", \"minimum\": 1}, \
     \"unit\": {\"title\": \"Unit\", \"type\": \"string\"}}', '2026-01-02 03:04:05', NULL)",
    "INSERT INTO metadef_tags (id, namespace_id, name, created_at, updated_at) \
     VALUES (501, 101, 'watchdog', '2026-01-02 03:04:05', '2026-01-02 03:04:05')",
];

all_databases!(fn rows_glance_wrote_are_served(app, TRUSTED) {
    for statement in SEED {
        app.execute(statement).await;
    }
    let shown = get(&app, OTHER_READER, "/v2/metadefs/namespaces/OS::Compute::Watchdog").await;
    shown.assert_status(200);
    let shown = shown.json();
    assert_eq!(shown["display_name"], "Watchdog Behavior");
    assert_eq!(shown["protected"], true);
    assert_eq!(shown["owner"], "admin");
    assert_eq!(shown["created_at"], "2026-01-02T03:04:05Z");
    assert_eq!(shown["properties"]["watchdog_action"]["enum"], json!(["disabled", "reset"]));
    assert_eq!(shown["objects"][0]["required"], json!(["period", "unit"]));
    assert_eq!(shown["objects"][0]["properties"]["period"]["minimum"], 1);
    assert!(shown["objects"][0].get("updated_at").is_none(), "{shown}");
    assert_eq!(shown["tags"], json!([{"name": "watchdog"}]));
    assert_eq!(shown["resource_type_associations"][0]["prefix"], "hw_");

    let property = get(&app, OTHER_READER, "/v2/metadefs/namespaces/OS::Compute::Watchdog/properties/hw_watchdog_action?resource_type=OS::Glance::Image").await;
    property.assert_status(200);
    assert_eq!(property.json()["name"], "watchdog_action");
    let listed = get(&app, OTHER_READER, "/v2/metadefs/namespaces?resource_types=OS::Glance::Image").await.json();
    assert_eq!(names(&listed, "namespaces"), vec!["OS::Compute::Watchdog"]);
    let types = get(&app, OTHER_READER, "/v2/metadefs/resource_types").await.json();
    assert_eq!(types["resource_types"][0]["name"], "OS::Glance::Image");

    // Glint's own writes sit beside Glance's rows.
    post(&app, ADMIN, "/v2/metadefs/namespaces/OS::Compute::Watchdog/tags/extra", json!(null)).await.assert_status(201);
    let tags = get(&app, READER, "/v2/metadefs/namespaces/OS::Compute::Watchdog/tags?sort_key=name&sort_dir=asc").await.json();
    assert_eq!(names(&tags, "tags"), vec!["extra", "watchdog"]);
    let protected = delete(&app, ADMIN, "/v2/metadefs/namespaces/OS::Compute::Watchdog").await;
    protected.assert_status(403);
});

/// Keeps every event it is given.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<(String, Value)>>);

impl EventSink for Recorder {
    fn publish(&self, event: Event<'_>) {
        if let Ok(mut kept) = self.0.lock() {
            kept.push((event.event_type.to_owned(), event.payload));
        }
    }
}

fn admin() -> RequestContext {
    RequestContext {
        request_id: "req-test".to_owned(),
        user_id: Some("user".to_owned()),
        project_id: Some("owner".to_owned()),
        system_scope: None,
        domain_id: None,
        roles: vec!["admin".to_owned(), "member".to_owned(), "reader".to_owned()],
        service_roles: Vec::new(),
        is_admin: true,
        auth_token: None,
        service_catalog: Arc::from([]),
    }
}

all_databases!(fn every_change_is_announced(app, TRUSTED) {
    let recorder = Arc::new(Recorder::default());
    let policy = glint::policy::Enforcer::new(&app.config.policy).expect("policy");
    let service = MetadefService::new(
        app.database.metadef_repo(),
        Arc::new(policy),
        recorder.clone(),
        PageLimits { default: 25, max: 1000 },
    )
    .expect("service");
    let ctx = admin();
    service.create_namespace(&ctx, &json!({
        "namespace": "ns",
        "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "p_"}],
        "objects": [{"name": "o", "properties": {"x": {"title": "X", "type": "integer", "minimum": 0}}}],
        "tags": [{"name": "t"}],
        "properties": {"p": {"title": "P", "type": "string"}}
    })).await.expect("create");
    service.replace_namespace(&ctx, "ns", &json!({"namespace": "ns2"})).await.expect("replace");
    service.create_object(&ctx, "ns2", &json!({"name": "o2"})).await.expect("object");
    service.replace_object(&ctx, "ns2", "o2", &json!({"name": "o3"})).await.expect("object update");
    service.delete_object(&ctx, "ns2", "o3").await.expect("object delete");
    service.create_property(&ctx, "ns2", &json!({"name": "q", "title": "Q", "type": "string"})).await.expect("property");
    service.replace_property(&ctx, "ns2", "q", &json!({"name": "r", "title": "R", "type": "string"})).await.expect("property update");
    service.delete_property(&ctx, "ns2", "r").await.expect("property delete");
    service.create_tag(&ctx, "ns2", "u").await.expect("tag");
    service.rename_tag(&ctx, "ns2", "u", &json!({"name": "v"})).await.expect("tag rename");
    service.delete_tag(&ctx, "ns2", "v").await.expect("tag delete");
    service.create_tags(&ctx, "ns2", &json!({"tags": [{"name": "w"}]}), true).await.expect("tags");
    service.create_association(&ctx, "ns2", &json!({"name": "OS::Nova::Server"})).await.expect("association");
    service.delete_association(&ctx, "ns2", "OS::Nova::Server").await.expect("dissociate");
    service.delete_content(&ctx, "ns2", glint::domain::metadefs::Content::Objects).await.expect("objects");
    service.delete_content(&ctx, "ns2", glint::domain::metadefs::Content::Properties).await.expect("properties");
    service.delete_content(&ctx, "ns2", glint::domain::metadefs::Content::Tags).await.expect("tags");
    service.delete_namespace(&ctx, "ns2").await.expect("delete");

    let events = recorder.0.lock().map(|e| e.clone()).unwrap_or_default();
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, vec![
        "metadef_namespace.create",
        "metadef_resource_type.create",
        "metadef_object.create",
        "metadef_tag.create",
        "metadef_property.create",
        "metadef_namespace.update",
        "metadef_object.create",
        "metadef_object.update",
        "metadef_object.delete",
        "metadef_property.create",
        "metadef_property.update",
        "metadef_property.delete",
        "metadef_tag.create",
        "metadef_tag.update",
        "metadef_tag.delete",
        "metadef_tag.create",
        "metadef_resource_type.create",
        "metadef_resource_type.delete",
        "metadef_namespace.delete_objects",
        "metadef_namespace.delete_properties",
        "metadef_namespace.delete_tags",
        "metadef_namespace.delete",
    ]);
    let payload = |i: usize| events[i].1.clone();
    assert_eq!(payload(0)["namespace"], "ns");
    assert_eq!(payload(0)["visibility"], "private");
    assert_eq!(payload(0)["deleted"], false);
    assert_eq!(payload(1)["prefix"], "p_");
    assert_eq!(payload(2)["properties"][0]["name"], "x");
    assert_eq!(payload(2)["properties"][0]["minimum"], Value::Null, "Glance's `or None` drops 0");
    assert_eq!(payload(4)["type"], "string");
    assert_eq!(payload(5)["namespace"], "ns2");
    assert_eq!(payload(5)["namespace_old"], "ns");
    assert_eq!(payload(7)["name"], "o3");
    assert_eq!(payload(7)["name_old"], "o2");
    assert_eq!(payload(8)["deleted"], true);
    assert!(payload(8)["deleted_at"].is_string());
    assert_eq!(payload(10)["name_old"], "q");
    assert_eq!(payload(13)["name_old"], "u");
    assert_eq!(payload(17)["namespace"], "ns2");
    assert_eq!(payload(21)["deleted"], true);
});
