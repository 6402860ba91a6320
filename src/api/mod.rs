//! The HTTP layer: routes, extractors, middleware and rendering. Handlers parse the request,
//! call the domain service and render its answer; they hold no image rules themselves.

mod cache;
mod discovery;
pub mod error;
mod error_body;
mod extract;
pub mod healthcheck;
mod image_data;
mod images;
mod import;
mod members;
mod metadefs;
mod metrics;
pub mod middleware;
mod openapi;
mod router;
mod schemas;
mod tags;
mod tasks;
mod versions;

use crate::auth::Authenticator;
use crate::datapath::DataService;
use crate::domain::ImageService;
use crate::import::ImportService;

pub use images::Shown;
pub use router::router;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub images: ImageService,
    pub data: DataService,
    pub imports: ImportService,
    pub auth: Authenticator,
    pub metadefs: crate::domain::metadefs::MetadefService,
    /// `host:port` for absolute links when a request carries no `Host` header.
    pub advertised_host: String,
    /// Which optional image attributes are shown.
    pub shown: Shown,
    /// What `/healthcheck` looks at besides the database.
    pub health: std::sync::Arc<healthcheck::Health>,
    /// `/metrics` reads the pools of this database; `None`: `[DEFAULT] metrics_enabled` is
    /// off and `/metrics` is 404.
    pub metrics: Option<crate::db::Database>,
}

impl AppState {
    /// How an image is rendered here.
    fn view<'a>(&'a self, image: &'a crate::domain::image::Image) -> images::ImageView<'a> {
        images::ImageView {
            image,
            shown: &self.shown,
        }
    }
}
