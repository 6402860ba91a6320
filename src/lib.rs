//! Glint: an OpenStack Image API v2 (Glance) service.
//!
//! `api` speaks HTTP, `domain` holds the image rules, `db` persists metadata, `config` reads
//! glance-api.conf-style files. `app` wires them together; `cli` holds the commands, and
//! `main.rs` only parses the command line.

pub mod api;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod datapath;
pub mod db;
pub mod domain;
pub mod import;
pub mod maintenance;
pub mod metrics;
pub mod notifications;
pub mod policy;
pub mod quota;
pub mod server;
pub mod stores;
pub mod telemetry;

use std::sync::Arc;

use config::Config;
use datapath::{ByteBudget, DataLimits, DataService};
use db::Database;
use domain::listing::PageLimits;
use domain::schema::Schemas;
use domain::{ImageLimits, ImageService};
use stores::StoreRegistry;

/// The services behind the API, built once per process.
#[derive(Debug, Clone)]
pub struct Services {
    pub images: ImageService,
    pub data: DataService,
    pub imports: import::ImportService,
    pub auth: auth::Authenticator,
    /// The metadata definitions catalog.
    pub metadefs: domain::metadefs::MetadefService,
    /// The open database, for its pools' connection counts in `/metrics`.
    pub database: Database,
}

/// Builds the image and data services over an open database and the configured stores.
pub fn services(config: &Config, database: &Database) -> Result<Services, String> {
    let stores = StoreRegistry::from_config(&config.stores)
        .map_err(|e| format!("cannot start the image store: {e}"))?;
    services_over(config, database, stores)
}

/// `services` over stores built already (by `StoreRegistry::from_config`, perhaps with each
/// store wrapped by `StoreRegistry::wrap_stores`).
pub fn services_over(
    config: &Config,
    database: &Database,
    stores: StoreRegistry,
) -> Result<Services, String> {
    let schemas = Schemas::new(&config.formats)?;
    let limits = ImageLimits {
        page: PageLimits {
            default: config.limits.limit_param_default,
            max: config.limits.api_limit_max,
        },
        property_quota: config.limits.image_property_quota,
        tag_quota: config.limits.image_tag_quota,
        member_quota: config.limits.image_member_quota,
    };
    let page_limits = limits.page;
    // One notifier (one broker connection, one queue) for every service that tells events.
    let events = notifications::sink(config.notifications.as_ref())?;
    let enforcer: Arc<policy::Enforcer> = Arc::new(policy::Enforcer::new(&config.policy)?);
    let images = ImageService::new(
        database.image_repo(shown(config, &stores).needs_locations()),
        enforcer.clone(),
        Arc::new(schemas),
        limits,
    );
    let images = images
        .with_property_protections(config.protections.rules.clone())
        .with_unified_limits(
            config
                .unified_limits
                .as_ref()
                .map(quota::UnifiedLimits::new)
                .transpose()?
                .map(Arc::new),
        )
        .with_events(events.clone());
    let data_limits = DataLimits {
        image_size_cap: config.limits.image_size_cap,
        user_storage_quota: config.limits.user_storage_quota,
    };
    let data = DataService::new(
        images.clone(),
        database.upload_repo(),
        Arc::new(stores),
        config.datapath.clone(),
        data_limits,
        ByteBudget::new(config.datapath.upload_memory_budget),
        &config.node_id,
    );
    data.check_store_buffers()?;
    let data = data.with_cache(
        cache::ImageCache::new(&config.cache, database.cache_repo())
            .map_err(|e| format!("cannot open the image cache: {e}"))?,
    );
    let imports = import::ImportService::new(
        images.clone(),
        data.clone(),
        database.task_repo(),
        &config.import,
        &config.node_id,
        config.limits.image_location_quota,
    );
    let auth = auth::Authenticator::new(&config.auth)?;
    let metadefs = domain::metadefs::MetadefService::new(
        database.metadef_repo(),
        enforcer,
        events,
        page_limits,
    )?;
    Ok(Services {
        images,
        data,
        imports,
        auth,
        metadefs,
        database: database.clone(),
    })
}

/// Which optional image attributes the configuration shows.
fn shown(config: &Config, stores: &StoreRegistry) -> api::Shown {
    api::Shown {
        multi_store: stores.multi(),
        direct_url: config.show_image_direct_url,
        locations: config.show_multiple_locations,
        weights: stores
            .entries()
            .iter()
            .map(|e| (e.id.clone(), e.weight))
            .collect(),
    }
}

/// Builds the HTTP application over the services.
pub fn app(config: &Config, services: &Services) -> axum::Router {
    let state = api::AppState {
        images: services.images.clone(),
        data: services.data.clone(),
        imports: services.imports.clone(),
        auth: services.auth.clone(),
        metadefs: services.metadefs.clone(),
        advertised_host: format!("{}:{}", config.server.bind_host, config.server.bind_port),
        shown: shown(config, services.data.stores()),
        health: std::sync::Arc::new(api::healthcheck::Health::new(
            &config.healthcheck,
            config.server.bind_port,
        )),
        metrics: config.metrics.enabled.then(|| services.database.clone()),
    };
    api::router(state)
}
