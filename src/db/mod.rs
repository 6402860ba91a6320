//! Metadata persistence: connection pools, embedded migrations, and the `ImageRepo`
//! implementation shared by PostgreSQL, MySQL/MariaDB and SQLite (`repo.rs`, generic over
//! `Dialect`).
//!
//! Inside, dependencies point one way: `uploads.rs`, `removals.rs` and `image_writes.rs` build
//! on `repo.rs`, which uses `list_sql.rs`; all of them use the leaves `errors.rs` (sqlx
//! errors, retries), `rows.rs` (row and time conversions), `sql_builder.rs` and `dialect.rs`.

mod cache;
mod dialect;
mod errors;
mod image_writes;
mod import_jobs;
mod list_sql;
mod locations;
mod members;
mod metadef_files;
mod metadefs;
mod pool;
mod purge;
mod removals;
mod repo;
mod rows;
mod schema;
mod sql_builder;
mod staging;
mod tasks;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, MySql, Postgres, Sqlite};

use crate::config::database::{DatabaseConfig, DatabaseUrl};
use crate::domain::tasks::TaskRepo;
use crate::domain::{ImageRepo, UploadRepo};
pub use dialect::Dialect;
pub use metadef_files::LoadError as MetadefLoadError;
use metadef_files::MetadefTables;
pub use pool::{DbPool, PoolLimits, PooledConnection};
pub use purge::Purged;
use repo::SqlRepo;
pub use schema::SchemaStatus;

/// Idle connections are closed after this long unused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("applying migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error(
        "this database was made by Glance, at alembic revision {found}; Glint serves Glance's \
         schema at {}, which `glance-manage db_sync` of Glance 2024.1 up to 33 writes: bring \
         the database there with Glance first",
        schema::GLANCE_REVISIONS.join(" or ")
    )]
    GlanceRevision { found: String },
}

/// The open database: the pools for one backend.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres(DbPool<Postgres>),
    MySql(DbPool<MySql>),
    /// SQLite allows one writer at a time: all writes go through a single-connection pool, so
    /// writers queue in the pool instead of failing with `database is locked`; readers use
    /// their own pool and, in WAL mode, never wait for the writer.
    Sqlite {
        read: DbPool<Sqlite>,
        write: DbPool<Sqlite>,
    },
}

