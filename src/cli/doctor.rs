//! `glint doctor`: checks an operator's setup — configuration, database, every store and the
//! staging store, Keystone — and prints one line per check. Each check is a small function
//! returning a `Check`; `report` is the only place that prints them.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use glint_store::{Chunk, ReaderBody, Store, WriteOptions};

use super::open;
use super::schema::describe;
use crate::auth::KeystoneAuth;
use crate::config::stores::BackendConfig;
use crate::config::{AuthFlavor, Config};

/// The size of the object written to each store.
const PROBE_SIZE: usize = 1024;
/// How long one store's probe, the database or Keystone may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Not a failure: something the operator should know (an ignored option).
    Warn(String),
    /// Not applicable here.
    Skip(String),
    Fail(String),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
}

impl Check {
    fn new(name: impl Into<String>, outcome: Outcome) -> Check {
        Check {
            name: name.into(),
            outcome,
        }
    }

    fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail(_))
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Reasons stay on one line, whatever an error's text holds.
        let one_line = |why: &str| why.split_whitespace().collect::<Vec<_>>().join(" ");
        match &self.outcome {
            Outcome::Ok => write!(f, "ok   {}", self.name),
            Outcome::Warn(why) => write!(f, "warn {}: {}", self.name, one_line(why)),
            Outcome::Skip(why) => write!(f, "skip {}: {}", self.name, one_line(why)),
            Outcome::Fail(why) => write!(f, "FAIL {}: {}", self.name, one_line(why)),
        }
    }
}

/// `glint doctor`: runs every check and prints it; an error (exit 1) when any failed.
pub async fn doctor(config: &Config, path: Option<&Path>) -> Result<(), String> {
    let mut checks = configuration(config, path);
    checks.push(database(config).await);
    for backend in &config.stores.backends {
        checks.push(store(backend, "store").await);
    }
    checks.push(store(&config.stores.staging, "staging store").await);
    checks.push(keystone(config).await);
    report(&checks)
}

/// Prints the checks, one line each; `Err` names how many failed.
fn report(checks: &[Check]) -> Result<(), String> {
    for check in checks {
        println!("{check}");
    }
    match checks.iter().filter(|c| c.failed()).count() {
        0 => Ok(()),
        n => Err(format!("{n} check(s) failed")),
    }
}

/// The configuration was read already (an unreadable one exits 2 before any command): which
/// file, and one warning per option Glint ignores.
fn configuration(config: &Config, path: Option<&Path>) -> Vec<Check> {
    let source = path.map_or_else(|| "(defaults)".to_owned(), |p| p.display().to_string());
    let mut checks = vec![Check::new(format!("configuration {source}"), Outcome::Ok)];
    checks.extend(config.ignored_report().into_iter().map(|option| {
        Check::new(
            "configuration",
            Outcome::Warn(format!("{option} is not used by Glint; ignored")),
        )
    }));
    checks
}

/// The database answers, and holds the schema this Glint expects (as `glint db check`).
async fn database(config: &Config) -> Check {
    let name = format!("database {}", config.database.url.redacted());
    let outcome = match tokio::time::timeout(CHECK_TIMEOUT, async {
        let database = open(config).await?;
        let status = database.schema_status().await.map_err(|e| e.to_string());
        database.close().await;
        status
    })
    .await
    {
        Err(_) => Outcome::Fail(format!("no answer in {}s", CHECK_TIMEOUT.as_secs())),
        Ok(Err(e)) => Outcome::Fail(e),
        Ok(Ok(status)) if status.is_current() => Outcome::Ok,
        Ok(Ok(status)) => {
            Outcome::Fail(format!("the schema is not current: {}", describe(&status)))
        }
    };
    Check::new(name, outcome)
}

/// A store can be built, written, read back and deleted from (read-only stores are skipped).
async fn store(backend: &BackendConfig, what: &str) -> Check {
    let name = format!("{what} {} ({})", backend.id, backend.driver.type_name());
    let entry = match crate::stores::build(backend) {
        Ok(entry) => entry,
        Err(e) => return Check::new(name, Outcome::Fail(e.to_string())),
    };
    if entry.read_only() {
        return Check::new(name, Outcome::Skip("read-only".to_owned()));
    }
    let outcome = match tokio::time::timeout(CHECK_TIMEOUT, probe(entry.store.as_ref())).await {
        Err(_) => Outcome::Fail(format!("no answer in {}s", CHECK_TIMEOUT.as_secs())),
        Ok(Err(e)) => Outcome::Fail(e),
        Ok(Ok(())) => Outcome::Ok,
    };
    Check::new(name, outcome)
}

