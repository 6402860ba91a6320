//! sqlx errors as `RepoError`s, and the retry of work whose connection was lost. Every query
//! of `db/` maps its errors here, so that what counts as transient or lost is decided once.

use sqlx::Pool;

use crate::domain::RepoError;

/// Database error codes that mean "try again": SQLite busy/locked (5, 6, and their extended
/// forms), PostgreSQL serialization failure, deadlock, and a server not accepting connections.
fn is_transient(code: &str) -> bool {
    let sqlite = code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
    sqlite || matches!(code, "40001" | "40P01" | "57P03")
}

/// PostgreSQL codes of a connection the server ended: admin or crash shutdown
/// (`pg_terminate_backend` included) and connection exceptions (08…).
fn is_connection_gone(code: &str) -> bool {
    matches!(code, "57P01" | "57P02") || code.starts_with("08")
}

/// Whether the error broke the connection itself, so the same work may succeed on another.
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| is_connection_gone(&c)),
        _ => false,
    }
}

/// What a failed query means to the caller: a lost connection, a duplicate key, a statement
/// timeout, a transient failure, or anything else.
pub(super) fn map_err(e: sqlx::Error) -> RepoError {
    match e {
        ref lost if connection_lost(lost) => RepoError::ConnectionLost(lost.to_string()),
        sqlx::Error::Database(db) if db.is_unique_violation() => RepoError::Duplicate,
        // query_canceled: `statement_timeout` (Glint does not cancel statements otherwise).
        sqlx::Error::Database(db) if db.code().as_deref() == Some("57014") => {
            RepoError::TimedOut(db.to_string())
        }
        sqlx::Error::Database(db) if db.code().is_some_and(|c| is_transient(&c)) => {
            RepoError::Unavailable(db.to_string())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            RepoError::Unavailable(e.to_string())
        }
        other => RepoError::Other(other.to_string()),
    }
}

/// Attempts of an operation that keeps failing on lost connections.
const LOST_CONNECTION_ATTEMPTS: usize = 3;

/// Runs `attempt` — a read, or a write whose condition makes a repeat harmless — again when
/// its connection was lost, after the pool is rid of its other dead connections (a restarted
/// database leaves every pooled connection dead, and each would otherwise cost one client a 503).
pub(super) async fn retry_on_lost<DB, T, F, Fut>(
    pool: &Pool<DB>,
    mut attempt: F,
) -> Result<T, RepoError>
where
    DB: sqlx::Database,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RepoError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(RepoError::ConnectionLost(why)) if tries < LOST_CONNECTION_ATTEMPTS => {
                tracing::warn!(error = ?why, "database connection lost; retrying on a fresh one");
                purge_dead_connections(pool).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Pings every idle connection of the pool at once; the dead ones are closed on release.
async fn purge_dead_connections<DB: sqlx::Database>(pool: &Pool<DB>) {
    use sqlx::Connection as _;
    let mut idle = Vec::new();
    while let Some(connection) = pool.try_acquire() {
        idle.push(connection);
    }
    // All at once: against a database that does not answer, one at a time would hold every
    // idle connection for 2 s each, longer than the pool's own timeout.
    let pings = idle.iter_mut().map(|connection| async move {
        let alive = tokio::time::timeout(std::time::Duration::from_secs(2), connection.ping())
            .await
            .is_ok_and(|ping| ping.is_ok());
        if !alive {
            connection.close_on_drop();
        }
    });
    futures_util::future::join_all(pings).await;
}

#[cfg(test)]
mod tests {
    use super::{is_connection_gone, is_transient};

    #[test]
    fn transient_database_errors_are_retryable() {
        for code in ["5", "6", "517", "262", "40001", "40P01", "57P03"] {
            assert!(is_transient(code), "{code}");
        }
        for code in ["19", "2067", "23505", "42P01", "57014"] {
            assert!(!is_transient(code), "{code}");
        }
        for code in ["57P01", "57P02", "08006", "08003"] {
            assert!(is_connection_gone(code), "{code}");
        }
    }
}
