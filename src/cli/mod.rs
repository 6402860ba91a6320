//! The commands of the `glint` binary as library functions: `main.rs` parses the command
//! line, loads the configuration and calls one of these. Each returns, on failure, the one
//! line the operator reads; what a command prints on success is its report. The schema gate
//! in front of `serve` and `scrub` is `schema.rs`; the duties of a serving node between
//! requests are `crate::maintenance`.

mod cache;
mod doctor;
mod metadefs;
mod migrate;
mod schema;

use std::net::SocketAddr;

use crate::config::{AuthFlavor, Config};
use crate::db::Database;
use crate::maintenance;

pub use cache::{cache, CacheAction};
pub use doctor::doctor;
pub use metadefs::{
    db_export_metadefs, db_load_metadefs, db_unload_metadefs, LoadOptions as MetadefLoadOptions,
    DEFAULT_METADEFS_PATH,
};
pub use migrate::MigrateOptions;
use schema::describe;

/// Logs, once at start-up, what in the configuration deserves the operator's attention.
pub fn log_config_warnings(config: &Config) {
    if config.auth == AuthFlavor::TrustedHeaders
        && !matches!(
            config.server.bind_host.as_str(),
            "127.0.0.1" | "::1" | "localhost"
        )
    {
        tracing::warn!(
            bind_host = %config.server.bind_host,
            "flavor = trusted-auth believes identity headers from any client: expose this \
             address only to the authenticating proxy in front of Glint"
        );
    }
    for option in config.ignored_report() {
        tracing::warn!(option, "configuration option not used by Glint; ignored");
    }
}

async fn open(config: &Config) -> Result<Database, String> {
    Database::connect(&config.database)
        .await
        .map_err(|e| e.to_string())
}

/// `glint db sync`: creates the schema or upgrades it to this version of Glint.
pub async fn db_sync(config: &Config) -> Result<(), String> {
    let database = open(config).await?;
    let before = database.schema_status().await.map_err(|e| e.to_string())?;
    database.sync().await.map_err(|e| e.to_string())?;
    let after = database.schema_status().await.map_err(|e| e.to_string())?;
    let run = before.to_run().len();
    let adopted = if before.made_by_glance() {
        format!(
            " (a Glance database: {} migration(s) of Glance's schema recorded as applied, Glance's tables unchanged)",
            before.pending.len() - run
        )
    } else {
        String::new()
    };
    println!(
        "{} schema at {}: {run} migration(s) applied{adopted}, now at {}",
        database.backend(),
        config.database.url.redacted(),
        after.applied.unwrap_or(0)
    );
    database.close().await;
    Ok(())
}

/// `glint db version`: prints the schema version found and the one this Glint expects.
pub async fn db_version(config: &Config) -> Result<(), String> {
    let database = open(config).await?;
    let status = database.schema_status().await.map_err(|e| e.to_string())?;
    println!(
        "database: {} ({})",
        config.database.url.redacted(),
        database.backend()
    );
    println!(
        "glance schema (alembic): {}",
        status.glance_revision.as_deref().unwrap_or("none")
    );
    println!(
        "glint migrations: {}",
        status
            .applied
            .map(|v| v.to_string())
            .unwrap_or_else(|| "none".into())
    );
    println!("expected by this glint: {}", status.latest);
    println!("state: {}", describe(&status));
    database.close().await;
    Ok(())
}

/// `glint db check`: what `glint db sync` would do, without doing it. An error (exit 1) when
/// the schema is not current, so that deployment tooling can gate on it.
pub async fn db_check(config: &Config) -> Result<(), String> {
    let database = open(config).await?;
    let status = database.schema_status().await.map_err(|e| e.to_string())?;
    let migrations = database.migrations();
    database.close().await;
    println!(
        "database: {} ({})",
        config.database.url.redacted(),
        database.backend()
    );
    if status.made_by_glance() {
        println!(
            "made by Glance (alembic {}): Glance's tables and rows stay as they are; \
             Glint records its Glance-schema migrations as applied without running them",
            status.glance_revision.as_deref().unwrap_or_default()
        );
    }
    for version in status.to_run() {
        let description = migrations
            .iter()
            .find(|(v, _)| *v == version)
            .map_or("", |(_, d)| d.as_str());
        println!("would apply {version} {description}");
    }
    if status.is_current() {
        println!("up to date: nothing to change");
        Ok(())
    } else {
        Err(format!("the schema is not current: {}", describe(&status)))
    }
}

