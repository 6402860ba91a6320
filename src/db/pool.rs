//! Glint's own connection pool over sqlx connections.
//!
//! sqlx's `Pool` pings every connection when it is released (`PoolConnection::return_to_pool`),
//! which doubles the round trips of every statement: on MariaDB, a show that takes one
//! statement cost two. This pool returns a connection without a round trip when the operation
//! that used it finished, and closes it instead when it did not (a cancelled request, a lost
//! connection, a transaction never committed or rolled back): such a connection may be in the
//! middle of a reply, and closing it is also what rolls an unfinished transaction back.
//!
//! What it keeps of sqlx's pool: at most `max_connections` open at once, waits in FIFO order
//! up to `acquire_timeout` (then `PoolTimedOut`), connections replaced after `max_lifetime`
//! and closed after `idle_timeout` unused, the most recently used connection taken first. The
//! repository uses `&DbPool` as an sqlx `Executor`, exactly as it would use `&Pool`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::{Connection, Database, Describe, Either, Error, Execute, Executor, TransactionManager};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Opens one connection, session settings included.
pub type ConnectFn<DB> =
    Arc<dyn Fn() -> BoxFuture<'static, Result<<DB as Database>::Connection, Error>> + Send + Sync>;

/// The pool's limits (sqlx's `PoolOptions` of the same names).
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub max_lifetime: Duration,
    pub idle_timeout: Duration,
}

/// A pool of connections to one database; cloning shares it.
pub struct DbPool<DB: Database>(Arc<Shared<DB>>);

struct Shared<DB: Database> {
    connect: ConnectFn<DB>,
    limits: PoolLimits,
    /// Connections not in use: the most recently released at the back.
    idle: Mutex<VecDeque<Idle<DB>>>,
    /// One permit per connection in use; idle ones hold none. A connection is opened only when
    /// none is idle, so at most `max_connections` are ever open.
    permits: Arc<Semaphore>,
    closed: AtomicBool,
}

struct Idle<DB: Database> {
    connection: DB::Connection,
    opened: Instant,
    since: Instant,
}

impl<DB: Database> Clone for DbPool<DB> {
    fn clone(&self) -> Self {
        DbPool(self.0.clone())
    }
}

