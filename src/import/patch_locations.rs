//! The legacy JSON-patch of `/locations` (`show_multiple_locations = true`): add a location,
//! replace the list, remove one, with Glance's rules and words. Each location is checked
//! with its store (a scheme a configured store serves, data of more than nothing there);
//! users' http locations must pass web-download's URL filter, as for `POST /locations`.

use serde_json::{Map, Value};

use super::ImportService;
use crate::domain::patch::{locations_invisible, Change, Op};
use crate::domain::policy::Action;
use crate::domain::tasks::{LocationWrite, LocationsWritten};
use crate::domain::{DomainError, Image, ImageStatus, RequestContext};
use glint_store::Location;

/// Schemes a registered location may not have (Glance's `RESTRICTED_URI_SCHEMAS`): they
/// name data on the API node itself.
const RESTRICTED_SCHEMES: [&str; 3] = ["file", "filesystem", "swift+config"];

/// One location of a patch: its URL and metadata, and any `validation_data`.
struct PatchLocation {
    url: String,
    metadata: Map<String, Value>,
    validation: Map<String, Value>,
}

fn invalid_object(why: impl std::fmt::Display) -> DomainError {
    DomainError::bad_request(format!(
        "Provided object does not match schema 'image': {why}"
    ))
}

fn parse_location(value: &Value) -> Result<PatchLocation, DomainError> {
    let Value::Object(object) = value else {
        return Err(invalid_object(format!("{value} is not of type 'object'")));
    };
    let url = match object.get("url") {
        Some(Value::String(url)) if url.chars().count() <= 255 => url.clone(),
        Some(other) => return Err(invalid_object(format!("{other} is not a valid url"))),
        None => return Err(invalid_object("'url' is a required property")),
    };
    let metadata = match object.get("metadata") {
        Some(Value::Object(metadata)) => metadata.clone(),
        Some(other) => return Err(invalid_object(format!("{other} is not of type 'object'"))),
        None => return Err(invalid_object("'metadata' is a required property")),
    };
    let validation = match object.get("validation_data") {
        None => Map::new(),
        Some(Value::Object(data)) => {
            for (key, value) in data {
                let fits = match key.as_str() {
                    "os_hash_algo" => value.as_str().is_some_and(|v| v.len() <= 64),
                    "os_hash_value" => value.as_str().is_some_and(|v| v.len() <= 128),
                    "checksum" => value.as_str().is_some_and(|v| v.len() == 32),
                    _ => {
                        return Err(invalid_object(format!(
                            "Additional properties are not allowed ('{key}' was unexpected)"
                        )))
                    }
                };
                if !fits {
                    return Err(invalid_object(format!("{value} is not a valid {key}")));
                }
            }
            if !data.contains_key("os_hash_algo") || !data.contains_key("os_hash_value") {
                return Err(invalid_object(
                    "'os_hash_algo' and 'os_hash_value' are required properties",
                ));
            }
            data.clone()
        }
        Some(other) => return Err(invalid_object(format!("{other} is not of type 'object'"))),
    };
    Ok(PatchLocation {
        url,
        metadata,
        validation,
    })
}

/// `-` or an index; `allow_end`: an index past the end appends (add), else it is refused.
fn position(text: &str, len: usize, allow_end: bool) -> Option<usize> {
    if text == "-" {
        return if allow_end {
            Some(len)
        } else {
            len.checked_sub(1)
        };
    }
    if !text.chars().all(|c| c.is_ascii_digit()) || text.is_empty() {
        return None;
    }
    let index: usize = text.parse().ok()?;
    match allow_end {
        true => Some(index.min(len)),
        false => (index < len).then_some(index),
    }
}