impl Database {
    /// Opens pools (lazily: no connection is made until first use, except for SQLite, whose
    /// file is created here if missing).
    pub async fn connect(config: &DatabaseConfig) -> Result<Database, DbError> {
        let connect_error = |source| DbError::Connect {
            url: config.url.redacted(),
            source,
        };
        let limits = PoolLimits {
            max_connections: config.max_pool_size + config.max_overflow,
            acquire_timeout: Duration::from_secs(config.pool_timeout_secs),
            max_lifetime: Duration::from_secs(config.connection_recycle_secs),
            idle_timeout: IDLE_TIMEOUT,
        };
        match &config.url {
            DatabaseUrl::Postgres(url) => {
                let options: PgConnectOptions = url.parse().map_err(connect_error)?;
                let options = if config.statement_timeout_secs > 0 {
                    options.options([(
                        "statement_timeout",
                        format!("{}s", config.statement_timeout_secs),
                    )])
                } else {
                    options
                };
                let options = if options.get_application_name().is_some() {
                    options
                } else {
                    options.application_name("glint")
                };
                let connect: pool::ConnectFn<Postgres> = Arc::new(move || {
                    let options = options.clone();
                    Box::pin(async move { options.connect().await })
                });
                Ok(Database::Postgres(DbPool::new(connect, limits)))
            }
            DatabaseUrl::MySql(mysql) => {
                for option in &mysql.ignored {
                    tracing::warn!(option = %option, "database URL option ignored");
                }
                let options: MySqlConnectOptions = mysql.url.parse().map_err(connect_error)?;
                let statement_timeout = config.statement_timeout_secs;
                let connect: pool::ConnectFn<MySql> = Arc::new(move || {
                    let options = options.clone();
                    Box::pin(async move {
                        let mut connection = options.connect().await?;
                        mysql_session(&mut connection, statement_timeout).await?;
                        Ok(connection)
                    })
                });
                Ok(Database::MySql(DbPool::new(connect, limits)))
            }
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| connect_error(sqlx::Error::Io(e)))?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    // Only checkpoints and other processes can still make a connection wait.
                    .busy_timeout(Duration::from_secs(30));
                let read_options = options.clone().read_only(true);
                let write: pool::ConnectFn<Sqlite> = Arc::new(move || {
                    let options = options.clone();
                    Box::pin(async move { options.connect().await })
                });
                let read: pool::ConnectFn<Sqlite> = Arc::new(move || {
                    let options = read_options.clone();
                    Box::pin(async move { options.connect().await })
                });
                let write = DbPool::new(
                    write,
                    PoolLimits {
                        max_connections: 1,
                        ..limits
                    },
                );
                // The first connection creates the file (and turns WAL on) before any reader
                // opens it read-only.
                let first: PooledConnection<Sqlite> =
                    write.acquire().await.map_err(connect_error)?;
                first.release();
                let read = DbPool::new(read, limits);
                Ok(Database::Sqlite { read, write })
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Database::Postgres(_) => Postgres::LABEL,
            Database::MySql(_) => MySql::LABEL,
            Database::Sqlite { .. } => Sqlite::LABEL,
        }
    }

    /// Applies every pending migration (`glint db sync`).
    pub async fn sync(&self) -> Result<(), DbError> {
        match self {
            Database::Postgres(pool) => schema::sync::<Postgres>(pool).await,
            Database::MySql(pool) => schema::sync::<MySql>(pool).await,
            Database::Sqlite { write, .. } => schema::sync::<Sqlite>(write).await,
        }
    }

    /// Removes rows soft-deleted before `cutoff` (`glint db purge`; with `images_table`,
    /// `glint db purge-images-table`), at most `max_rows` per table.
    pub async fn purge(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        max_rows: Option<u64>,
        images_table: bool,
    ) -> Result<Purged, DbError> {
        let cutoff = cutoff.naive_utc();
        match self {
            Database::Postgres(pool) => purge::purge(pool, cutoff, max_rows, images_table).await,
            Database::MySql(pool) => purge::purge(pool, cutoff, max_rows, images_table).await,
            Database::Sqlite { write, .. } => {
                purge::purge(write, cutoff, max_rows, images_table).await
            }
        }
    }

    /// Loads metadata definitions into Glance's metadef tables in one transaction
    /// (`glint db load-metadefs`).
    pub async fn load_metadefs(
        &self,
        namespaces: &[crate::domain::metadef_files::NamespaceDefinition],
        mode: crate::domain::metadef_files::LoadMode,
    ) -> Result<Vec<crate::domain::metadef_files::NamespaceLoaded>, MetadefLoadError> {
        let now = crate::domain::image::now().naive_utc();
        match self {
            Database::Postgres(pool) => MetadefTables::load(pool, namespaces, mode, now).await,
            Database::MySql(pool) => MetadefTables::load(pool, namespaces, mode, now).await,
            Database::Sqlite { write, .. } => {
                MetadefTables::load(write, namespaces, mode, now).await
            }
        }
    }

    /// Empties the metadef tables (`glint db unload-metadefs`).
    pub async fn unload_metadefs(&self) -> Result<crate::domain::metadef_files::Unloaded, DbError> {
        match self {
            Database::Postgres(pool) => MetadefTables::unload(pool).await,
            Database::MySql(pool) => MetadefTables::unload(pool).await,
            Database::Sqlite { write, .. } => MetadefTables::unload(write).await,
        }
    }

    /// Every namespace with its contents (`glint db export-metadefs`).
    pub async fn export_metadefs(
        &self,
    ) -> Result<Vec<crate::domain::metadef_files::NamespaceDefinition>, DbError> {
        match self {
            Database::Postgres(pool) => MetadefTables::export(pool).await,
            Database::MySql(pool) => MetadefTables::export(pool).await,
            Database::Sqlite { write, .. } => MetadefTables::export(write).await,
        }
    }

    /// The migrations this binary carries for this database: version and description.
    pub fn migrations(&self) -> Vec<(i64, String)> {
        let migrator = match self {
            Database::Postgres(_) => Postgres::migrator(),
            Database::MySql(_) => MySql::migrator(),
            Database::Sqlite { .. } => Sqlite::migrator(),
        };
        migrator
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    }

    pub async fn schema_status(&self) -> Result<SchemaStatus, DbError> {
        match self {
            Database::Postgres(pool) => schema::status::<Postgres>(pool).await,
            Database::MySql(pool) => schema::status::<MySql>(pool).await,
            Database::Sqlite { write, .. } => schema::status::<Sqlite>(write).await,
        }
    }

    /// Whether the database holds no tables of ours at all (a brand-new SQLite file).
    pub async fn is_empty(&self) -> Result<bool, DbError> {
        Ok(self.schema_status().await?.applied.is_none())
    }

    /// The image metadata repository; `read_locations`: whether images are read with their
    /// locations' store ids (`Image::stores`), which only several stores need.
    pub fn image_repo(&self, read_locations: bool) -> Arc<dyn ImageRepo> {
        match self {
            Database::Postgres(pool) => {
                Arc::new(SqlRepo::new(pool.clone(), pool.clone(), read_locations))
            }
            Database::MySql(pool) => {
                Arc::new(SqlRepo::new(pool.clone(), pool.clone(), read_locations))
            }
            Database::Sqlite { read, write } => {
                Arc::new(SqlRepo::new(read.clone(), write.clone(), read_locations))
            }
        }
    }

    /// Each pool's idle and in-use connections, for `/metrics`. PostgreSQL and MySQL serve
    /// reads and writes from one pool: it is reported once, as `write`.
    pub fn pool_connections(&self) -> Vec<crate::metrics::PoolConnections> {
        fn of<DB: sqlx::Database>(
            pool: &'static str,
            p: &DbPool<DB>,
        ) -> crate::metrics::PoolConnections {
            crate::metrics::PoolConnections {
                pool,
                idle: p.idle_count(),
                in_use: p.in_use(),
            }
        }
        match self {
            Database::Postgres(pool) => vec![of("write", pool)],
            Database::MySql(pool) => vec![of("write", pool)],
            Database::Sqlite { read, write } => vec![of("read", read), of("write", write)],
        }
    }

    pub fn upload_repo(&self) -> Arc<dyn UploadRepo> {
        match self {
            Database::Postgres(pool) => Arc::new(SqlRepo::new(pool.clone(), pool.clone(), true)),
            Database::MySql(pool) => Arc::new(SqlRepo::new(pool.clone(), pool.clone(), true)),
            Database::Sqlite { read, write } => {
                Arc::new(SqlRepo::new(read.clone(), write.clone(), true))
            }
        }
    }

    /// Glance's `metadef_*` tables.
    pub fn metadef_repo(&self) -> Arc<dyn crate::domain::metadefs::MetadefRepo> {
        match self {
            Database::Postgres(pool) => Arc::new(SqlRepo::new(pool.clone(), pool.clone(), false)),
            Database::MySql(pool) => Arc::new(SqlRepo::new(pool.clone(), pool.clone(), false)),
            Database::Sqlite { read, write } => {
                Arc::new(SqlRepo::new(read.clone(), write.clone(), false))
            }
        }
    }

    pub fn task_repo(&self) -> Arc<dyn TaskRepo> {
        match self {
            Database::Postgres(pool) => Arc::new(SqlRepo::new(pool.clone(), pool.clone(), true)),
            Database::MySql(pool) => Arc::new(SqlRepo::new(pool.clone(), pool.clone(), true)),
            Database::Sqlite { read, write } => {
                Arc::new(SqlRepo::new(read.clone(), write.clone(), true))
            }
        }
    }

    /// The image cache's records (`node_reference`, `cached_images`).
    pub fn cache_repo(&self) -> Arc<dyn crate::domain::cache::CacheRepo> {
        match self {
            Database::Postgres(pool) => Arc::new(SqlRepo::new(pool.clone(), pool.clone(), false)),
            Database::MySql(pool) => Arc::new(SqlRepo::new(pool.clone(), pool.clone(), false)),
            Database::Sqlite { read, write } => {
                Arc::new(SqlRepo::new(read.clone(), write.clone(), false))
            }
        }
    }

    pub async fn close(&self) {
        match self {
            Database::Postgres(pool) => pool.close().await,
            Database::MySql(pool) => pool.close().await,
            Database::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
        }
    }
}

