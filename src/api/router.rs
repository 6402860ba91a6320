//! Every route of the service, in one list.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use super::error::{ApiError, Panic};
use super::{
    cache, discovery, image_data, images, import, members, middleware, schemas, tags, tasks,
    versions, AppState,
};

/// The complete application: routing, identity, request ids and error bodies.
pub fn router(state: AppState) -> Router {
    let v2 = Router::new()
        .route("/v2/images", get(images::list).post(images::create))
        .route(
            "/v2/images/{image_id}",
            get(images::show)
                .patch(images::update)
                .delete(images::delete),
        )
        .route(
            "/v2/images/{image_id}/file",
            get(image_data::download).put(image_data::upload),
        )
        .route("/v2/images/{image_id}/stage", put(import::stage))
        .route("/v2/images/{image_id}/import", post(import::import))
        .route("/v2/images/{image_id}/tasks", get(tasks::image_tasks))
        .route(
            "/v2/images/{image_id}/locations",
            get(import::locations).post(import::add_location),
        )
        .route("/v2/info/import", get(import::info))
        .route("/v2/tasks", get(tasks::list).post(tasks::create))
        .route(
            "/v2/tasks/{task_id}",
            get(tasks::show).delete(tasks::delete),
        )
        .route("/v2/schemas/task", get(schemas::task))
        .route("/v2/schemas/tasks", get(schemas::tasks))
        .route(
            "/v2/images/{image_id}/actions/deactivate",
            post(images::deactivate),
        )
        .route(
            "/v2/images/{image_id}/actions/reactivate",
            post(images::reactivate),
        )
        .route(
            "/v2/images/{image_id}/tags/{tag}",
            put(tags::add).delete(tags::remove),
        )
        .route(
            "/v2/images/{image_id}/members",
            get(members::list).post(members::create),
        )
        .route(
            "/v2/images/{image_id}/members/{member_id}",
            get(members::show)
                .put(members::update)
                .delete(members::delete),
        )
        .route("/v2/info/stores", get(discovery::stores))
        .route("/v2/info/usage", get(discovery::usage))
        .route("/v2/info/stores/detail", get(discovery::stores_detail))
        .route(
            "/v2/stores/{store_id}/{image_id}",
            delete(discovery::delete_from_store),
        )
        .route("/v2/cache", get(cache::state).delete(cache::clear))
        .route("/v2/cache/clean", post(cache::clean))
        .route("/v2/cache/prune", post(cache::prune))
        .route("/v2/cache/nodes/{image_id}", get(cache::nodes))
        .route(
            "/v2/cache/{image_id}",
            delete(cache::delete).put(cache::queue),
        )
        .route("/v2/schemas/image", get(schemas::image))
        .route("/v2/schemas/images", get(schemas::images))
        .merge(metadef_routes())
        .route("/v2/schemas/member", get(schemas::member))
        .route("/v2/schemas/members", get(schemas::members))
        .route_layer(from_fn(middleware::reject_unexpected_body))
        .route_layer(from_fn_with_state(state.clone(), middleware::authenticate))
        .with_state(state.clone());

    let routes = Router::new()
        .route(
            "/",
            get(versions::multiple_choices).with_state(state.clone()),
        )
        .route("/versions", get(versions::list).with_state(state.clone()))
        .route(
            "/healthcheck",
            get(super::healthcheck::answer).with_state(state.clone()),
        )
        .route(
            "/metrics",
            get(super::metrics::expose).with_state(state.clone()),
        )
        .route("/openapi.json", get(super::openapi::document))
        .merge(v2)
        // Every matched route names itself in the request's log span.
        .route_layer(from_fn(middleware::record_route))
        .fallback(unknown_path)
        .with_state(state.clone());

    // Version aliases and HEAD are rewritten before routing, so the routes see `/v2/…`.
    let multi_store = state.data.stores().multi();
    let has_cache = state.data.cache().is_some();
    let normalized = ServiceBuilder::new()
        .map_request(move |request| {
            middleware::normalize(cache::version_alias(request, has_cache), multi_store)
        })
        .service(routes);
    // Innermost first: a panic becomes a 500 that still gets a body, a request id and a log
    // line; `request_id` opens the span every log line of the request is written in.
    Router::new()
        .fallback_service(normalized)
        .layer(CatchPanicLayer::custom(
            |payload: Box<dyn std::any::Any + Send>| {
                ApiError::plain(StatusCode::INTERNAL_SERVER_ERROR)
                    .caused_by(Panic::from_payload(payload.as_ref()))
                    .into_response()
            },
        ))
        .layer(from_fn(middleware::render_error_bodies))
        .layer(from_fn(middleware::request_id))
}

