//! The `image_conversion` import plugin: staged data converted by `qemu-img` into
//! `[image_conversion] output_format` before it goes into any store, as Glance's plugin
//! does. The data was inspected by Glint's own inspectors as it was staged; `qemu-img info`
//! is asked too (with the declared format, never probing), and refused data never reaches
//! `qemu-img convert`. The converted image is staged in place of the original and inspected
//! again as it is written to each store.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::domain::image::Image;

/// Formats `qemu-img` may read here (Glance's plugin converts from these).
const CONVERTIBLE: [&str; 8] = ["raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "qed", "iso"];
/// `qemu-img info` answers at once; more than this means something is wrong.
const INFO_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a conversion was refused or failed (the task's message).
#[derive(Debug, thiserror::Error)]
pub enum ConversionError {
    #[error("Image disk_format {0} cannot be converted")]
    NotConvertible(String),
    #[error("Image metadata disagrees about format: declared {declared}, qemu-img read {read}")]
    FormatMismatch { declared: String, read: String },
    #[error("QCOW images with backing files are not allowed")]
    BackingFile,
    #[error("QCOW images with data-file set are not allowed")]
    DataFile,
    #[error("Invalid VMDK create-type specified")]
    VmdkType,
    #[error("qemu-img failed: {0}")]
    Tool(String),
}

/// What `qemu-img info` says of a file read as `format`, checked as Glance's plugin checks
/// it.
pub async fn check_with_qemu_img(
    path: &Path,
    format: &str,
    vmdk_allowed_types: &[String],
) -> Result<(), ConversionError> {
    let output = tokio::time::timeout(
        INFO_TIMEOUT,
        tokio::process::Command::new("qemu-img")
            .args(["info", "--output=json", "-f", format])
            .arg(path)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| ConversionError::Tool("qemu-img info did not answer".to_owned()))?
    .map_err(|e| ConversionError::Tool(format!("cannot run qemu-img: {e}")))?;
    if !output.status.success() {
        return Err(ConversionError::Tool(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    let info: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| ConversionError::Tool(format!("unreadable qemu-img info: {e}")))?;
    judge_info(&info, format, vmdk_allowed_types)
}

/// Glance's checks of `qemu-img info`'s answer.
fn judge_info(
    info: &Value,
    format: &str,
    vmdk_allowed_types: &[String],
) -> Result<(), ConversionError> {
    let read = info["format"].as_str().unwrap_or("");
    if read != format {
        return Err(ConversionError::FormatMismatch {
            declared: format.to_owned(),
            read: read.to_owned(),
        });
    }
    if info.get("backing-filename").is_some() || info.get("full-backing-filename").is_some() {
        return Err(ConversionError::BackingFile);
    }
    let specific = &info["format-specific"]["data"];
    if specific.get("data-file").is_some() {
        return Err(ConversionError::DataFile);
    }
    if format == "vmdk" {
        let create_type = specific["create-type"].as_str().unwrap_or("");
        if !vmdk_allowed_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(create_type))
        {
            return Err(ConversionError::VmdkType);
        }
    }
    Ok(())
}

/// Converts `input` (read as `from`) into `output` in format `to`.
pub async fn convert(
    input: &Path,
    from: &str,
    output: &Path,
    to: &str,
) -> Result<(), ConversionError> {
    let result = tokio::process::Command::new("qemu-img")
        .args(["convert", "-f", from, "-O", to])
        .arg(input)
        .arg(output)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| ConversionError::Tool(format!("cannot run qemu-img: {e}")))?;
    if result.status.success() {
        Ok(())
    } else {
        Err(ConversionError::Tool(
            String::from_utf8_lossy(&result.stderr).trim().to_owned(),
        ))
    }
}

/// Whether `image` needs converting into `to`, and from what.
pub fn source_format<'a>(image: &'a Image, to: &str) -> Result<Option<&'a str>, ConversionError> {
    let from = image.disk_format.as_deref().unwrap_or("");
    if from == to {
        return Ok(None);
    }
    if !CONVERTIBLE.contains(&from) {
        return Err(ConversionError::NotConvertible(from.to_owned()));
    }
    Ok(Some(from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn qemu_img_answers_are_judged_as_glance_judges_them() {
        let allowed = vec!["streamOptimized".to_owned(), "monolithicSparse".to_owned()];
        assert!(judge_info(&json!({"format": "qcow2"}), "qcow2", &allowed).is_ok());
        assert!(matches!(
            judge_info(&json!({"format": "raw"}), "qcow2", &allowed),
            Err(ConversionError::FormatMismatch { .. })
        ));
        assert!(matches!(
            judge_info(
                &json!({"format": "qcow2", "backing-filename": "/etc/passwd"}),
                "qcow2",
                &allowed
            ),
            Err(ConversionError::BackingFile)
        ));
        assert!(matches!(
            judge_info(
                &json!({"format": "qcow2", "format-specific": {"data": {"data-file": "/dev/sda"}}}),
                "qcow2",
                &allowed
            ),
            Err(ConversionError::DataFile)
        ));
        assert!(judge_info(&json!({"format": "vmdk", "format-specific": {"data": {"create-type": "streamOptimized"}}}), "vmdk", &allowed).is_ok());
        assert!(matches!(
            judge_info(
                &json!({"format": "vmdk", "format-specific": {"data": {"create-type": "monolithicFlat"}}}),
                "vmdk",
                &allowed
            ),
            Err(ConversionError::VmdkType)
        ));
    }
}