impl<DB: Database> fmt::Debug for DbPool<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbPool")
            .field("database", &DB::NAME)
            .field("limits", &self.0.limits)
            .field("idle", &self.idle_count())
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl<DB: Database> DbPool<DB> {
    /// A pool that opens connections with `connect` as they are needed.
    pub fn new(connect: ConnectFn<DB>, limits: PoolLimits) -> DbPool<DB> {
        DbPool(Arc::new(Shared {
            connect,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1) as usize)),
            limits,
            idle: Mutex::new(VecDeque::new()),
            closed: AtomicBool::new(false),
        }))
    }

    /// A connection for one operation: an idle one, or a new one when none is idle. Waits
    /// for a free place at most `acquire_timeout` (opening the connection included).
    pub async fn acquire(&self) -> Result<PooledConnection<DB>, Error> {
        let shared = &self.0;
        let timeout = shared.limits.acquire_timeout;
        let deadline = Instant::now() + timeout;
        let permit =
            match tokio::time::timeout(timeout, shared.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(Error::PoolClosed),
                Err(_) => return Err(Error::PoolTimedOut),
            };
        if let Some((connection, opened)) = self.take_idle() {
            return Ok(self.checked_out(connection, opened, permit));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let connection = match tokio::time::timeout(left, (shared.connect)()).await {
            Ok(connected) => connected?,
            Err(_) => return Err(Error::PoolTimedOut),
        };
        Ok(self.checked_out(connection, Instant::now(), permit))
    }

    /// A write transaction on a connection of its own (`BEGIN` sent).
    pub async fn begin(&self) -> Result<DbTransaction<DB>, Error> {
        self.begin_with(None).await
    }

    /// `begin`, opening the transaction with `statement` instead of `BEGIN` (one that sets
    /// the transaction's isolation first, say).
    pub async fn begin_with(
        &self,
        statement: Option<&'static str>,
    ) -> Result<DbTransaction<DB>, Error> {
        let mut connection = self.acquire().await?;
        DB::TransactionManager::begin(&mut connection, statement.map(Into::into)).await?;
        Ok(DbTransaction {
            connection,
            finished: false,
        })
    }

    /// Pings every idle connection at once and closes those that do not answer within
    /// `wait`: after one lost connection, a restarted database has left all of them dead.
    pub async fn close_dead_idle(&self, wait: Duration) {
        let idle: Vec<Idle<DB>> = self.idle().drain(..).collect();
        // All at once: against a database that does not answer, one at a time would take
        // `wait` for each idle connection.
        let pinged = futures_util::future::join_all(idle.into_iter().map(|mut idle| async move {
            let alive = tokio::time::timeout(wait, idle.connection.ping())
                .await
                .is_ok_and(|ping| ping.is_ok());
            alive.then_some(idle)
        }))
        .await;
        let mut idle = self.idle();
        for alive in pinged.into_iter().flatten() {
            idle.push_front(alive);
        }
    }

    /// Closes the idle connections and refuses new checkouts; connections in use are closed
    /// when they are released.
    pub async fn close(&self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.permits.close();
        let idle: Vec<Idle<DB>> = self.idle().drain(..).collect();
        for idle in idle {
            let _ = idle.connection.close().await;
        }
    }

    /// Connections open and not in use.
    pub fn idle_count(&self) -> usize {
        self.idle().len()
    }

    /// Connections checked out now.
    pub fn in_use(&self) -> usize {
        (self.0.limits.max_connections.max(1) as usize)
            .saturating_sub(self.0.permits.available_permits())
    }

    fn idle(&self) -> MutexGuard<'_, VecDeque<Idle<DB>>> {
        // A panic while the lock was held cannot leave the queue half-changed: every
        // operation on it is a single push or pop.
        self.0.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection still within its lifetime; expired ones are
    /// dropped on the way (from both ends: the oldest sit at the front).
    fn take_idle(&self) -> Option<(DB::Connection, Instant)> {
        let limits = self.0.limits;
        let now = Instant::now();
        let expired = |idle: &Idle<DB>| {
            now.duration_since(idle.opened) >= limits.max_lifetime
                || now.duration_since(idle.since) >= limits.idle_timeout
        };
        let mut queue = self.idle();
        while queue.front().is_some_and(expired) {
            queue.pop_front();
        }
        while let Some(idle) = queue.pop_back() {
            if !expired(&idle) {
                return Some((idle.connection, idle.opened));
            }
        }
        None
    }

    fn checked_out(
        &self,
        connection: DB::Connection,
        opened: Instant,
        permit: OwnedSemaphorePermit,
    ) -> PooledConnection<DB> {
        PooledConnection {
            connection: Some(connection),
            opened,
            reusable: false,
            pool: self.clone(),
            _permit: permit,
        }
    }
}

/// A connection checked out of a `DbPool`. Dropped, it goes back to the pool only if
/// `reusable` was set by whoever used it to the end; otherwise it is closed.
pub struct PooledConnection<DB: Database> {
    connection: Option<DB::Connection>,
    opened: Instant,
    reusable: bool,
    pool: DbPool<DB>,
    _permit: OwnedSemaphorePermit,
}

impl<DB: Database> PooledConnection<DB> {
    /// Marks the connection as in a clean state (its last operation ran to the end), so that
    /// it is reused when dropped.
    pub fn release(mut self) {
        self.reusable = true;
    }

    /// Whether an operation that ended with `outcome` left the connection in step with the
    /// server: it did if it succeeded or the server itself answered with an error.
    fn settle<T>(&mut self, outcome: &Result<T, Error>) {
        self.reusable = matches!(outcome, Ok(_) | Err(Error::Database(_)));
    }
}

