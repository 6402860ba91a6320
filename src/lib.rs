//! Glint: an OpenStack Image API v2 (Glance) service.
//!
//! `api` speaks HTTP, `domain` holds the image rules, `db` persists metadata, `config` reads
//! glance-api.conf-style files. `app` wires them together; `main.rs` is only the command line.

pub mod api;
pub mod config;
pub mod db;
pub mod domain;
pub mod telemetry;

use std::sync::Arc;

use config::Config;
use db::Database;
use domain::listing::PageLimits;
use domain::policy::DefaultPolicy;
use domain::schema::Schemas;
use domain::{ImageLimits, ImageService};

/// Builds the HTTP application over an open database.
pub fn app(config: &Config, database: &Database) -> Result<axum::Router, String> {
    let schemas = Schemas::new(&config.formats)?;
    let limits = ImageLimits {
        page: PageLimits {
            default: config.limits.limit_param_default,
            max: config.limits.api_limit_max,
        },
        property_quota: config.limits.image_property_quota,
        tag_quota: config.limits.image_tag_quota,
    };
    let images = ImageService::new(
        database.image_repo(),
        Arc::new(DefaultPolicy),
        Arc::new(schemas),
        limits,
    );
    let state = api::AppState {
        images,
        auth: config.auth,
        advertised_host: format!("{}:{}", config.server.bind_host, config.server.bind_port),
    };
    Ok(api::router(state))
}
