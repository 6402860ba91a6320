//! sqlx errors as `RepoError`s, and the retry of work whose connection was lost or whose
//! transaction the database rolled back. Every query
//! of `db/` maps its errors here, so that what counts as transient or lost is decided once.

use super::pool::DbPool;
use crate::domain::RepoError;

/// Database error codes that mean "try again later": SQLite busy/locked (5, 6, and their
/// extended forms), a PostgreSQL server not accepting connections, a MySQL lock wait timeout.
fn is_transient(code: &str, mysql_number: Option<u16>) -> bool {
    let sqlite = code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
    sqlite || code == "57P03" || mysql_number == Some(1205)
}

/// A transaction the database rolled back to break a conflict: PostgreSQL serialization
/// failure and deadlock; MySQL/MariaDB deadlock (1213, SQLSTATE 40001), which is also how
/// Galera reports a certification failure.
fn is_conflict(code: &str, mysql_number: Option<u16>) -> bool {
    matches!(code, "40001" | "40P01") || mysql_number == Some(1213)
}

/// Codes of a connection the server ended: PostgreSQL admin or crash shutdown
/// (`pg_terminate_backend` included) and connection exceptions (08…, which MySQL uses too:
/// 08S01 for a server shutting down, a Galera node not ready); MySQL/MariaDB's killed
/// connection (1927) and MySQL 8's idle disconnect (4031).
fn is_connection_gone(code: &str, mysql_number: Option<u16>) -> bool {
    matches!(code, "57P01" | "57P02")
        || code.starts_with("08")
        || matches!(mysql_number, Some(1927 | 4031))
}

/// A statement cancelled for running past `statement_timeout`: PostgreSQL's query_canceled
/// (Glint cancels statements in no other way), MariaDB's max_statement_time (1969), MySQL's
/// max_execution_time (3024).
fn is_statement_timeout(code: &str, mysql_number: Option<u16>) -> bool {
    code == "57014" || matches!(mysql_number, Some(1969 | 3024))
}

/// MySQL's "Incorrect string value … for column `db`.`table`.`column`": text a utf8mb3 column
/// cannot hold.
const INCORRECT_STRING_VALUE: u16 = 1366;

/// The column a MySQL message names last (`db`.`table`.`column` or 'column'), or "a column".
fn column_named(message: &str) -> String {
    let column = message
        .split("for column ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|quoted| quoted.rsplit('.').next())
        .map(|c| c.trim_matches(|ch| ch == '`' || ch == '\''));
    column
        .filter(|c| !c.is_empty())
        .unwrap_or("a column")
        .to_owned()
}

/// The server's own error number, on MySQL/MariaDB (their SQLSTATEs are too coarse).
fn mysql_number(db: &dyn sqlx::error::DatabaseError) -> Option<u16> {
    db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        .map(sqlx::mysql::MySqlDatabaseError::number)
}

/// Whether the error broke the connection itself, so the same work may succeed on another.
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| is_connection_gone(&c, mysql_number(db.as_ref()))),
        _ => false,
    }
}

/// What a failed query means to the caller: a lost connection, a duplicate key, a statement
/// timeout, a transient failure, or anything else.
pub(super) fn map_err(e: sqlx::Error) -> RepoError {
    if connection_lost(&e) {
        return RepoError::ConnectionLost(e.to_string());
    }
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => RepoError::Duplicate,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            let number = mysql_number(db.as_ref());
            if number == Some(INCORRECT_STRING_VALUE) {
                RepoError::Unstorable(column_named(db.message()))
            } else if is_statement_timeout(&code, number) {
                RepoError::TimedOut(db.to_string())
            } else if is_conflict(&code, number) {
                RepoError::Conflict(db.to_string())
            } else if is_transient(&code, number) {
                RepoError::Unavailable(db.to_string())
            } else {
                RepoError::Other(db.to_string())
            }
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
/// the database rolled it back to break a conflict, or when its connection was lost, after the pool is rid of its other dead connections (a restarted
/// database leaves every pooled connection dead, and each would otherwise cost one client a 503).
pub(super) async fn retry_on_lost<DB, T, F, Fut>(
    pool: &DbPool<DB>,
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
                pool.close_dead_idle(PING_WAIT).await;
                tries += 1;
            }
            // Rolled back whole, so running it again is what oslo.db's retry on deadlock does.
            Err(RepoError::Conflict(why)) if tries < LOST_CONNECTION_ATTEMPTS => {
                tracing::warn!(error = ?why, "transaction rolled back by a conflict; retrying");
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Attempts of a transaction the database keeps rolling back to break conflicts.
const CONFLICT_ATTEMPTS: u32 = 6;

/// Runs a whole write transaction again when the database rolled it back to break a deadlock
/// or, on Galera, a certification conflict, as Glance's image writes do (oslo.db's
/// `retry_on_deadlock`). Such a transaction left nothing behind, so any transaction may be
/// repeated; a lost connection is not retried here, since its COMMIT may have taken effect.
/// Waits 10 ms doubling, with jitter, so that the two sides of a deadlock do not meet again.
pub(super) async fn retry_on_conflict<T, F, Fut>(mut transaction: F) -> Result<T, RepoError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RepoError>>,
{
    let mut tries = 1;
    loop {
        match transaction().await {
            Err(RepoError::Conflict(why)) if tries < CONFLICT_ATTEMPTS => {
                let base = 10u64 << tries;
                let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
                tracing::warn!(error = ?why, attempt = tries, "transaction rolled back by a conflict; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(base / 2 + jitter)).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// How long a pooled connection may take to answer a ping after a lost connection.
const PING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::{
        column_named, is_conflict, is_connection_gone, is_statement_timeout, is_transient,
    };

    #[test]
    fn database_errors_are_classified() {
        for code in ["5", "6", "517", "262", "57P03"] {
            assert!(is_transient(code, None), "{code}");
        }
        assert!(is_transient("HY000", Some(1205)), "lock wait timeout");
        for code in ["19", "2067", "23505", "42P01", "57014", "40001"] {
            assert!(!is_transient(code, None), "{code}");
        }
        for code in ["40001", "40P01"] {
            assert!(is_conflict(code, None), "{code}");
        }
        assert!(
            is_conflict("40001", Some(1213)),
            "MySQL deadlock, Galera certification"
        );
        assert!(
            !is_conflict("HY000", Some(1205)),
            "a lock wait timeout is not rolled back whole"
        );
        for code in ["57P01", "57P02", "08006", "08003", "08S01"] {
            assert!(is_connection_gone(code, None), "{code}");
        }
        assert!(is_connection_gone("70100", Some(1927)));
        assert!(!is_connection_gone("70100", Some(1969)));
        assert!(is_statement_timeout("70100", Some(1969)));
        assert!(is_statement_timeout("HY000", Some(3024)));
        assert!(is_statement_timeout("57014", None));
        assert_eq!(
            column_named("Incorrect string value: '\\xF0\\x9F\\x98\\x80' for column `glance`.`images`.`name` at row 1"),
            "name"
        );
        assert_eq!(
            column_named("Incorrect string value: 'x' for column 'value' at row 1"),
            "value"
        );
        assert_eq!(column_named("something else"), "a column");
    }
}