/// Session settings of every MySQL connection: READ COMMITTED, the isolation the repository's
/// conditional writes are written for (as on PostgreSQL; InnoDB's default REPEATABLE READ
/// would answer a transaction's reads from its first snapshot); no 1 MiB cap on the JSON the
/// image query aggregates (MariaDB's JSON_ARRAYAGG is bound by `group_concat_max_len`); and
/// `statement_timeout` as MariaDB's `max_statement_time` or MySQL's `max_execution_time`.
async fn mysql_session(
    connection: &mut sqlx::MySqlConnection,
    statement_timeout_secs: u64,
) -> Result<(), sqlx::Error> {
    use sqlx::Executor as _;
    connection
        .execute(
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; \
             SET SESSION group_concat_max_len = 4294967295",
        )
        .await?;
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut *connection)
        .await?;
    let mariadb = version.contains("MariaDB");
    if !mariadb {
        // Glance's DATETIME columns keep whole seconds; MySQL would round a written time to
        // the nearest one (MariaDB truncates), a second later than the time Glint reports.
        connection
            .execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',TIME_TRUNCATE_FRACTIONAL')")
            .await?;
    }
    if statement_timeout_secs > 0 {
        let limit = if mariadb {
            format!("max_statement_time = {statement_timeout_secs}")
        } else {
            format!(
                "max_execution_time = {}",
                statement_timeout_secs.saturating_mul(1000)
            )
        };
        // Lock waits count against the same bound, as they do under PostgreSQL's
        // statement_timeout: a table or row lock held elsewhere (an operator's `LOCK TABLES`,
        // a stuck transaction) would otherwise hold the request for a year or 50 s.
        let set = format!(
            "SET SESSION {limit}, lock_wait_timeout = {statement_timeout_secs}, \
             innodb_lock_wait_timeout = {statement_timeout_secs}"
        );
        connection.execute(set.as_str()).await?;
    }
    Ok(())
}
