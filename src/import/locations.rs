//! The 2.17 locations API: `POST /v2/images/{id}/locations` registers a location as a
//! `location_import` task (the data read, hashed and inspected before the image becomes
//! active), `GET /v2/images/{id}/locations` lists them for services.

use serde_json::{json, Value};

use super::spec::{ImportMethod, ImportSpec, ValidationData};
use super::ImportService;
use crate::domain::policy::Action;
use crate::domain::{DomainError, ImageStatus, RequestContext};

/// The digests `validation_data` may name, and their sizes in bytes.
const HASH_SIZES: [(&str, usize); 4] = [("md5", 16), ("sha1", 20), ("sha256", 32), ("sha512", 64)];

fn schema_error(why: impl std::fmt::Display) -> DomainError {
    DomainError::bad_request(format!(
        "Provided object does not match schema 'location': {why}"
    ))
}

/// `validation_data` as the location schema takes it: both keys or neither, a known
/// algorithm, a hex value of that algorithm's size.
fn validation_data(
    body: &Value,
    default_algo: &str,
) -> Result<Option<ValidationData>, DomainError> {
    let Some(data) = body.get("validation_data") else {
        return Ok(None);
    };
    let Value::Object(data) = data else {
        return Err(schema_error(format!("{data} is not of type 'object'")));
    };
    if let Some(extra) = data
        .keys()
        .find(|k| !matches!(k.as_str(), "os_hash_algo" | "os_hash_value"))
    {
        return Err(schema_error(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let algo = match data.get("os_hash_algo") {
        None => None,
        Some(Value::String(algo)) if HASH_SIZES.iter().any(|(a, _)| a == algo) => {
            Some(algo.clone())
        }
        Some(other) => {
            return Err(schema_error(format!(
                "{other} is not one of ['sha1', 'sha256', 'sha512', 'md5']"
            )))
        }
    };
    let value = match data.get("os_hash_value") {
        None => None,
        Some(Value::String(value)) if value.len() <= 128 => Some(value.clone()),
        Some(other) => {
            return Err(schema_error(format!(
                "{other} is not a valid os_hash_value"
            )))
        }
    };
    let (algo, value) = match (algo, value) {
        (Some(algo), Some(value)) => (algo, value),
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(schema_error(
                "'os_hash_value' is a dependency of 'os_hash_algo'",
            ))
        }
        (None, Some(_)) => {
            return Err(schema_error(
                "'os_hash_algo' is a dependency of 'os_hash_value'",
            ))
        }
    };
    if !value.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(DomainError::bad_request(format!(
            "os_hash_value ({value}) is not a valid hexadecimal value"
        )));
    }
    let want = HASH_SIZES
        .iter()
        .find(|(a, _)| *a == algo || (algo.is_empty() && *a == default_algo))
        .map_or(64, |(_, size)| *size);
    if value.len() != want * 2 {
        return Err(DomainError::bad_request(format!(
            "os_hash_value: ({value}) is not the correct size for ({algo}) (should be ({want}) bytes)"
        )));
    }
    Ok(Some(ValidationData {
        os_hash_algo: algo,
        os_hash_value: value.to_ascii_lowercase(),
    }))
}

impl ImportService {
    /// `POST /v2/images/{id}/locations`.
    pub async fn add_location(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: &Value,
    ) -> Result<(), DomainError> {
        let url = match body.get("url") {
            Some(Value::String(url)) => url.trim().to_owned(),
            Some(other) => return Err(schema_error(format!("{other} is not of type 'string'"))),
            None => return Err(schema_error("'url' is a required property")),
        };
        let validation = validation_data(body, self.data.hashing_algorithm())?;
        let image = self.visible_or_status_conflict(ctx, id).await?;
        if image.status != ImageStatus::Queued {
            return Err(DomainError::conflict(format!(
                "It's not allowed to add locations if image status is {}.",
                image.status
            )));
        }
        self.images
            .authorize_on(ctx, Action::AddImageLocation, &image)?;
        // Services (a service token's roles count, as in Glance) register any store's
        // locations; anyone else only web servers' (an http store must be enabled).
        if !ctx.has_role_or_service_role("service") {
            let http_enabled = self
                .data
                .stores()
                .entries()
                .iter()
                .any(|e| e.type_name() == "http");
            if !url.starts_with("http") || !http_enabled {
                return Err(DomainError::forbidden(
                    "http store must be enabled to use location API by normal user.",
                ));
            }
        }
        // Every http location passes web-download's filter, services' too: Glint reads it,
        // and must not be made to read inside the cloud.
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if matches!(scheme.as_deref(), Some("http" | "https")) {
            if let Err(why) = self.filter.check(&url) {
                tracing::info!(image.id = %image.id, %why, "location refused by the URL filter");
                return Err(DomainError::bad_request(format!(
                    "URI for add location does not pass filtering: {url}"
                )));
            }
        }
        let input = json!({
            "image_id": image.id.to_string(),
            "loc_url": url,
            "validation_data": body.get("validation_data").cloned().unwrap_or(json!({})),
        });
        let spec = ImportSpec {
            method: ImportMethod::LocationImport {
                url,
                validation_data: validation,
                refused: (!ctx.is_admin && !ctx.is_owner(image.owner.as_deref()))
                    .then(|| "You do not own this image".to_owned()),
            },
            stores: vec![None],
            all_stores_must_succeed: true,
        };
        self.begin(ctx, &image, spec, "location_import", input)
            .await
            .map(|_| ())
    }

    /// The image as the caller sees it. Glance's database layer shows every image to any
    /// `admin` role, a system-scoped one too, and checks the status before the policy: such a
    /// caller hears 409 for an image that is not queued, and the policy's 404 otherwise.
    async fn visible_or_status_conflict(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<crate::domain::image::Image, DomainError> {
        let hidden = match self.images.get_visible(ctx, id).await {
            Ok(image) => return Ok(image),
            Err(hidden) if ctx.has_role("admin") => hidden,
            Err(other) => return Err(other),
        };
        let operator = RequestContext::unauthenticated_admin(ctx.request_id.clone());
        match self.images.get_visible(&operator, id).await {
            Ok(image) if image.status != ImageStatus::Queued => Ok(image),
            _ => Err(hidden),
        }
    }

    /// `GET /v2/images/{id}/locations`: the active locations, heaviest store first.
    pub async fn locations(&self, ctx: &RequestContext, id: &str) -> Result<Value, DomainError> {
        let image = self.images.get_visible(ctx, id).await?;
        self.images
            .authorize_on(ctx, Action::FetchImageLocation, &image)?;
        let mut locations = self
            .data
            .locations_of(&image.id)
            .await
            .map_err(DomainError::from)?;
        let stores = self.data.stores();
        locations.sort_by_key(|l| std::cmp::Reverse(stores.weight(l.store_id().as_deref())));
        Ok(Value::Array(
            locations
                .iter()
                .map(|l| {
                    let metadata: Value =
                        serde_json::from_str(&l.metadata).unwrap_or_else(|_| json!({}));
                    // Credentials in a stored URI are never shown, as in the image view.
                    json!({"url": glint_store::strip_userinfo(&l.url), "metadata": metadata})
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_data_is_checked_as_the_location_schema_says() {
        let sha256 = "a".repeat(64);
        assert_eq!(validation_data(&json!({}), "sha512").expect("valid"), None);
        let data = validation_data(
            &json!({"validation_data": {"os_hash_algo": "sha256", "os_hash_value": sha256.to_uppercase()}}),
            "sha512",
        )
        .expect("valid");
        assert_eq!(
            data,
            Some(ValidationData {
                os_hash_algo: "sha256".into(),
                os_hash_value: sha256.clone()
            })
        );
        for (body, message) in [
            (json!({"validation_data": {"os_hash_algo": "sha256"}}), "Provided object does not match schema 'location': 'os_hash_value' is a dependency of 'os_hash_algo'"),
            (json!({"validation_data": {"os_hash_algo": "crc32", "os_hash_value": "00"}}), "Provided object does not match schema 'location': \"crc32\" is not one of ['sha1', 'sha256', 'sha512', 'md5']"),
            (json!({"validation_data": {"os_hash_algo": "sha256", "os_hash_value": "zz"}}), "os_hash_value (zz) is not a valid hexadecimal value"),
            (json!({"validation_data": {"os_hash_algo": "sha256", "os_hash_value": "abcd"}}), "os_hash_value: (abcd) is not the correct size for (sha256) (should be (32) bytes)"),
            (json!({"validation_data": {"os_hash_algo": "md5", "os_hash_value": "00", "checksum": "1"}}), "Provided object does not match schema 'location': Additional properties are not allowed ('checksum' was unexpected)"),
        ] {
            let refused = validation_data(&body, "sha512").expect_err("refused");
            assert_eq!(refused.to_string(), message);
        }
    }
}
