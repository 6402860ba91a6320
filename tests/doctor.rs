//! `glint doctor` run as an operator runs it: the built binary, on an SQLite database and a
//! file store in a temporary directory.

use std::path::Path;
use std::process::{Command, Output};

fn write_config(dir: &Path, database: &str, datadir: &Path) -> std::path::PathBuf {
    let path = dir.join("glint.conf");
    std::fs::write(
        &path,
        format!(
            "[DEFAULT]\nnode_staging_uri = file://{}\n[database]\nconnection = {database}\n\
             [glance_store]\nfilesystem_store_datadir = {}\n",
            dir.join("staging").display(),
            datadir.display()
        ),
    )
    .expect("write glint.conf");
    path
}

fn glint(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glint"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("GLINT_CONFIG")
        .output()
        .expect("run glint")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite:///{}", dir.join("glint.db").display())
}

#[test]
fn a_working_setup_passes_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sqlite(dir.path()), &dir.path().join("images"));
    assert!(glint(&config, &["db", "sync"]).status.success());
    let output = glint(&config, &["doctor"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("ok   configuration "), "{out}");
    assert!(out.contains("ok   database sqlite://"), "{out}");
    assert!(out.contains("ok   store file (file)"), "{out}");
    assert!(
        out.contains("ok   staging store os_glance_staging_store (file)"),
        "{out}"
    );
    assert!(out.contains("skip keystone: "), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    // The probe objects are gone.
    assert_eq!(
        std::fs::read_dir(dir.path().join("images"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_store_that_cannot_be_written_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // A directory under a regular file cannot be created, even by root.
    std::fs::write(dir.path().join("afile"), b"").unwrap();
    let config = write_config(
        dir.path(),
        &sqlite(dir.path()),
        &dir.path().join("afile/images"),
    );
    assert!(glint(&config, &["db", "sync"]).status.success());
    let output = glint(&config, &["doctor"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("ok   database "), "{out}");
    assert!(out.contains("FAIL store file (file): "), "{out}");
}

#[test]
fn an_unreachable_database_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "postgres://postgres@127.0.0.1:1/x",
        &dir.path().join("images"),
    );
    let output = glint(&config, &["doctor"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL database postgres://"), "{out}");
    assert!(out.contains("ok   store file (file)"), "{out}");
}

#[test]
fn a_database_behind_its_schema_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sqlite(dir.path()), &dir.path().join("images"));
    // No `db sync`: the database is empty.
    let output = glint(&config, &["doctor"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL database sqlite://") && out.contains("the schema is not current"),
        "{out}"
    );
}
