//! `/v2/metadefs/namespaces` and `/v2/metadefs/namespaces/{namespace}` (with the DELETEs of
//! a namespace's objects, properties and tags).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{
    association_view, echoed_object, insert_text, insert_time, list_query, object_view,
    property_map, tag_names,
};
use crate::api::error::ApiError;
use crate::api::extract::{Ctx, JsonBody, PathParams, QueryPairs};
use crate::api::AppState;
use crate::domain::metadefs::{Content, NamespaceDetail};

const NAMESPACE_SCHEMA: &str = "/v2/schemas/metadefs/namespace";
const NAMESPACES: &str = "/v2/metadefs/namespaces";

fn namespace_view(detail: &NamespaceDetail) -> Value {
    let ns = &detail.namespace;
    let mut view = Map::new();
    view.insert("namespace".to_owned(), json!(ns.namespace));
    insert_text(&mut view, "display_name", &ns.display_name);
    insert_text(&mut view, "description", &ns.description);
    view.insert(
        "visibility".to_owned(),
        json!(ns.visibility.as_deref().unwrap_or("private")),
    );
    view.insert("protected".to_owned(), json!(ns.is_protected()));
    view.insert("owner".to_owned(), json!(ns.owner));
    insert_time(&mut view, "created_at", Some(ns.created_at));
    insert_time(&mut view, "updated_at", ns.updated_at);
    view.insert(
        "self".to_owned(),
        json!(format!("{NAMESPACES}/{}", ns.namespace)),
    );
    view.insert("schema".to_owned(), json!(NAMESPACE_SCHEMA));
    if let Some(associations) = &detail.associations {
        let shown: Vec<Value> = associations
            .iter()
            .map(|a| association_view(a, !detail.echoed))
            .collect();
        view.insert("resource_type_associations".to_owned(), json!(shown));
    }
    if let Some(objects) = &detail.objects {
        let shown: Vec<Value> = objects
            .iter()
            .map(|o| {
                if detail.echoed {
                    echoed_object(o)
                } else {
                    object_view(&ns.namespace, o)
                }
            })
            .collect();
        view.insert("objects".to_owned(), json!(shown));
    }
    if let Some(properties) = &detail.properties {
        view.insert("properties".to_owned(), property_map(properties));
    }
    if let Some(tags) = &detail.tags {
        view.insert("tags".to_owned(), tag_names(tags));
    }
    Value::Object(view)
}

/// The query string of a list link: the request's parameters (the last of repeated ones),
/// without `marker`, then `marker` if given.
fn link_query(pairs: &[(String, String)], marker: Option<&str>) -> String {
    let mut kept: Vec<(&str, &str)> = Vec::new();
    for (key, value) in pairs.iter().filter(|(k, _)| k != "marker") {
        match kept.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => kept.push((key, value)),
        }
    }
    if let Some(marker) = marker {
        kept.push(("marker", marker));
    }
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish()
}

pub async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let page = state
        .metadefs
        .list_namespaces(&ctx, &list_query(&pairs))
        .await?;
    let query = link_query(&pairs, None);
    let first = if query.is_empty() {
        NAMESPACES.to_owned()
    } else {
        format!("{NAMESPACES}?{query}")
    };
    let mut body = json!({
        "namespaces": page.namespaces.iter().map(namespace_view).collect::<Vec<_>>(),
        "first": first,
        "schema": "/v2/schemas/metadefs/namespaces",
    });
    if let Some(next) = page.next {
        body["next"] = json!(format!("{NAMESPACES}?{}", link_query(&pairs, Some(&next))));
    }
    Ok(Json(body))
}

pub async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let created = state.metadefs.create_namespace(&ctx, &body).await?;
    let mut response = (StatusCode::CREATED, Json(namespace_view(&created))).into_response();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or(&state.advertised_host);
    let location = format!("http://{host}{NAMESPACES}/{}", created.namespace.namespace);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn show(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let resource_type = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "resource_type")
        .map(|(_, v)| v.as_str());
    let detail = state
        .metadefs
        .show_namespace(&ctx, &namespace, resource_type)
        .await?;
    Ok(Json(namespace_view(&detail)))
}

pub async fn replace(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let updated = state
        .metadefs
        .replace_namespace(&ctx, &namespace, &body)
        .await?;
    Ok(Json(namespace_view(&updated)))
}

pub async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.metadefs.delete_namespace(&ctx, &namespace).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_content(
    state: &AppState,
    ctx: &crate::domain::RequestContext,
    namespace: &str,
    content: Content,
) -> Result<StatusCode, ApiError> {
    state
        .metadefs
        .delete_content(ctx, namespace, content)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_objects(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    delete_content(&state, &ctx, &namespace, Content::Objects).await
}

pub async fn delete_properties(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    delete_content(&state, &ctx, &namespace, Content::Properties).await
}

pub async fn delete_tags(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    PathParams(namespace): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    delete_content(&state, &ctx, &namespace, Content::Tags).await
}
