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
    /// A `mysql://` URL as sqlx reads it, its options translated from PyMySQL's names.
    MySql(MySqlUrl),
    /// The database file.
    Sqlite(PathBuf),
}

/// A MySQL or MariaDB server, from `mysql+pymysql://`, `mysql://`, `mysql+mysqldb://` or
/// `mariadb://` (any `+driver`).
#[derive(Clone, PartialEq, Eq)]
pub struct MySqlUrl {
    /// `mysql://user:password@host:port/database?…` with sqlx's option names.
    pub url: String,
    /// Options of the operator's URL that mean nothing here (`plugin=dbcounter`,
    /// `read_timeout`, …): logged at start-up, not fatal, as oslo.db would pass them on.
    pub ignored: Vec<String>,
}

impl MySqlUrl {
    /// Translates the query options operators put on PyMySQL/mysqlclient URLs: `charset`
    /// (utf8/utf8mb3/utf8mb4: the connection always speaks utf8mb4, a superset), `ssl_ca`
    /// (with `ssl_check_hostname=false` to verify the chain only), `ssl_cert`/`ssl_key`,
    /// `unix_socket` or `socket`, `ssl_mode`.
    fn parse(rest: &str) -> Result<MySqlUrl, String> {
        let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
        // `user:pw@/glance?unix_socket=…` names no host; sqlx's URL parser needs one, and
        // ignores it when a socket is given.
        let base = match base.split_once("@/") {
            Some((user, path)) => format!("{user}@localhost/{path}"),
            None if base.starts_with('/') => format!("localhost{base}"),
            None => base.to_owned(),
        };
        let mut options: Vec<(String, String)> = Vec::new();
        let mut ignored = Vec::new();
        let mut ssl_ca = None;
        let mut check_hostname = true;
        let mut ssl_mode = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "charset" => match value.to_ascii_lowercase().as_str() {
                    "utf8" | "utf8mb3" | "utf8mb4" => {}
                    other => {
                        return Err(format!(
                            "charset={other} is not supported: Glint speaks utf8mb4 to MySQL"
                        ))
                    }
                },
                "ssl_ca" => ssl_ca = Some(value.to_owned()),
                "ssl_cert" => options.push(("ssl-cert".into(), value.into())),
                "ssl_key" => options.push(("ssl-key".into(), value.into())),
                "ssl_check_hostname" => {
                    check_hostname =
                        !matches!(value.to_ascii_lowercase().as_str(), "false" | "0" | "no")
                }
                "ssl_mode" | "ssl-mode" => ssl_mode = Some(value.to_ascii_uppercase()),
                "unix_socket" | "socket" => options.push(("socket".into(), value.into())),
                _ => ignored.push(key.to_owned()),
            }
        }
        if let Some(ca) = ssl_ca {
            options.push(("ssl-ca".into(), ca));
            if ssl_mode.is_none() {
                ssl_mode = Some(
                    if check_hostname {
                        "VERIFY_IDENTITY"
                    } else {
                        "VERIFY_CA"
                    }
                    .into(),
                );
            }
        }
        if let Some(mode) = ssl_mode {
            options.push(("ssl-mode".into(), mode));
        }
        options.push(("charset".into(), "utf8mb4".into()));
        let query: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Ok(MySqlUrl {
            url: format!("mysql://{base}?{}", query.join("&")),
            ignored,
        })
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// Parses `[database] connection`:
    /// `sqlite:///relative.db`, `sqlite:////absolute.db`, `postgresql://…`, `postgres://…`,
    /// `postgresql+psycopg2://…` (any `+driver`), `mysql+pymysql://…`, `mysql://…`,
    /// `mariadb://…`.
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
            "mysql" | "mariadb" => Ok(DatabaseUrl::MySql(MySqlUrl::parse(rest).map_err(invalid)?)),
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
                 (postgresql://), MySQL or MariaDB (mysql+pymysql://) or SQLite (sqlite:///path)"
            ))),
        }
    }

    /// The URL with any password replaced, for logs and errors.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Postgres(url) => redact(url),
            DatabaseUrl::MySql(mysql) => redact(&mysql.url),
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
    /// `max_pool_size` (10): connections per Glint process kept open.
    pub max_pool_size: u32,
    /// `max_overflow` (0; oslo.db's is 50): connections opened beyond `max_pool_size` under
    /// load. Glint's pool closes idle ones after 10 minutes either way, so the two add up to
    /// one bound: at most `max_pool_size + max_overflow` connections per process.
    pub max_overflow: u32,
    /// `connection_recycle_time` (3600 s, as oslo.db): a connection older than this is closed
    /// and replaced, so that proxies and servers dropping old connections never bite.
    pub connection_recycle_secs: u64,
    /// `pool_timeout` (5 s; oslo.db's default is 30): how long a request waits for a pooled
    /// connection before it is answered 503. Short, so that an exhausted pool shows at once.
    pub pool_timeout_secs: u64,
    /// `statement_timeout` (Glint, 30 s, 0 = none): the database cancels any statement running
    /// longer (PostgreSQL `statement_timeout`, MariaDB `max_statement_time`, MySQL
    /// `max_execution_time`, which bounds reads only), so no request holds a connection and
    /// the database's CPU indefinitely.
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
            max_overflow: parse_int(ini, "database", "max_overflow", 0, 0, 1000)? as u32,
            connection_recycle_secs: parse_int(
                ini,
                "database",
                "connection_recycle_time",
                3600,
                1,
                i64::from(u32::MAX),
            )? as u64,
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

    fn mysql(raw: &str) -> MySqlUrl {
        match DatabaseUrl::parse(raw) {
            Ok(DatabaseUrl::MySql(mysql)) => mysql,
            other => panic!("{raw} gave {other:?}"),
        }
    }

    #[test]
    fn accepts_mysql_urls_with_pymysql_options() {
        for scheme in [
            "mysql+pymysql",
            "mysql",
            "mysql+mysqldb",
            "mariadb",
            "MySQL+PyMySQL",
        ] {
            let url = mysql(&format!("{scheme}://glance:pw@db:3307/glance?charset=utf8"));
            assert_eq!(url.url, "mysql://glance:pw@db:3307/glance?charset=utf8mb4");
            assert!(url.ignored.is_empty());
        }
        let url = mysql(
            "mysql+pymysql://glance:pw@db/glance?charset=utf8mb4&ssl_ca=/etc/ca.pem\
             &ssl_cert=/etc/c.pem&ssl_key=/etc/k.pem&plugin=dbcounter&read_timeout=5",
        );
        assert_eq!(
            url.url,
            "mysql://glance:pw@db/glance?ssl-cert=/etc/c.pem&ssl-key=/etc/k.pem\
             &ssl-ca=/etc/ca.pem&ssl-mode=VERIFY_IDENTITY&charset=utf8mb4"
        );
        assert_eq!(url.ignored, ["plugin", "read_timeout"]);
        let url = mysql("mysql://g@db/glance?ssl_ca=/ca.pem&ssl_check_hostname=false");
        assert!(url.url.contains("ssl-mode=VERIFY_CA"), "{}", url.url);
        let url = mysql("mysql://g@db/glance?ssl_mode=required");
        assert!(url.url.contains("ssl-mode=REQUIRED"), "{}", url.url);

        // A unix socket, with or without a host in the URL.
        for raw in [
            "mysql+pymysql://glance:pw@/glance?unix_socket=/run/mysqld/mysqld.sock",
            "mysql+pymysql://glance:pw@localhost/glance?socket=/run/mysqld/mysqld.sock",
        ] {
            let url = mysql(raw);
            assert_eq!(
                url.url,
                "mysql://glance:pw@localhost/glance?socket=/run/mysqld/mysqld.sock&charset=utf8mb4"
            );
            let options: sqlx::mysql::MySqlConnectOptions =
                url.url.parse().expect("sqlx reads the translated URL");
            assert_eq!(options.get_database(), Some("glance"));
        }
    }

    #[test]
    fn rejects_what_it_cannot_honour() {
        let err = DatabaseUrl::parse("mysql+pymysql://glance:pw@db/glance?charset=latin1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("charset=latin1"), "{err}");
        let err = DatabaseUrl::parse("oracle+cx_oracle://glance:pw@db/glance")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"oracle+cx_oracle\""), "{err}");
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("not a url").is_err());
    }

    #[test]
    fn passwords_never_reach_logs() {
        let url = DatabaseUrl::parse("postgresql://glance:s3cret@db/glance").expect("parses");
        assert_eq!(url.redacted(), "postgres://glance:***@db/glance");
        assert!(!format!("{url:?}").contains("s3cret"));
        let url = DatabaseUrl::parse("mysql+pymysql://glance:s3cret@db/glance").expect("parses");
        assert_eq!(
            url.redacted(),
            "mysql://glance:***@db/glance?charset=utf8mb4"
        );
    }
}