impl ImportService {
    /// Applies the `/locations` changes of a PATCH, in order; `visible`:
    /// `show_multiple_locations`.
    pub async fn patch_locations(
        &self,
        ctx: &RequestContext,
        id: &str,
        changes: &[Change],
        visible: bool,
    ) -> Result<(), DomainError> {
        for change in changes {
            let depth = match change.op {
                Op::Add | Op::Remove => 2,
                Op::Replace => 1,
            };
            if change.path.len() != depth {
                return Err(DomainError::bad_request(format!(
                    "Invalid JSON pointer for this resource: '/{}'",
                    change.path.join("/")
                )));
            }
        }
        for change in changes {
            if change.op == Op::Replace
                && change
                    .value
                    .as_ref()
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
            {
                return Err(DomainError::forbidden(
                    "Cannot set locations to empty list.",
                ));
            }
            if !visible {
                return Err(locations_invisible(change.op));
            }
            let image = self.images.get_visible(ctx, id).await?;
            match change.op {
                Op::Add => self.add_patch_location(ctx, &image, change).await?,
                Op::Replace => self.replace_locations(ctx, &image, change).await?,
                Op::Remove => self.remove_patch_location(ctx, &image, change).await?,
            }
        }
        Ok(())
    }

    async fn add_patch_location(
        &self,
        ctx: &RequestContext,
        image: &Image,
        change: &Change,
    ) -> Result<(), DomainError> {
        self.images
            .authorize_on(ctx, Action::SetImageLocation, image)?;
        if !matches!(image.status, ImageStatus::Active | ImageStatus::Queued) {
            return Err(DomainError::conflict(format!(
                "It's not allowed to add locations if image status is {}.",
                image.status
            )));
        }
        let value = change.value.as_ref().unwrap_or(&Value::Null);
        let location = parse_location(value)?;
        let hashes = self.validation_values(image, std::slice::from_ref(&location))?;
        let current = self.data.locations_of(&image.id).await?;
        if position(&change.path[1], current.len(), true).is_none() {
            return Err(DomainError::bad_request(
                "Invalid position for adding a location.",
            ));
        }
        let (metadata, size) = self.check_location(&location).await?;
        self.write_locations(
            image,
            LocationWrite {
                add: vec![(location.url, metadata)],
                metadata_only: Vec::new(),
                size: image.size.is_none().then_some(size),
                hashes,
                max_locations: self.location_quota,
            },
        )
        .await
    }

    async fn replace_locations(
        &self,
        ctx: &RequestContext,
        image: &Image,
        change: &Change,
    ) -> Result<(), DomainError> {
        let Some(Value::Array(values)) = &change.value else {
            return Err(invalid_object("the locations must be a list"));
        };
        self.images
            .authorize_on(ctx, Action::SetImageLocation, image)?;
        if !matches!(image.status, ImageStatus::Active | ImageStatus::Queued) {
            return Err(DomainError::conflict(format!(
                "It's not allowed to replace locations if image status is {}.",
                image.status
            )));
        }
        let wanted = values
            .iter()
            .map(parse_location)
            .collect::<Result<Vec<_>, _>>()?;
        let hashes = self.validation_values(image, &wanted)?;
        if let Some(quota) = self.location_quota.filter(|q| wanted.len() > *q) {
            return Err(over_location_quota(wanted.len(), quota));
        }
        let current = self.data.locations_of(&image.id).await?;
        let mut current_urls: Vec<&str> = current.iter().map(|l| l.url.as_str()).collect();
        let mut wanted_urls: Vec<&str> = wanted.iter().map(|l| l.url.as_str()).collect();
        current_urls.sort_unstable();
        wanted_urls.sort_unstable();
        let mut write = LocationWrite {
            add: Vec::new(),
            metadata_only: Vec::new(),
            size: None,
            hashes,
            max_locations: None,
        };
        if current_urls == wanted_urls {
            // The same locations: only their metadata (and order) may change.
            write.metadata_only = wanted
                .into_iter()
                .map(|l| (l.url, Value::Object(l.metadata).to_string()))
                .collect();
        } else if !current.is_empty() {
            let shown: Vec<Value> = current
                .iter()
                .map(|l| {
                    serde_json::json!({
                        "url": glint_store::strip_userinfo(&l.url),
                        "metadata": serde_json::from_str::<Value>(&l.metadata).unwrap_or(Value::Null),
                    })
                })
                .collect();
            return Err(DomainError::bad_request(format!(
                "Original locations is not empty: {}",
                Value::Array(shown)
            )));
        } else {
            let mut seen: Vec<&str> = Vec::new();
            for location in &wanted {
                if seen.contains(&location.url.as_str()) {
                    return Err(DomainError::bad_request(format!(
                        "The location {} already exists",
                        location.url
                    )));
                }
                seen.push(&location.url);
            }
            for location in &wanted {
                let (metadata, size) = self.check_location(location).await?;
                if write.size.is_none() && image.size.is_none() {
                    write.size = Some(size);
                }
                write.add.push((location.url.clone(), metadata));
            }
        }
        self.write_locations(image, write).await
    }