/// Writes a small object, reads it back, compares and deletes it. The object is named like
/// an image id, so that a probe a killed doctor left behind is data the scrubber's sweep of
/// unrecorded data removes.
async fn probe(store: &dyn Store) -> Result<(), String> {
    let id = uuid::Uuid::new_v4().to_string();
    let data: Vec<u8> = (0..PROBE_SIZE)
        .map(|i| u8::try_from(i % 251).unwrap_or_default())
        .collect();
    let options = WriteOptions {
        size: Some(PROBE_SIZE as u64),
        max_size: PROBE_SIZE as u64,
        memory: 64 << 20,
    };
    let mut writer = store
        .writer(&id, &options)
        .await
        .map_err(|e| format!("cannot start a write: {e}"))?;
    if let Err(e) = writer
        .write(Chunk::new(vec![Bytes::from(data.clone())]))
        .await
    {
        let _ = writer.abort().await;
        return Err(format!("cannot write: {e}"));
    }
    let stored = writer
        .commit()
        .await
        .map_err(|e| format!("cannot commit a write: {e}"))?;
    let read = read_back(store, &stored.location).await;
    let deleted = store.delete(&stored.location).await;
    let read = read?;
    if read != data {
        return Err(format!(
            "read back {} byte(s) that differ from the {PROBE_SIZE} written",
            read.len()
        ));
    }
    deleted.map_err(|e| format!("cannot delete {id}: {e}"))
}

async fn read_back(store: &dyn Store, location: &glint_store::Location) -> Result<Vec<u8>, String> {
    let reader = store
        .reader(location, None)
        .await
        .map_err(|e| format!("cannot read back: {e}"))?;
    let mut read = Vec::new();
    match reader.body {
        ReaderBody::File(mut file) => {
            file.seek(SeekFrom::Start(reader.range.start))
                .and_then(|_| file.take(reader.range.len()).read_to_end(&mut read))
                .map_err(|e| format!("cannot read back: {e}"))?;
        }
        ReaderBody::Stream(mut stream) => {
            while let Some(bytes) = stream.next().await {
                read.extend_from_slice(&bytes.map_err(|e| format!("cannot read back: {e}"))?);
            }
        }
    }
    Ok(read)
}

/// The service user of `[keystone_authtoken]` can sign in (with the keystone flavor only).
async fn keystone(config: &Config) -> Check {
    let AuthFlavor::Keystone(keystone) = &config.auth else {
        return Check::new(
            "keystone",
            Outcome::Skip("[paste_deploy] flavor is not keystone".to_owned()),
        );
    };
    let name = format!("keystone {}", keystone.identity_url);
    let outcome = match KeystoneAuth::new((**keystone).clone()) {
        Err(e) => Outcome::Fail(e),
        Ok(auth) => match tokio::time::timeout(CHECK_TIMEOUT, auth.sign_in()).await {
            Err(_) => Outcome::Fail(format!("no answer in {}s", CHECK_TIMEOUT.as_secs())),
            Ok(Err(e)) => Outcome::Fail(e),
            Ok(Ok(())) => Outcome::Ok,
        },
    };
    Check::new(name, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_start_with_their_outcome_and_stay_on_one_line() {
        let line = |outcome| Check::new("store fast (file)", outcome).to_string();
        assert_eq!(line(Outcome::Ok), "ok   store fast (file)");
        assert_eq!(
            line(Outcome::Fail("cannot write:\n  disk full".into())),
            "FAIL store fast (file): cannot write: disk full"
        );
        assert_eq!(
            line(Outcome::Skip("read-only".into())),
            "skip store fast (file): read-only"
        );
        assert_eq!(
            line(Outcome::Warn("[x] y ignored".into())),
            "warn store fast (file): [x] y ignored"
        );
    }

    #[test]
    fn only_failures_fail_the_report() {
        let ok = [
            Check::new("a", Outcome::Ok),
            Check::new("b", Outcome::Skip("n/a".into())),
            Check::new("c", Outcome::Warn("w".into())),
        ];
        assert!(report(&ok).is_ok());
        let failed = [
            Check::new("a", Outcome::Ok),
            Check::new("b", Outcome::Fail("down".into())),
        ];
        assert_eq!(report(&failed).unwrap_err(), "1 check(s) failed");
    }
}