/// The metadata definitions catalog (`/v2/metadefs/…`) and its schema documents.
fn metadef_routes() -> Router<AppState> {
    use super::metadefs::{
        namespace_schema, namespaces_schema, object_schema, objects_schema, properties_schema,
        property_schema, resource_type_schema, resource_types_schema, tag_schema, tags_schema,
    };
    use super::metadefs::{namespaces, objects, properties, resource_types, tags};
    Router::new()
        .route(
            "/v2/metadefs/namespaces",
            get(namespaces::list).post(namespaces::create),
        )
        .route(
            "/v2/metadefs/namespaces/{namespace_name}",
            get(namespaces::show)
                .put(namespaces::replace)
                .delete(namespaces::delete),
        )
        .route(
            "/v2/metadefs/namespaces/{namespace_name}/objects",
            get(objects::list)
                .post(objects::create)
                .delete(namespaces::delete_objects),
        )
        .route(
            "/v2/metadefs/namespaces/{namespace_name}/objects/{object_name}",
            get(objects::show)
                .put(objects::replace)
                .delete(objects::delete),
        )
        .route(
            "/v2/metadefs/namespaces/{namespace_name}/properties",
            get(properties::list)
                .post(properties::create)
                .delete(namespaces::delete_properties),
        )
        .route(
            "/v2/metadefs/namespaces/{namespace_name}/properties/{property_name}",
            get(properties::show)
                .put(properties::replace)
                .delete(properties::delete),
        )
        .route(
            "/v2/metadefs/namespaces/{namespace_name}/tags",
            get(tags::list)
                .post(tags::create_many)
                .delete(namespaces::delete_tags),
        )
        .route(
            "/v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}",
            get(tags::show)
                .post(tags::create)
                .put(tags::rename)
                .delete(tags::delete),
        )
        .route(
            "/v2/metadefs/namespaces/{namespace_name}/resource_types",
            get(resource_types::associations).post(resource_types::associate),
        )
        .route(
            "/v2/metadefs/namespaces/{namespace_name}/resource_types/{resource_type}",
            delete(resource_types::dissociate),
        )
        .route("/v2/metadefs/resource_types", get(resource_types::list))
        .route("/v2/schemas/metadefs/namespace", get(namespace_schema))
        .route("/v2/schemas/metadefs/namespaces", get(namespaces_schema))
        .route(
            "/v2/schemas/metadefs/resource_type",
            get(resource_type_schema),
        )
        .route(
            "/v2/schemas/metadefs/resource_types",
            get(resource_types_schema),
        )
        .route("/v2/schemas/metadefs/object", get(object_schema))
        .route("/v2/schemas/metadefs/objects", get(objects_schema))
        .route("/v2/schemas/metadefs/property", get(property_schema))
        .route("/v2/schemas/metadefs/properties", get(properties_schema))
        .route("/v2/schemas/metadefs/tag", get(tag_schema))
        .route("/v2/schemas/metadefs/tags", get(tags_schema))
}

/// Unknown `/v2/…` paths are 404; any other path names an unknown API version, for which
/// Glance answers with the versions document (300).
async fn unknown_path(state: State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    if uri.path() == "/v2" || uri.path().starts_with("/v2/") {
        ApiError::plain(StatusCode::NOT_FOUND).into_response()
    } else {
        versions::unknown_version(state, headers).await
    }
}
