//! What an import job does, as its row keeps it (JSON): checked once by `POST /import`, read
//! by whichever node runs the job.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum ImportMethod {
    /// Data staged by `PUT /stage`.
    GlanceDirect,
    /// Data fetched from a URL (checked again on every redirect).
    WebDownload { uri: String },
    /// The image's own data, copied into more stores.
    CopyImage,
    /// Another region's image service's image (`glance_image_id`), read with the caller's
    /// token from `url` (its file), its metadata from `image_url`.
    GlanceDownload {
        region: String,
        image_url: String,
        url: String,
    },
    /// A location registered by `POST /v2/images/{id}/locations`: its data read, hashed and
    /// inspected (`do_secure_hash`), checked against `validation_data`, then recorded.
    LocationImport {
        url: String,
        validation_data: Option<ValidationData>,
        /// Why the job fails without reading anything: Glance runs it as its caller, and a
        /// caller who may not save the image (a service that neither owns it nor is an
        /// admin) sees its location refused by the task, not by the request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refused: Option<String>,
    },
}

/// The digest a location's registrant vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationData {
    pub os_hash_algo: String,
    pub os_hash_value: String,
}

impl ImportMethod {
    pub fn name(&self) -> &'static str {
        match self {
            ImportMethod::GlanceDirect => "glance-direct",
            ImportMethod::WebDownload { .. } => "web-download",
            ImportMethod::CopyImage => "copy-image",
            ImportMethod::GlanceDownload { .. } => "glance-download",
            ImportMethod::LocationImport { .. } => "location-import",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSpec {
    pub method: ImportMethod,
    /// The target stores, in order; `[None]` with a single store.
    pub stores: Vec<Option<String>>,
    pub all_stores_must_succeed: bool,
}

impl ImportSpec {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<ImportSpec, String> {
        serde_json::from_str(text).map_err(|e| format!("unreadable import job: {e}"))
    }

    /// The named stores (none with a single store).
    pub fn store_ids(&self) -> impl Iterator<Item = &str> {
        self.stores.iter().flatten().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip() {
        let spec = ImportSpec {
            method: ImportMethod::WebDownload {
                uri: "https://example.com/x.qcow2".into(),
            },
            stores: vec![Some("fast".into()), Some("cheap".into())],
            all_stores_must_succeed: false,
        };
        let json = spec.to_json();
        assert!(json.contains("\"name\":\"web-download\""), "{json}");
        assert_eq!(ImportSpec::from_json(&json), Ok(spec));
        assert!(ImportSpec::from_json("{}").is_err());
    }
}
