//! `glint db load-metadefs`, `unload-metadefs` and `export-metadefs`: Glance's metadata
//! definitions files into and out of its `metadef_*` tables, as `glance-manage db
//! load_metadefs`, `unload_metadefs` and `export_metadefs` do.
//!
//! Where Glint differs, on purpose: every file is read and checked before anything is
//! written, and a load is one transaction, so a bad file (named in the error) leaves the
//! database as it was — Glance logs it and goes on, or stops half-way. An export writes into `--path` as a directory (Glance
//! glues the name to the path's text) and stops at the first file it cannot write.

mod file_format;
mod python_json;

use std::path::{Path, PathBuf};

use super::open;
use crate::config::Config;
use crate::db::Database;
use crate::domain::metadef_files::{LoadMode, NamespaceDefinition, NamespaceLoaded};

/// Where Glance keeps the definitions (its `metadata_source_path` default).
pub const DEFAULT_METADEFS_PATH: &str = "/etc/glance/metadefs/";

/// The options of `glint db load-metadefs`.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// A directory (its `*.json` files) or one file.
    pub path: PathBuf,
    pub merge: bool,
    pub prefer_new: bool,
    pub overwrite: bool,
}

/// The metadef tables are Glance's: any database with Glance's schema will do, whether Glint
/// or Glance made it.
async fn open_glance_schema(config: &Config) -> Result<Database, String> {
    let database = open(config).await?;
    let status = database.schema_status().await.map_err(|e| e.to_string())?;
    if !(status.is_current() || status.made_by_glance()) {
        database.close().await;
        return Err(format!(
            "the database schema is not current ({}); run `glint db sync`",
            super::describe(&status)
        ));
    }
    Ok(database)
}

/// The definitions files of `path`: the file itself, or the directory's `*.json` files
/// (not its subdirectories) in the directory's order, as Glance takes them: which file comes
/// first decides the ids, and which of two files naming one namespace loads it.
fn definition_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| format!("cannot read the metadefs directory {}: {e}", path.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry
            .map_err(|e| format!("cannot read the metadefs directory {}: {e}", path.display()))?;
        let file = entry.path();
        if file.extension().is_some_and(|e| e == "json") && file.is_file() {
            files.push(file);
        }
    }
    if files.is_empty() {
        return Err(format!("no .json files in {}", path.display()));
    }
    Ok(files)
}

/// Reads and checks every file: all of them, or an error naming the first bad one.
fn read_definitions(files: &[PathBuf]) -> Result<Vec<NamespaceDefinition>, String> {
    files
        .iter()
        .map(|file| {
            let name = file.display().to_string();
            let text = std::fs::read(file).map_err(|e| format!("cannot read {name}: {e}"))?;
            let text =
                String::from_utf8(text).map_err(|e| format!("{name}: not UTF-8 text ({e})"))?;
            file_format::read_definition(&name, &text)
        })
        .collect()
}

/// `glint db load-metadefs`.
pub async fn db_load_metadefs(config: &Config, options: &LoadOptions) -> Result<(), String> {
    let mode = LoadMode::from_flags(options.merge, options.prefer_new, options.overwrite)?;
    let files = definition_files(&options.path)?;
    let definitions = read_definitions(&files)?;
    let database = open_glance_schema(config).await?;
    let loaded = database.load_metadefs(&definitions, mode).await;
    database.close().await;
    let loaded = loaded.map_err(|e| format!("nothing loaded: {e}"))?;
    let mut counts = [0usize; 4];
    for (definition, outcome) in definitions.iter().zip(&loaded) {
        let (index, word) = match outcome {
            NamespaceLoaded::Created => (0, "created"),
            NamespaceLoaded::Merged => (1, "merged"),
            NamespaceLoaded::Replaced => (2, "replaced"),
            NamespaceLoaded::Skipped => (3, "skipped: it exists (see --merge)"),
        };
        counts[index] += 1;
        println!("{}: {} {word}", definition.file, definition.namespace);
    }
    println!(
        "{} namespace(s) from {}: {} created, {} merged, {} replaced, {} skipped",
        loaded.len(),
        options.path.display(),
        counts[0],
        counts[1],
        counts[2],
        counts[3]
    );
    Ok(())
}

/// `glint db unload-metadefs`: every metadefs table emptied, resource types included.
pub async fn db_unload_metadefs(config: &Config) -> Result<(), String> {
    let database = open_glance_schema(config).await?;
    let removed = database.unload_metadefs().await;
    database.close().await;
    for (table, rows) in removed.map_err(|e| e.to_string())? {
        println!("{table}: {rows} row(s) removed");
    }
    Ok(())
}

/// `glint db export-metadefs`: one file per namespace in the directory `path`.
pub async fn db_export_metadefs(config: &Config, path: &Path) -> Result<(), String> {
    if !path.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    let database = open_glance_schema(config).await?;
    let namespaces = database.export_metadefs().await;
    database.close().await;
    let namespaces = namespaces.map_err(|e| e.to_string())?;
    let mut written: Vec<(PathBuf, &str)> = Vec::new();
    for namespace in &namespaces {
        let file = path.join(file_format::export_file_name(namespace));
        let text = file_format::export_text(namespace)?;
        if let Some((_, earlier)) = written.iter().find(|(f, _)| *f == file) {
            // Glance's file names come from display names alone: the later one wins.
            eprintln!(
                "glint: warning: {} replaces {earlier} in {}",
                namespace.namespace,
                file.display()
            );
        }
        std::fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        println!("{} saved in {}", namespace.namespace, file.display());
        written.push((file, &namespace.namespace));
    }
    println!(
        "{} namespace(s) exported to {}",
        namespaces.len(),
        path.display()
    );
    Ok(())
}
