use std::collections::HashSet;

use crate::all_databases;
use crate::helpers::TestApp;
use serde_json::{json, Value};

async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let response = app.get(&format!("/v2/images{query}")).await;
    response.assert_status(200);
    response.json()["images"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Follows `next` links from `first`, returning every id seen and the number of pages.
async fn walk(app: &TestApp, first: &str) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let page = app.get(&path).await;
        page.assert_status(200);
        let page = page.json();
        pages += 1;
        seen.extend(
            page["images"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["id"].as_str().map(str::to_owned)),
        );
        next = page["next"].as_str().map(str::to_owned);
        assert!(pages < 100, "runaway paging");
    }
    (seen, pages)
}

async fn make(app: &TestApp, body: Value) -> String {
    app.create_image(body).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

all_databases!(fn default_order_is_newest_first_with_next_links(app) {
    let mut created = Vec::new();
    for n in 0..5 {
        let id = make(&app, json!({"name": format!("img{n}")})).await;
        // Seconds apart: Glance's `created_at` on MySQL keeps whole seconds, and images made
        // within one second are ordered by id, as in Glance.
        app.execute(&format!("UPDATE images SET created_at = '2026-01-01 00:00:0{n}' WHERE id = '{id}'")).await;
        created.push(id);
    }
    created.reverse();
    assert_eq!(ids(&app, "").await, created);
    let page = app.get("/v2/images?limit=2").await.json();
    assert_eq!(page["first"], "/v2/images?limit=2");
    assert_eq!(page["schema"], "/v2/schemas/images");
    assert_eq!(page["next"], format!("/v2/images?limit=2&marker={}", created[1]));
    let (seen, pages) = walk(&app, "/v2/images?limit=2").await;
    assert_eq!(seen, created);
    assert_eq!(pages, 3);
    // A full last page still links to an (empty) next page, as Glance does.
    let (_, pages) = walk(&app, "/v2/images?limit=5").await;
    assert_eq!(pages, 2);
});

all_databases!(fn paging_by_a_nullable_key_visits_every_image_once(app) {
    let mut created = HashSet::new();
    for name in [Some("b"), None, Some("a"), None, Some("b"), Some("c"), None] {
        let body = match name { Some(n) => json!({"name": n}), None => json!({}) };
        created.insert(make(&app, body).await);
    }
    for query in ["/v2/images?limit=2&sort=name:asc", "/v2/images?limit=3&sort_key=name&sort_dir=desc", "/v2/images?limit=1&sort=name,created_at:asc"] {
        let (seen, _) = walk(&app, query).await;
        assert_eq!(seen.len(), created.len(), "{query}");
        assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created, "{query}");
    }
    let names: Vec<Value> = app.get("/v2/images?sort=name:asc").await.json()["images"]
        .as_array().into_iter().flatten().map(|i| i["name"].clone()).collect();
    assert_eq!(names, [json!(null), json!(null), json!(null), json!("a"), json!("b"), json!("b"), json!("c")]);
});

all_databases!(fn filters_select_images(app) {
    let debian = make(&app, json!({"name": "deb", "os_distro": "debian", "disk_format": "qcow2", "container_format": "bare", "tags": ["t1", "t2"], "min_ram": 512})).await;
    let ubuntu = make(&app, json!({"name": "ubu", "os_distro": "ubuntu", "disk_format": "raw", "tags": ["t1"], "protected": true})).await;
    let hidden = make(&app, json!({"name": "hid", "os_hidden": true})).await;
    let sorted = |mut v: Vec<String>| { v.sort(); v };

    assert_eq!(ids(&app, "?name=deb").await, [debian.as_str()]);
    assert_eq!(sorted(ids(&app, "?name=in:deb,ubu").await), sorted(vec![debian.clone(), ubuntu.clone()]));
    assert_eq!(ids(&app, "?name=in:%22deb%22").await, [debian.as_str()]);
    assert_eq!(ids(&app, "?os_distro=ubuntu").await, [ubuntu.as_str()]);
    assert_eq!(ids(&app, "?tag=t1&tag=t2").await, [debian.as_str()]);
    assert_eq!(ids(&app, "?disk_format=raw").await, [ubuntu.as_str()]);
    assert_eq!(ids(&app, "?protected=true").await, [ubuntu.as_str()]);
    assert_eq!(ids(&app, "?min_ram=512").await, [debian.as_str()]);
    assert_eq!(ids(&app, "?os_hidden=true").await, [hidden.as_str()]);
    assert_eq!(ids(&app, "?status=queued&name=hid").await, Vec::<String>::new());
    assert_eq!(ids(&app, "?status=bogus").await, Vec::<String>::new());
    assert_eq!(ids(&app, "?limit=0").await, Vec::<String>::new());
    assert_eq!(ids(&app, "?visibility=public").await, Vec::<String>::new());
    assert_eq!(ids(&app, "?visibility=shared").await.len(), 2);
    assert_eq!(ids(&app, "?created_at=lt:2000-01-01T00:00:00Z").await, Vec::<String>::new());
    assert_eq!(ids(&app, "?created_at=gte:2000-01-01T00:00:00Z").await.len(), 2);
    assert_eq!(ids(&app, "?size_min=0").await, Vec::<String>::new());

    app.force_status(&ubuntu, "killed").await;
    assert_eq!(ids(&app, "").await, [debian.as_str()]);
    app.get(&format!("/v2/images/{ubuntu}")).await.assert_status(200);
});

all_databases!(fn bad_list_parameters_are_400(app) {
    for (query, message) in [
        ("limit=-1", "limit param must be positive"),
        ("limit=abc", "limit param must be an integer"),
        ("marker=00000000-0000-0000-0000-000000000000", "No image found with ID 00000000-0000-0000-0000-000000000000"),
        ("sort_key=bogus", "Invalid sort key: bogus."),
        ("sort_dir=sideways", "Invalid sort direction: sideways"),
        ("sort=name&sort_key=id", "Old and new sorting syntax cannot be combined"),
        ("visibility=everyone", "Invalid visibility value: everyone"),
        ("member_status=maybe", "Invalid status: maybe"),
        ("os_hidden=perhaps", "Invalid value 'perhaps' for 'os_hidden' filter. Valid values are 'true' or 'false'."),
        ("protected=perhaps", "Invalid value 'perhaps' for 'protected' filter."),
        ("size_min=big", "Unable to filter on a range with a non-numeric value."),
        ("created_at=gt:yesterday", "Bad \"created_at\" query filter format. Use ISO 8601 DateTime notation."),
        ("name=gt:x", "Unable to filter by unknown operator 'gt'."),
        ("changes-since=2026-01-01", "The \"changes-since\" filter is no longer available on v2."),
    ] {
        let response = app.get(&format!("/v2/images?{query}")).await;
        response.assert_status(400);
        assert!(response.error_message().contains(message), "{query}: {}", response.error_message());
    }
});

all_databases!(fn limit_is_capped_by_api_limit_max(app, "[DEFAULT]\napi_limit_max = 3\nlimit_param_default = 2\n") {
    for _ in 0..4 {
        make(&app, json!({})).await;
    }
    assert_eq!(ids(&app, "").await.len(), 2);
    assert_eq!(ids(&app, "?limit=100").await.len(), 3);
});