    async fn remove_patch_location(
        &self,
        ctx: &RequestContext,
        image: &Image,
        change: &Change,
    ) -> Result<(), DomainError> {
        self.images
            .authorize_on(ctx, Action::DeleteImageLocation, image)?;
        if image.status != ImageStatus::Active {
            return Err(DomainError::conflict(format!(
                "It's not allowed to remove locations if image status is {}.",
                image.status
            )));
        }
        let mut current = self.data.locations_of(&image.id).await?;
        if current.len() == 1 {
            return Err(DomainError::forbidden(
                "Cannot remove last location in the image.",
            ));
        }
        let stores = self.data.stores();
        current.sort_by_key(|l| std::cmp::Reverse(stores.weight(l.store_id().as_deref())));
        let index = position(&change.path[1], current.len(), false)
            .ok_or_else(|| DomainError::bad_request("Invalid position for removing a location."))?;
        self.data
            .remove_location(ctx, image, &current[index])
            .await
            .map_err(|e| match e {
                crate::datapath::DataError::Domain(e) => e,
                other => DomainError::conflict(other.to_string()),
            })
    }

    /// A patch location's store: a scheme a configured store serves and not a restricted one,
    /// data of more than nothing there; an http location must pass the URL filter.
    /// Answers the metadata to store (the store id added with several stores) and the size.
    async fn check_location(&self, location: &PatchLocation) -> Result<(String, i64), DomainError> {
        let invalid = || DomainError::bad_request("Invalid location");
        let parsed = Location::parse(&location.url).map_err(|_| invalid())?;
        if RESTRICTED_SCHEMES.contains(&parsed.scheme()) {
            return Err(invalid());
        }
        // Glance 33 filters every caller's http location, services' too: Glint reads it.
        if matches!(parsed, Location::Http(_)) && self.filter.check(&location.url).is_err() {
            return Err(invalid());
        }
        let (store, size) = self
            .data
            .location_size(&parsed)
            .await
            .map_err(|_| invalid())?;
        let mut metadata = location.metadata.clone();
        if let Some(store) = store {
            metadata.insert("store".into(), Value::String(store));
        }
        let size = i64::try_from(size).map_err(|_| invalid())?;
        Ok((Value::Object(metadata).to_string(), size))
    }

