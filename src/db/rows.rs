//! Conversions between domain values and table rows shared by the repositories: timestamps
//! as the naive UTC the columns hold, and `image_locations` rows.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};

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
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let get_err = |e: sqlx::Error| RepoError::Other(e.to_string());
    Ok(StoredLocation {
        id: row.try_get(0).map_err(get_err)?,
        image_id: row.try_get(1).map_err(get_err)?,
        url: row.try_get(2).map_err(get_err)?,
        metadata: row.try_get(3).map_err(get_err)?,
    })
}