/// `glint db purge` / `glint db purge-images-table`: removes rows soft-deleted at least
/// `age_in_days` ago, at most `max_rows` per table (-1: all).
pub async fn db_purge(
    config: &Config,
    age_in_days: u32,
    max_rows: i64,
    images_table: bool,
) -> Result<(), String> {
    let max_rows = match max_rows {
        -1 => None,
        n if n >= 0 => Some(n.unsigned_abs()),
        n => {
            return Err(format!(
                "--max-rows must be -1 (no limit) or at least 0, not {n}"
            ))
        }
    };
    let database = open(config).await?;
    schema::ready_to_scrub(&database).await?;
    let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(age_in_days));
    let purged = database
        .purge(cutoff, max_rows, images_table)
        .await
        .map_err(|e| e.to_string())?;
    database.close().await;
    for (table, rows) in purged {
        println!(
            "{table}: {rows} row(s) soft-deleted before {} removed",
            cutoff.format("%Y-%m-%d %H:%M:%S")
        );
    }
    Ok(())
}

/// `glint serve`: passes the schema gate, recovers uploads a stopped node left, starts the
/// maintenance task and serves the Image API until a shutdown signal.
pub async fn serve(config: &Config) -> Result<(), String> {
    let database = open(config).await?;
    schema::ready_to_serve(&database, config).await?;
    let services = crate::services(config, &database)?;
    // The port first: a second process started on a live node's address must fail here,
    // before it resets that node's running uploads as if they were its own dead ones.
    let address = format!("{}:{}", config.server.bind_host, config.server.bind_port);
    let address: SocketAddr = tokio::net::lookup_host(&address)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("cannot resolve bind address {address}"))?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    maintenance::recover(&services.data)
        .await
        .map_err(|e| e.to_string())?;
    // This node's own import jobs (it restarted, so none runs) start again at once.
    services
        .imports
        .release_own_jobs()
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(services.imports.clone().run_jobs());
    if let Some(cache) = services.data.cache() {
        cache.register().await.map_err(|e| e.to_string())?;
        // Images queued before a restart are fetched now, as queued ones are.
        for id in cache.queued() {
            services.data.spawn_prefetch(id);
        }
    }
    tokio::spawn(maintenance::run(
        services.data.clone(),
        services.imports.clone(),
        config.datapath.clone(),
    ));
    let app = crate::app(config, &services);
    tracing::info!(%address, database = database.backend(), "glint serving the Image API v2");
    crate::server::serve(listener, app, &config.server.connections, shutdown_signal())
        .await
        .map_err(|e| format!("serving failed: {e}"))?;
    crate::notifications::drain(std::time::Duration::from_secs(5)).await;
    database.close().await;
    tracing::info!("glint stopped");
    Ok(())
}

/// `glint scrub`: one scrubber pass.
pub async fn scrub(config: &Config) -> Result<(), String> {
    let database = open(config).await?;
    schema::ready_to_scrub(&database).await?;
    let services = crate::services(config, &database)?;
    let report = services.data.scrub().await.map_err(|e| e.to_string())?;
    println!(
        "scrub: {} location(s) removed, {} left for a later pass, {} in use (retried later, less often), {} unrecorded data removed",
        report.removed, report.failed, report.deferred, report.orphans
    );
    database.close().await;
    if report.failed > 0 {
        return Err("some image data could not be removed yet".to_owned());
    }
    Ok(())
}

/// `glint image copy`: one image's data copied into another store, verified and recorded.
pub async fn image_copy(
    config: &Config,
    image_id: &str,
    to: &str,
    from: Option<&str>,
) -> Result<(), String> {
    let database = open(config).await?;
    schema::ready_to_scrub(&database).await?;
    let services = crate::services(config, &database)?;
    let result = migrate::copy_one(&services.data, image_id, to, from).await;
    database.close().await;
    result
}

/// `glint migrate`: every image with data in one store copied into another (and, if asked,
/// removed from the first once its copy is verified and recorded).
pub async fn migrate(config: &Config, options: &MigrateOptions) -> Result<(), String> {
    let database = open(config).await?;
    schema::ready_to_scrub(&database).await?;
    let services = crate::services(config, &database)?;
    let result = migrate::migrate(&services.data, options).await;
    database.close().await;
    result
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
