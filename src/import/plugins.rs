//! The import plugins that work on the data: `image_decompression` and `image_conversion`,
//! run on the staged data in the order `[image_import_opts] image_import_plugins` lists them,
//! before any store is written (glance-direct, web-download, glance-download; never
//! copy-image nor a registered location). Each turns the staged data into a local file in
//! `[task] work_dir` (the staged file itself when staging is this node's directory) and
//! stages its output in place of the original. `inject_image_metadata` is not one of them: it
//! runs when the import starts.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::runner::{JobRun, Stop};
use super::{conversion, decompression};
use crate::domain::tasks::StagedData;

/// The plugins that change the data, which therefore needs staging first.
const DATA_PLUGINS: [&str; 2] = ["image_decompression", "image_conversion"];

impl super::ImportService {
    /// Whether an import's data must be staged for a plugin before it goes into a store.
    pub(super) fn data_plugins_enabled(&self) -> bool {
        DATA_PLUGINS.iter().any(|p| self.plugin_enabled(p))
    }
}

fn no_staged_data() -> Stop {
    Stop::Failed("No data is staged for the image.".to_owned())
}

impl JobRun<'_> {
    /// The data plugins, in the operator's order, on the staged data.
    pub(super) async fn run_data_plugins(&mut self) -> Result<(), Stop> {
        let service = self.service;
        for plugin in &service.config.plugins {
            match plugin.as_str() {
                "image_decompression" => self.decompress().await?,
                "image_conversion" => self.convert().await?,
                // no_op; inject_image_metadata ran when the import started.
                _ => {}
            }
        }
        Ok(())
    }

    /// The staged data as a local file: the staged file itself when staging is this node's
    /// directory, else a copy in `[task] work_dir`; `output` named after `purpose` beside it.
    async fn work_files(&self, staged: &StagedData, purpose: &str) -> Result<WorkFiles, Stop> {
        let data = &self.service.data;
        let dir = &self.service.config.work_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| Stop::Failed(format!("cannot use work_dir {}: {e}", dir.display())))?;
        let local = data.staged_path(staged);
        let files = WorkFiles::new(dir, self.image.id.as_str(), local.clone(), purpose);
        if local.is_none() {
            data.fetch_staged(staged, &files.input).await?;
        }
        Ok(files)
    }

    /// `image_decompression`: staged data that starts as a zip, LHA or gzip file is unpacked
    /// (an archive must hold one file), held to the most the image may be, and staged again
    /// in place of the original; the image's size becomes what each store then receives.
    /// Its formats are unchanged, and data of container format `compressed` is left as it
    /// is (Glance).
    pub(super) async fn decompress(&mut self) -> Result<(), Stop> {
        if self.image.container_format.as_deref() == Some("compressed") {
            return Ok(());
        }
        let staged = self.staged.clone().ok_or_else(no_staged_data)?;
        let data = &self.service.data;
        let head = data
            .staged_head(&staged, decompression::Compression::HEAD)
            .await?;
        let Some(format) = decompression::Compression::detect(&head) else {
            return Ok(());
        };
        let max = data.max_image_bytes(&self.image).await?;
        let files = self.work_files(&staged, "decompressed").await?;
        self.progress.bytes.store(0, Ordering::Relaxed);
        let progress = self.progress.clone();
        let size = decompression::decompress(
            format,
            &files.input,
            &files.output,
            max,
            Arc::new(move |bytes| progress.bytes.store(bytes, Ordering::Relaxed)),
        )
        .await
        .map_err(|e| Stop::Failed(e.to_string()))?;
        tracing::info!(
            compression = format.name(),
            bytes = size,
            "image decompressed"
        );
        let restaged = data
            .stage_file(&self.image, &files.output, &self.beat())
            .await?;
        self.staged = Some(restaged);
        Ok(())
    }

    /// `image_conversion`: the staged data, checked by `qemu-img info` as its declared format,
    /// converted into `[image_conversion] output_format`, and staged again in place of the
    /// original.
    pub(super) async fn convert(&mut self) -> Result<(), Stop> {
        let failed = |e: conversion::ConversionError| Stop::Failed(e.to_string());
        let to = self.service.config.conversion_format.clone();
        let Some(from) = conversion::source_format(&self.image, &to).map_err(failed)? else {
            return Ok(());
        };
        let from = from.to_owned();
        let staged = self.staged.clone().ok_or_else(no_staged_data)?;
        let files = self.work_files(&staged, "converted").await?;
        let data = &self.service.data;
        let vmdk_types = &data.inspection().vmdk_allowed_types;
        conversion::check_with_qemu_img(&files.input, &from, vmdk_types)
            .await
            .map_err(failed)?;
        conversion::convert(&files.input, &from, &files.output, &to)
            .await
            .map_err(failed)?;
        tracing::info!(from = %from, to = %to, "image converted");
        self.image.disk_format = Some(to.clone());
        self.image.container_format = Some("bare".to_owned());
        let restaged = data
            .stage_file(&self.image, &files.output, &self.beat())
            .await?;
        self.staged = Some(restaged);
        self.converted = Some(to);
        Ok(())
    }
}

/// The files a plugin works on for image `id`, removed when dropped (whatever the outcome).
struct WorkFiles {
    input: PathBuf,
    output: PathBuf,
    /// Whether `input` is a copy made here (else it is the staged file itself).
    owns_input: bool,
}

impl WorkFiles {
    fn new(dir: &Path, id: &str, staged: Option<PathBuf>, purpose: &str) -> WorkFiles {
        WorkFiles {
            owns_input: staged.is_none(),
            input: staged.unwrap_or_else(|| dir.join(format!("{id}.source"))),
            output: dir.join(format!("{id}.{purpose}")),
        }
    }
}

impl Drop for WorkFiles {
    fn drop(&mut self) {
        if self.owns_input {
            let _ = std::fs::remove_file(&self.input);
        }
        let _ = std::fs::remove_file(&self.output);
    }
}