impl<DB: Database> std::ops::Deref for PooledConnection<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        // Only `Drop` takes it out.
        self.connection
            .as_ref()
            .expect("connection present until drop")
    }
}

impl<DB: Database> std::ops::DerefMut for PooledConnection<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        self.connection
            .as_mut()
            .expect("connection present until drop")
    }
}

impl<DB: Database> Drop for PooledConnection<DB> {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        let shared = &self.pool.0;
        if self.reusable
            && !shared.closed.load(Ordering::SeqCst)
            && self.opened.elapsed() < shared.limits.max_lifetime
        {
            // Back in the queue before the permit is returned (when `self` is gone), so a
            // waiter woken by the permit finds it.
            self.pool.idle().push_back(Idle {
                connection,
                opened: self.opened,
                since: Instant::now(),
            });
        }
        // Otherwise the connection is dropped, which closes its socket without a goodbye.
    }
}

/// A transaction on a connection of its own. Dropped without `commit` or `rollback`, its
/// connection is closed, which makes the server roll the transaction back.
pub struct DbTransaction<DB: Database> {
    connection: PooledConnection<DB>,
    finished: bool,
}

impl<DB: Database> DbTransaction<DB> {
    pub async fn commit(mut self) -> Result<(), Error> {
        let outcome = DB::TransactionManager::commit(&mut self.connection).await;
        self.finished = outcome.is_ok();
        outcome
    }

    pub async fn rollback(mut self) -> Result<(), Error> {
        let outcome = DB::TransactionManager::rollback(&mut self.connection).await;
        self.finished = outcome.is_ok();
        outcome
    }

    /// Rolls back a transaction that found nothing to do, keeping its connection. A failed
    /// rollback needs no answer: the connection is then closed, which rolls back as well.
    pub async fn abandon(self) {
        let _ = self.rollback().await;
    }
}

impl<DB: Database> Drop for DbTransaction<DB> {
    fn drop(&mut self) {
        self.connection.reusable = self.finished;
    }
}

impl<DB: Database> std::ops::Deref for DbTransaction<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.connection
    }
}

impl<DB: Database> std::ops::DerefMut for DbTransaction<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.connection
    }
}

