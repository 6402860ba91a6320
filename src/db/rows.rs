//! Conversions between domain values and table rows shared by the repositories: timestamps
//! as the naive UTC the columns hold, `image_locations` rows, and the JSON the image query
//! aggregates (properties, tags, location metadata).

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::domain::image::ImageLocation;
use crate::domain::{RepoError, StoredLocation};

/// A timestamp as stored: UTC without an offset (Glance's columns are `DATETIME`).
pub(super) fn to_db_time(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

/// An `image_locations` row selected as `id, image_id, value, meta_data`.
pub(super) fn decode_location<DB>(row: &DB::Row) -> Result<StoredLocation, RepoError>
where
    DB: sqlx::Database,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB> + Type<DB>,
    for<'r> i32: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
    // Glance's `id` is a 32-bit integer and its `meta_data` may be NULL (no metadata).
    let id: i32 = row.try_get(0).map_err(get_err)?;
    let metadata: Option<String> = row.try_get(3).map_err(get_err)?;
    Ok(StoredLocation {
        id: i64::from(id),
        image_id: row.try_get(1).map_err(get_err)?,
        url: row.try_get(2).map_err(get_err)?,
        metadata: metadata.unwrap_or_else(|| "{}".to_owned()),
    })
}

/// Properties or tags aggregated as JSON by the query; NULL (no rows) is empty.
pub(super) fn decode_json<T: serde::de::DeserializeOwned + Default>(
    json: Option<String>,
    id: &str,
) -> Result<T, RepoError> {
    match json {
        None => Ok(T::default()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| RepoError::Other(format!("image {id}: malformed aggregated JSON: {e}"))),
    }
}

/// A location as the image queries return it: its URI and its metadata as stored (JSON
/// text, or NULL where Glance left none).
#[derive(Debug, serde::Deserialize)]
pub(super) struct LocationRow {
    pub(super) url: Option<String>,
    pub(super) metadata: Option<String>,
}

/// The locations of the rows, in their order; metadata that is not a JSON object reads as `{}`.
pub(super) fn image_locations(rows: Vec<LocationRow>) -> Vec<ImageLocation> {
    rows.into_iter()
        .filter_map(|row| {
            let metadata = row
                .metadata
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default();
            Some(ImageLocation {
                url: row.url?,
                metadata,
            })
        })
        .collect()
}

/// The store ids named by locations' metadata (`{"store": "fast"}`); locations without one
/// (single-store Glance writes `{}`) name none.
pub(super) fn location_stores(locations: &[ImageLocation]) -> Vec<String> {
    locations
        .iter()
        .filter_map(|l| l.store().map(str::to_owned))
        .collect()
}
