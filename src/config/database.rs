//! `[database]` options. Accepts oslo.db/SQLAlchemy connection URLs so that an operator's
//! existing glance-api.conf works unchanged.

use std::path::{Path, PathBuf};

use super::ini::Ini;
use super::{parse_int, ConfigError};

/// Which database, and where.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A `postgres://` URL as sqlx reads it (the SQLAlchemy driver suffix removed).
    Postgres(String),
    /// The database file.
    Sqlite(PathBuf),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// Parses `[database] connection`:
    /// `sqlite:///relative.db`, `sqlite:////absolute.db`, `postgresql://…`, `postgres://…`,
    /// `postgresql+psycopg2://…` (any `+driver`).
    pub fn parse(raw: &str) -> Result<DatabaseUrl, ConfigError> {
        let invalid = |message: String| ConfigError::invalid("database", "connection", message);
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or_else(|| invalid(format!("{:?} is not a database URL", redact(raw))))?;
        let dialect = scheme
            .split('+')
            .next()
            .unwrap_or(scheme)
            .to_ascii_lowercase();
        match dialect.as_str() {
            "postgresql" | "postgres" => Ok(DatabaseUrl::Postgres(format!("postgres://{rest}"))),
            "sqlite" => {
                // SQLAlchemy: three slashes then a relative path, four for an absolute one.
                let path = rest.strip_prefix('/').unwrap_or(rest);
                let path = path.split('?').next().unwrap_or(path);
                if path.is_empty() || path == ":memory:" {
                    return Err(invalid(
                        "an in-memory SQLite database would lose every image at exit; give a file path".to_owned(),
                    ));
                }
                Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
            }
            _ => Err(invalid(format!(
                "unsupported database scheme {scheme:?}: Glint stores metadata in PostgreSQL \
                 (postgresql://) or SQLite (sqlite:///path)"
            ))),
        }
    }

    /// The URL with any password replaced, for logs and errors.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Postgres(url) => redact(url),
            DatabaseUrl::Sqlite(path) => format!("sqlite:///{}", path.display()),
        }
    }
}

fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// `connection` (default `sqlite:///<data dir>/glint.db`).
    pub url: DatabaseUrl,
    /// `max_pool_size` (10): connections per Glint process.
    pub max_pool_size: u32,
    /// `pool_timeout` (5 s; oslo.db's default is 30): how long a request waits for a pooled
    /// connection before it is answered 503. Short, so that an exhausted pool shows at once.
    pub pool_timeout_secs: u64,
    /// `statement_timeout` (Glint, 30 s, 0 = none): PostgreSQL cancels any statement running
    /// longer, so no request can hold a connection and the database's CPU indefinitely.
    pub statement_timeout_secs: u64,
}

impl DatabaseConfig {
    pub fn from_ini(ini: &Ini, data_dir: &Path) -> Result<DatabaseConfig, ConfigError> {
        let url = match ini.get("database", "connection").filter(|v| !v.is_empty()) {
            Some(raw) => DatabaseUrl::parse(raw)?,
            None => DatabaseUrl::Sqlite(data_dir.join("glint.db")),
        };
        Ok(DatabaseConfig {
            url,
            max_pool_size: parse_int(ini, "database", "max_pool_size", 10, 1, 1000)? as u32,
            pool_timeout_secs: parse_int(ini, "database", "pool_timeout", 5, 1, 3600)? as u64,
            statement_timeout_secs: parse_int(ini, "database", "statement_timeout", 30, 0, 86400)?
                as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sqlalchemy_urls() {
        assert_eq!(
            DatabaseUrl::parse("postgresql+psycopg2://glance:pw@db:5432/glance").ok(),
            Some(DatabaseUrl::Postgres(
                "postgres://glance:pw@db:5432/glance".into()
            ))
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://localhost/test").ok(),
            Some(DatabaseUrl::Postgres("postgres://localhost/test".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///glint.db").ok(),
            Some(DatabaseUrl::Sqlite("glint.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:////var/lib/glint/glint.db").ok(),
            Some(DatabaseUrl::Sqlite("/var/lib/glint/glint.db".into()))
        );
    }

    #[test]
    fn rejects_unsupported_schemes_by_name() {
        let err = DatabaseUrl::parse("mysql+pymysql://glance:pw@db/glance")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"mysql+pymysql\""), "{err}");
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("not a url").is_err());
    }

    #[test]
    fn passwords_never_reach_logs() {
        let url = DatabaseUrl::parse("postgresql://glance:s3cret@db/glance").expect("parses");
        assert_eq!(url.redacted(), "postgres://glance:***@db/glance");
        assert!(!format!("{url:?}").contains("s3cret"));
    }
}
