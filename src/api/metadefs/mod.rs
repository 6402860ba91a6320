//! `/v2/metadefs/…` and `/v2/schemas/metadefs/…`: parsing requests and rendering Glance's
//! bodies; the rules live in `domain::metadefs`. This file holds the views every resource
//! shares and the schema documents.

pub mod namespaces;
pub mod objects;
pub mod properties;
pub mod resource_types;
pub mod tags;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

use super::AppState;
use crate::domain::metadefs::schemas::property_type;
use crate::domain::metadefs::{isotime, Association, MetadefObject, MetadefQuery, Property, Tag};

const OBJECT_SCHEMA: &str = "/v2/schemas/metadefs/object";

fn insert_time(
    view: &mut Map<String, Value>,
    key: &str,
    at: Option<chrono::DateTime<chrono::Utc>>,
) {
    if let Some(at) = at {
        view.insert(key.to_owned(), json!(isotime(at)));
    }
}

fn insert_text(view: &mut Map<String, Value>, key: &str, text: &Option<String>) {
    if let Some(text) = text {
        view.insert(key.to_owned(), json!(text));
    }
}

/// Property definitions by name, as Glance's model renders them.
fn definitions(properties: &Map<String, Value>) -> Value {
    Value::Object(
        properties
            .iter()
            .map(|(name, definition)| (name.clone(), property_type(definition)))
            .collect(),
    )
}

fn property_map(properties: &[Property]) -> Value {
    Value::Object(
        properties
            .iter()
            .map(|p| (p.name.clone(), property_type(&p.schema)))
            .collect(),
    )
}

/// An object as stored, with its link and schema.
fn object_view(namespace: &str, object: &MetadefObject) -> Value {
    let mut view = Map::new();
    view.insert("name".to_owned(), json!(object.name));
    insert_text(&mut view, "description", &object.description);
    view.insert("required".to_owned(), json!(object.required));
    view.insert("properties".to_owned(), definitions(&object.properties));
    insert_time(&mut view, "created_at", Some(object.created_at));
    insert_time(&mut view, "updated_at", object.updated_at);
    view.insert(
        "self".to_owned(),
        json!(format!(
            "/v2/metadefs/namespaces/{namespace}/objects/{}",
            object.name
        )),
    );
    view.insert("schema".to_owned(), json!(OBJECT_SCHEMA));
    Value::Object(view)
}

/// An object as a namespace create echoes it: what was sent.
fn echoed_object(object: &MetadefObject) -> Value {
    let mut view = Map::new();
    view.insert("name".to_owned(), json!(object.name));
    insert_text(&mut view, "description", &object.description);
    if !object.required.is_empty() {
        view.insert("required".to_owned(), json!(object.required));
    }
    if !object.properties.is_empty() {
        view.insert("properties".to_owned(), definitions(&object.properties));
    }
    Value::Object(view)
}

fn association_view(association: &Association, with_times: bool) -> Value {
    let mut view = Map::new();
    view.insert("name".to_owned(), json!(association.name));
    insert_text(&mut view, "prefix", &association.prefix);
    insert_text(
        &mut view,
        "properties_target",
        &association.properties_target,
    );
    if with_times {
        insert_time(&mut view, "created_at", Some(association.created_at));
        insert_time(&mut view, "updated_at", association.updated_at);
    }
    Value::Object(view)
}

fn tag_view(tag: &Tag) -> Value {
    let mut view = Map::new();
    view.insert("name".to_owned(), json!(tag.name));
    insert_time(&mut view, "created_at", Some(tag.created_at));
    insert_time(&mut view, "updated_at", tag.updated_at);
    Value::Object(view)
}

fn tag_names(tags: &[Tag]) -> Value {
    json!(tags
        .iter()
        .map(|t| json!({"name": t.name}))
        .collect::<Vec<_>>())
}

/// The list parameters every metadef list reads (the last of repeated ones wins).
fn list_query(pairs: &[(String, String)]) -> MetadefQuery {
    let last = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    MetadefQuery {
        limit: last("limit"),
        marker: last("marker"),
        sort_key: last("sort_key"),
        sort_dir: last("sort_dir"),
        visibility: last("visibility"),
        resource_types: last("resource_types"),
    }
}

/// `GET /v2/schemas/metadefs/{name}`: documents with a validator behind them, then plain ones.
macro_rules! schema_documents {
    (validated: $($name:ident => $field:ident),*; plain: $($plain:ident => $value:ident),*) => {
        $(
            pub async fn $name(State(state): State<AppState>) -> Json<Value> {
                Json(state.metadefs.schemas().$field.schema().clone())
            }
        )*
        $(
            pub async fn $plain(State(state): State<AppState>) -> Json<Value> {
                Json(state.metadefs.schemas().$value.clone())
            }
        )*
    };
}

schema_documents! {
    validated:
        namespace_schema => namespace,
        resource_type_schema => resource_type,
        object_schema => object,
        property_schema => property,
        tag_schema => tag;
    plain:
        namespaces_schema => namespaces,
        resource_types_schema => resource_types,
        objects_schema => objects,
        properties_schema => properties,
        tags_schema => tags
}