    /// Glance's `validation_data` rules: values merged across the patch's locations, equal to
    /// the image's where it has them, only new ones on a queued image, well-formed.
    fn validation_values(
        &self,
        image: &Image,
        locations: &[PatchLocation],
    ) -> Result<Option<[Option<String>; 3]>, DomainError> {
        let keys = ["checksum", "os_hash_algo", "os_hash_value"];
        let current = [&image.checksum, &image.os_hash_algo, &image.os_hash_value];
        let mut merged: [Option<String>; 3] = Default::default();
        for location in locations {
            for (i, key) in keys.iter().enumerate() {
                let Some(value) = location.validation.get(*key).and_then(Value::as_str) else {
                    continue;
                };
                match &merged[i] {
                    Some(seen) if seen != value => {
                        return Err(DomainError::conflict(format!(
                            "Conflicting values for {key}"
                        )))
                    }
                    _ => merged[i] = Some(value.to_owned()),
                }
            }
        }
        let mut new = false;
        for (i, key) in keys.iter().enumerate() {
            match (&merged[i], current[i]) {
                (Some(value), Some(have)) if value != have => {
                    return Err(DomainError::conflict(format!(
                        "{key} is already set with a different value"
                    )))
                }
                (Some(_), Some(_)) => merged[i] = None,
                (Some(_), None) => new = true,
                (None, _) => {}
            }
        }
        if !new {
            return Ok(None);
        }
        if image.status != ImageStatus::Queued {
            let named: Vec<&str> = keys
                .iter()
                .zip(&merged)
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| *k)
                .collect();
            return Err(DomainError::conflict(format!(
                "New value(s) for {} may only be provided when image status is 'queued'",
                named.join(", ")
            )));
        }
        let hex = |v: &str| v.chars().all(|c| c.is_ascii_hexdigit());
        if let Some(checksum) = &merged[0] {
            if !hex(checksum) {
                return Err(DomainError::conflict(format!(
                    "checksum ({checksum}) is not a valid hexadecimal value"
                )));
            }
        }
        let algorithm = self.data.hashing_algorithm();
        if let Some(algo) = merged[1].as_deref().filter(|a| *a != algorithm) {
            return Err(DomainError::conflict(format!(
                "os_hash_algo must be {algorithm}, not {algo}"
            )));
        }
        if let Some(value) = &merged[2] {
            if !hex(value) {
                return Err(DomainError::conflict(format!(
                    "os_hash_value ({value}) is not a valid hexadecimal value"
                )));
            }
            let want = openssl::hash::MessageDigest::from_name(algorithm).map_or(64, |d| d.size());
            if value.len() != want * 2 {
                return Err(DomainError::conflict(format!(
                    "os_hash_value ({value}) is not the correct size for {algorithm} (should be {want} bytes)"
                )));
            }
        }
        Ok(Some(merged))
    }

    async fn write_locations(
        &self,
        image: &Image,
        write: LocationWrite,
    ) -> Result<(), DomainError> {
        // A queued image becomes active with its first location: it needs its formats.
        if image.status == ImageStatus::Queued
            && (image.disk_format.is_none() || image.container_format.is_none())
        {
            return Err(DomainError::bad_request(
                "Properties disk_format, container_format must be set prior to saving data.",
            ));
        }
        match self
            .tasks
            .write_locations(
                &image.id,
                image.status.as_str(),
                &write,
                crate::domain::image::now(),
            )
            .await?
        {
            LocationsWritten::Written => Ok(()),
            LocationsWritten::Gone => Err(DomainError::image_not_found(image.id.as_str())),
            LocationsWritten::StatusChanged => Err(DomainError::conflict(format!(
                "Image {} changed status while its locations were changed; retry the request.",
                image.id
            ))),
            LocationsWritten::Duplicate(url) => Err(DomainError::bad_request(format!(
                "The location {url} already exists"
            ))),
            LocationsWritten::OverQuota { count, quota } => Err(over_location_quota(count, quota)),
        }
    }
}

fn over_location_quota(attempted: usize, quota: usize) -> DomainError {
    DomainError::over_limit(format!(
        "The limit has been exceeded on the number of allowed image locations. Attempted: {attempted}, Maximum: {quota}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_read_as_glance_reads_them() {
        assert_eq!(position("-", 2, true), Some(2));
        assert_eq!(position("-", 2, false), Some(1));
        assert_eq!(position("7", 2, true), Some(2));
        assert_eq!(position("7", 2, false), None);
        assert_eq!(position("1", 2, false), Some(1));
        assert_eq!(position("x", 2, true), None);
        assert_eq!(position("-1", 2, true), None);
        assert_eq!(position("-", 0, false), None);
    }
}