/// `&DbPool` runs a statement on a connection of its own, as `&Pool` does. Rows are read to
/// the end before they are handed on (the repository reads whole results anyway), so the
/// connection is back in the pool by the time the caller sees them.
impl<'p, DB: Database> Executor<'p> for &'_ DbPool<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let pool = self.clone();
        stream::once(async move {
            let mut connection = pool.acquire().await?;
            let outcome: Result<Vec<_>, Error> =
                (&mut *connection).fetch_many(query).try_collect().await;
            connection.settle(&outcome);
            outcome
        })
        .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut connection = pool.acquire().await?;
            let outcome = (&mut *connection).fetch_optional(query).await;
            connection.settle(&outcome);
            outcome
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement<'q>, Error>>
    where
        'p: 'e,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut connection = pool.acquire().await?;
            let outcome = (&mut *connection).prepare_with(sql, parameters).await;
            connection.settle(&outcome);
            outcome
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<DB>, Error>>
    where
        'p: 'e,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut connection = pool.acquire().await?;
            let outcome = (&mut *connection).describe(sql).await;
            connection.settle(&outcome);
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Sqlite};

    use super::{ConnectFn, DbPool, PoolLimits};

    const LIMITS: PoolLimits = PoolLimits {
        max_connections: 2,
        acquire_timeout: Duration::from_millis(300),
        max_lifetime: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(600),
    };

    /// A pool over a SQLite file in `dir`, and the number of connections it has opened.
    fn pool(dir: &tempfile::TempDir, limits: PoolLimits) -> (DbPool<Sqlite>, Arc<AtomicUsize>) {
        let opened = Arc::new(AtomicUsize::new(0));
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("pool.db"))
            .create_if_missing(true);
        let counter = opened.clone();
        let connect: ConnectFn<Sqlite> = Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let options = options.clone();
            Box::pin(async move { options.connect().await })
        });
        (DbPool::new(connect, limits), opened)
    }

    #[tokio::test]
    async fn a_finished_statement_returns_its_connection_without_a_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pool, opened) = pool(&dir, LIMITS);
        for _ in 0..5 {
            sqlx::query("SELECT 1")
                .fetch_one(&pool)
                .await
                .expect("runs");
        }
        assert_eq!(opened.load(Ordering::SeqCst), 1);
        assert_eq!((pool.idle_count(), pool.in_use()), (1, 0));
    }

    #[tokio::test]
    async fn an_error_the_server_answered_keeps_the_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pool, opened) = pool(&dir, LIMITS);
        let missing = sqlx::query("SELECT * FROM no_such_table")
            .execute(&pool)
            .await;
        assert!(matches!(missing, Err(sqlx::Error::Database(_))));
        sqlx::query("SELECT 1").execute(&pool).await.expect("runs");
        assert_eq!(opened.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_dropped_unfinished_is_closed_not_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pool, opened) = pool(&dir, LIMITS);
        let connection = pool.acquire().await.expect("acquires");
        drop(connection);
        assert_eq!(pool.idle_count(), 0);
        let connection = pool.acquire().await.expect("acquires");
        connection.release();
        assert_eq!((opened.load(Ordering::SeqCst), pool.idle_count()), (2, 1));
    }

    #[tokio::test]
    async fn a_transaction_dropped_without_commit_is_rolled_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pool, _) = pool(&dir, LIMITS);
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&pool)
            .await
            .expect("creates");
        let mut tx = pool.begin().await.expect("begins");
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *tx)
            .await
            .expect("inserts");
        drop(tx);
        let mut tx = pool.begin().await.expect("begins");
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *tx)
            .await
            .expect("inserts");
        tx.commit().await.expect("commits");
        let values: Vec<i64> = sqlx::query_scalar("SELECT v FROM t")
            .fetch_all(&pool)
            .await
            .expect("reads");
        assert_eq!(values, [2]);
    }

    #[tokio::test]
    async fn waiting_for_a_connection_ends_at_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pool, _) = pool(&dir, LIMITS);
        let first = pool.acquire().await.expect("acquires");
        let second = pool.acquire().await.expect("acquires");
        assert!(matches!(
            pool.acquire().await.map(|_| ()),
            Err(sqlx::Error::PoolTimedOut)
        ));
        first.release();
        pool.acquire().await.expect("the released one").release();
        drop(second);
        assert_eq!(pool.in_use(), 0);
    }

    #[tokio::test]
    async fn connections_past_their_lifetime_or_idle_time_are_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        for limits in [
            PoolLimits {
                max_lifetime: Duration::ZERO,
                ..LIMITS
            },
            PoolLimits {
                idle_timeout: Duration::from_millis(20),
                ..LIMITS
            },
        ] {
            let (pool, opened) = pool(&dir, limits);
            sqlx::query("SELECT 1").execute(&pool).await.expect("runs");
            tokio::time::sleep(Duration::from_millis(40)).await;
            sqlx::query("SELECT 1").execute(&pool).await.expect("runs");
            assert_eq!(opened.load(Ordering::SeqCst), 2, "{limits:?}");
        }
    }

    #[tokio::test]
    async fn a_closed_pool_refuses_checkouts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pool, _) = pool(&dir, LIMITS);
        sqlx::query("SELECT 1").execute(&pool).await.expect("runs");
        pool.close().await;
        assert_eq!(pool.idle_count(), 0);
        assert!(matches!(
            pool.acquire().await.map(|_| ()),
            Err(sqlx::Error::PoolClosed)
        ));
    }
}
