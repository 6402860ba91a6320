//! The `glint` command line: parse arguments, load configuration, call the library
//! (`glint::cli`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use glint::cli;
use glint::config::Config;

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
    /// Image data operations.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Copy every image with data in one store to another (several stores, enabled_backends):
    /// each copy is verified against the image's checksum and multihash before it is recorded;
    /// a run started again after an interruption copies nothing twice.
    Migrate(MigrateArgs),
    /// Policy rules (like oslopolicy-sample-generator and oslopolicy-policy-upgrade).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// This node's image cache (image_cache_dir) and its records in the database.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Check the setup: the configuration, the database schema, that every store (and the
    /// staging store) takes, returns and deletes a small object, and Keystone's sign-in of
    /// the service user. One line per check; exits 1 when any failed.
    Doctor,
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// List the cached images (size, hits, last access) and the queue.
    List,
    /// Remove the least recently used cached images until the cache is within
    /// image_cache_max_size (like glance-cache-pruner).
    Prune,
    /// Remove failed cache files and incomplete ones older than image_cache_stall_time
    /// (like glance-cache-cleaner).
    Clean,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print the built-in rules as a policy.yaml to edit (every rule commented out).
    ListDefaults,
    /// Check the configured policy file: exits 1, saying why, when Glint would refuse it.
    Check,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Copy one image's data into another store, verified before it is recorded.
    Copy {
        /// The image id.
        image: String,
        /// The store to copy into (an enabled_backends id).
        #[arg(long)]
        to: String,
        /// The store to read from (default: the heaviest store holding the data).
        #[arg(long)]
        from: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct MigrateArgs {
    /// The store the images are in.
    #[arg(long)]
    from: String,
    /// The store to copy them into.
    #[arg(long)]
    to: String,
    /// Then remove each image's copy in --from (only after its copy in --to is verified and
    /// recorded; deactivated images keep theirs).
    #[arg(long)]
    delete_source: bool,
    /// Images copied at once.
    #[arg(long, default_value_t = 2)]
    parallel: usize,
    /// List what would be copied, and copy nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Create the schema or upgrade it to this version of Glint (like glance-manage db_sync).
    Sync,
    /// Print the schema version of the database (Glance's alembic revision and Glint's
    /// migration level) and the one this Glint expects.
    Version,
    /// Report what `db sync` would change, changing nothing; exits 1 when it would change
    /// something.
    Check,
    /// Remove rows of properties, tags, members, locations and tasks soft-deleted more than
    /// `--age-in-days` ago (like glance-manage db purge). Image rows stay: see
    /// purge-images-table.
    Purge(PurgeArgs),
    /// Remove image rows soft-deleted more than `--age-in-days` ago (default 180) that nothing
    /// refers to any more (like glance-manage db purge_images_table). Their ids can then be
    /// used again, which is why this is a command of its own.
    PurgeImagesTable(PurgeArgs),
    /// Load metadata definitions files into the database (like glance-manage db
    /// load_metadefs), all or nothing: a bad file changes nothing.
    #[command(visible_alias = "load_metadefs")]
    LoadMetadefs(LoadMetadefsArgs),
    /// Remove every metadata definition, resource types included (like glance-manage db
    /// unload_metadefs).
    #[command(visible_alias = "unload_metadefs")]
    UnloadMetadefs,
    /// Write each metadata definitions namespace to a file <display name>.json (like
    /// glance-manage db export_metadefs).
    #[command(visible_alias = "export_metadefs")]
    ExportMetadefs {
        /// The directory the files go to.
        #[arg(long, default_value = cli::DEFAULT_METADEFS_PATH)]
        path: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct LoadMetadefsArgs {
    /// The directory of the *.json files, or one file.
    #[arg(long, default_value = cli::DEFAULT_METADEFS_PATH)]
    path: PathBuf,
    /// Add to namespaces that exist what the files have and they do not (existing entries
    /// stay as they are); without it, an existing namespace is skipped.
    #[arg(long)]
    merge: bool,
    /// With --merge: entries both have take the files' values.
    #[arg(long, visible_alias = "prefer_new")]
    prefer_new: bool,
    /// With --merge: existing namespaces are removed and loaded anew from the files.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Debug, clap::Args)]
struct PurgeArgs {
    /// Rows soft-deleted at least this many days ago go (default 30; 180 for images).
    #[arg(long, visible_alias = "age_in_days")]
    age_in_days: Option<u32>,
    /// At most this many rows per table (default 100, as Glance; -1 = no limit).
    #[arg(
        long,
        visible_alias = "max_rows",
        default_value_t = 100,
        allow_negative_numbers = true
    )]
    max_rows: i64,
}

/// How long a stopping process waits for blocking tasks after serving ended.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// glibc keeps up to 8 malloc arenas per core, and image buffers freed on another thread
/// than the one that made them (blocking readers, librados) stay in their arena: the process
/// grew to twice what it held (a migration measured here: 250–290 MiB peak, 160 with one
/// arena per core, at the same CPU). Done before any thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = i32::try_from(cores.max(2)).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets an allocator tunable; no allocation is in progress.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args = Cli::parse();
    let config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("glint: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    glint::telemetry::init(config.logging);
    cli::log_config_warnings(&config);
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
        match args.command.unwrap_or(Command::Serve) {
            Command::Serve => cli::serve(&config).await,
            Command::Policy {
                command: PolicyCommand::ListDefaults,
            } => {
                print!("{}", glint::policy::defaults_as_yaml());
                Ok(())
            }
            Command::Policy {
                command: PolicyCommand::Check,
            } => glint::policy::Enforcer::new(&config.policy).map(|_| {
                match &config.policy.policy_file {
                    Some(file) => println!("{}: every rule reads", file.display()),
                    None => println!("no policy file: the built-in rules apply"),
                }
            }),
            Command::Scrub => cli::scrub(&config).await,
            Command::Cache { command } => {
                let action = match command {
                    CacheCommand::List => cli::CacheAction::List,
                    CacheCommand::Prune => cli::CacheAction::Prune,
                    CacheCommand::Clean => cli::CacheAction::Clean,
                };
                cli::cache(&config, action).await
            }
            Command::Doctor => cli::doctor(&config, args.config.as_deref()).await,
            Command::Image {
                command: ImageCommand::Copy { image, to, from },
            } => cli::image_copy(&config, &image, &to, from.as_deref()).await,
            Command::Migrate(args) => {
                cli::migrate(
                    &config,
                    &cli::MigrateOptions {
                        from: args.from,
                        to: args.to,
                        delete_source: args.delete_source,
                        parallel: args.parallel,
                        dry_run: args.dry_run,
                    },
                )
                .await
            }
            Command::Db {
                command: DbCommand::Sync,
            } => cli::db_sync(&config).await,
            Command::Db {
                command: DbCommand::Version,
            } => cli::db_version(&config).await,
            Command::Db {
                command: DbCommand::Check,
            } => cli::db_check(&config).await,
            Command::Db {
                command: DbCommand::LoadMetadefs(args),
            } => {
                cli::db_load_metadefs(
                    &config,
                    &cli::MetadefLoadOptions {
                        path: args.path,
                        merge: args.merge,
                        prefer_new: args.prefer_new,
                        overwrite: args.overwrite,
                    },
                )
                .await
            }
            Command::Db {
                command: DbCommand::UnloadMetadefs,
            } => cli::db_unload_metadefs(&config).await,
            Command::Db {
                command: DbCommand::ExportMetadefs { path },
            } => cli::db_export_metadefs(&config, &path).await,
            Command::Db {
                command: DbCommand::Purge(args),
            } => {
                cli::db_purge(
                    &config,
                    args.age_in_days.unwrap_or(30),
                    args.max_rows,
                    false,
                )
                .await
            }
            Command::Db {
                command: DbCommand::PurgeImagesTable(args),
            } => {
                cli::db_purge(
                    &config,
                    args.age_in_days.unwrap_or(180),
                    args.max_rows,
                    true,
                )
                .await
            }
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
