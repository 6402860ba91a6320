//! The `glint` command line: parse arguments, load configuration, call the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use glint::config::Config;
use glint::datapath::STALE_UPLOAD;
use glint::db::{Database, SchemaStatus};
use std::time::Duration;

/// Glint: an OpenStack Image API v2 (Glance) service.
///
/// With no configuration file Glint runs on embedded defaults: metadata in SQLite at
/// ./glint-data/glint.db (or $GLINT_DATA/glint.db), listening on 127.0.0.1:9292, every request
/// treated as an administrator (like Glance with no paste flavor). Give it your
/// glance-api.conf with --config to run as your Glance does; any option can also be set with
/// an environment variable GLINT__<SECTION>__<OPTION>, e.g. GLINT__DEFAULT__BIND_PORT=9393.
#[derive(Debug, Parser)]
#[command(name = "glint", version, about, long_about)]
struct Cli {
    /// A glance-api.conf-style INI file ([DEFAULT], [database], [glance_store], [paste_deploy] …).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "GLINT_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    /// What to do; `serve` when none is given, so a bare `glint` serves images.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Image API (refuses to start on an out-of-date database schema).
    Serve,
    /// Database schema management (like glance-manage db).
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Remove the data of deleted images still waiting for it (like glance-scrubber): with
    /// delayed_delete, after scrub_time; and any removal that failed earlier.
    Scrub,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Create the schema or upgrade it to this version of Glint (like glance-manage db_sync).
    Sync,
    /// Print the schema version of the database and the one this Glint expects.
    Version,
}

/// How long a stopping process waits for blocking tasks after serving ended.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let cli = Cli::parse();
    glint::telemetry::init();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("glint: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if config.auth == glint::config::AuthFlavor::TrustedHeaders
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
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = config.server.workers {
        runtime.worker_threads(workers);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("glint: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(&config).await,
            Command::Scrub => scrub(&config).await,
            Command::Db {
                command: DbCommand::Sync,
            } => db_sync(&config).await,
            Command::Db {
                command: DbCommand::Version,
            } => db_version(&config).await,
        }
    });
    // Blocking work still running (a store write of a cut upload) must not keep a stopping
    // process alive.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("glint: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn open(config: &Config) -> Result<Database, String> {
    Database::connect(&config.database)
        .await
        .map_err(|e| e.to_string())
}

async fn db_sync(config: &Config) -> Result<(), String> {
    let database = open(config).await?;
    let before = database.schema_status().await.map_err(|e| e.to_string())?;
    database.sync().await.map_err(|e| e.to_string())?;
    let after = database.schema_status().await.map_err(|e| e.to_string())?;
    println!(
        "{} schema at {}: {} migration(s) applied, now at {}",
        database.backend(),
        config.database.url.redacted(),
        before.pending.len(),
        after.applied.unwrap_or(0)
    );
    database.close().await;
    Ok(())
}

async fn db_version(config: &Config) -> Result<(), String> {
    let database = open(config).await?;
    let status = database.schema_status().await.map_err(|e| e.to_string())?;
    println!(
        "database: {} ({})",
        config.database.url.redacted(),
        database.backend()
    );
    println!(
        "schema version: {}",
        status
            .applied
            .map(|v| v.to_string())
            .unwrap_or_else(|| "none (empty database)".into())
    );
    println!("expected by this glint: {}", status.latest);
    println!("state: {}", describe(&status));
    database.close().await;
    Ok(())
}

fn describe(status: &SchemaStatus) -> String {
    if !status.unknown.is_empty() {
        format!(
            "written by a newer glint (unknown migrations {:?}); upgrade glint",
            status.unknown
        )
    } else if status.pending.is_empty() {
        "up to date".to_owned()
    } else {
        format!(
            "{} migration(s) pending; run `glint db sync`",
            status.pending.len()
        )
    }
}

async fn serve(config: &Config) -> Result<(), String> {
    let database = open(config).await?;
    let status = database
        .schema_status()
        .await
        .map_err(|e| format!("cannot read the database schema: {e}"))?;
    if !status.is_current() {
        let fresh_sqlite = status.applied.is_none() && database.backend() == "sqlite";
        if !fresh_sqlite {
            return Err(format!(
                "the database schema is not the one this glint expects ({}). Run `glint db sync{}` first.",
                describe(&status),
                config_hint()
            ));
        }
        // A brand-new embedded database has nothing to upgrade: create it, so that a bare
        // `glint serve` works with no setup.
        database.sync().await.map_err(|e| e.to_string())?;
        tracing::info!(database = %config.database.url.redacted(), "created a new SQLite database");
    }
    let services = glint::services(config, &database)?;
    // Uploads interrupted by a crash of this or another node go back to queued.
    services
        .data
        .reset_own_uploads()
        .await
        .map_err(|e| e.to_string())?;
    services
        .data
        .reconcile(STALE_UPLOAD)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(maintenance(services.data.clone(), config.datapath.clone()));
    let app = glint::app(config, &services);
    let address = format!("{}:{}", config.server.bind_host, config.server.bind_port);
    let address: SocketAddr = tokio::net::lookup_host(&address)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("cannot resolve bind address {address}"))?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    tracing::info!(%address, database = database.backend(), "glint serving the Image API v2");
    glint::server::serve(listener, app, &config.server.connections, shutdown_signal())
        .await
        .map_err(|e| format!("serving failed: {e}"))?;
    database.close().await;
    tracing::info!("glint stopped");
    Ok(())
}

/// `glint scrub`: one scrubber pass.
async fn scrub(config: &Config) -> Result<(), String> {
    let database = open(config).await?;
    let status = database.schema_status().await.map_err(|e| e.to_string())?;
    if !status.is_current() {
        return Err(format!(
            "the database schema is not current ({}); run `glint db sync`",
            describe(&status)
        ));
    }
    let services = glint::services(config, &database)?;
    let report = services.data.scrub().await.map_err(|e| e.to_string())?;
    println!(
        "scrub: {} location(s) removed, {} left for a later pass, {} unrecorded data removed",
        report.removed, report.failed, report.orphans
    );
    database.close().await;
    if report.failed > 0 {
        return Err("some image data could not be removed yet".to_owned());
    }
    Ok(())
}

/// Background duties of a serving node: reconcile abandoned uploads every minute, and scrub
/// every `wakeup_time` when `scrub_in_serve` is set.
async fn maintenance(data: glint::datapath::DataService, config: glint::config::DataPathConfig) {
    let mut reconcile = tokio::time::interval(Duration::from_secs(60));
    let mut scrubber = tokio::time::interval(Duration::from_secs(config.wakeup_time_secs));
    reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    scrubber.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = reconcile.tick() => {
                if let Err(e) = data.reconcile(STALE_UPLOAD).await {
                    tracing::warn!(error = %e, "reconciling abandoned uploads failed");
                }
            }
            _ = scrubber.tick(), if config.scrub_in_serve => {
                match data.scrub().await {
                    Ok(report) if report.removed + report.failed + report.orphans > 0 => {
                        tracing::info!(removed = report.removed, failed = report.failed, orphans = report.orphans, "scrubber pass");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "scrubber pass failed"),
                }
            }
        }
    }
}

fn config_hint() -> &'static str {
    if std::env::var_os("GLINT_CONFIG").is_some() {
        ""
    } else {
        " --config <same file>"
    }
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
