//! The `metadef_*` rows as Glance writes them: ids are 32-bit integers, an object's
//! `required` is its names comma-joined (NULL for none), object and property definitions
//! are JSON text, timestamps are naive UTC.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::domain::metadefs::{
    Association, Clash, MetadefObject, Namespace, Property, ResourceType, Tag, Written,
};
use crate::domain::RepoError;

pub(super) const NAMESPACE_COLUMNS: &str = "n.id, n.namespace, n.display_name, n.description, \
    n.visibility, n.protected, n.owner, n.created_at, n.updated_at";
pub(super) const OBJECT_COLUMNS: &str =
    "id, name, description, required, json_schema, created_at, updated_at";
pub(super) const PROPERTY_COLUMNS: &str = "id, name, json_schema, created_at, updated_at";
pub(super) const TAG_COLUMNS: &str = "id, name, created_at, updated_at";
pub(super) const ASSOCIATION_COLUMNS: &str =
    "r.name, a.prefix, a.properties_target, a.created_at, a.updated_at";

/// A write's outcome: done, or the unique key it ran into (the caller rolls back).
pub(super) fn written<T>(
    outcome: Result<T, sqlx::Error>,
    clash: Clash,
) -> Result<Written<()>, RepoError> {
    match outcome.map_err(crate::db::errors::map_err) {
        Ok(_) => Ok(Ok(())),
        Err(RepoError::Duplicate) => Ok(Err(clash)),
        Err(e) => Err(e),
    }
}

fn get_err(e: sqlx::Error) -> RepoError {
    RepoError::Other(e.to_string())
}

/// A database id as Glance's `Integer` columns hold it.
pub(super) fn db_id(id: i64) -> Result<i32, RepoError> {
    i32::try_from(id).map_err(|_| RepoError::Other(format!("metadef id {id} out of range")))
}

/// The required names as the `required` column holds them.
pub(super) fn joined(names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| names.join(","))
}

fn definitions(text: &str, what: &str) -> Result<Map<String, Value>, RepoError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        _ => Err(RepoError::Other(format!(
            "{what}: json_schema is not a JSON object"
        ))),
    }
}

pub(super) trait MetadefRow<DB: sqlx::Database> {
    fn text(&self, i: usize) -> Result<String, RepoError>;
    fn optional_text(&self, i: usize) -> Result<Option<String>, RepoError>;
    fn id(&self, i: usize) -> Result<i64, RepoError>;
    fn time(&self, i: usize) -> Result<chrono::DateTime<chrono::Utc>, RepoError>;
    fn optional_time(&self, i: usize) -> Result<Option<chrono::DateTime<chrono::Utc>>, RepoError>;
    fn optional_bool(&self, i: usize) -> Result<Option<bool>, RepoError>;
}

impl<DB, R> MetadefRow<DB> for R
where
    DB: sqlx::Database<Row = R>,
    R: Row<Database = DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB> + Type<DB>,
    for<'r> i32: Decode<'r, DB> + Type<DB>,
    for<'r> Option<bool>: Decode<'r, DB> + Type<DB>,
    for<'r> NaiveDateTime: Decode<'r, DB> + Type<DB>,
    for<'r> Option<NaiveDateTime>: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<R>,
{
    fn text(&self, i: usize) -> Result<String, RepoError> {
        self.try_get(i).map_err(get_err)
    }
    fn optional_text(&self, i: usize) -> Result<Option<String>, RepoError> {
        self.try_get(i).map_err(get_err)
    }
    fn id(&self, i: usize) -> Result<i64, RepoError> {
        self.try_get::<i32, _>(i).map(i64::from).map_err(get_err)
    }
    fn time(&self, i: usize) -> Result<chrono::DateTime<chrono::Utc>, RepoError> {
        self.try_get::<NaiveDateTime, _>(i)
            .map(|t| t.and_utc())
            .map_err(get_err)
    }
    fn optional_time(&self, i: usize) -> Result<Option<chrono::DateTime<chrono::Utc>>, RepoError> {
        self.try_get::<Option<NaiveDateTime>, _>(i)
            .map(|t| t.map(|t| t.and_utc()))
            .map_err(get_err)
    }
    fn optional_bool(&self, i: usize) -> Result<Option<bool>, RepoError> {
        self.try_get(i).map_err(get_err)
    }
}

pub(super) fn namespace<DB: sqlx::Database>(
    row: &impl MetadefRow<DB>,
) -> Result<Namespace, RepoError> {
    Ok(Namespace {
        id: row.id(0)?,
        namespace: row.text(1)?,
        display_name: row.optional_text(2)?,
        description: row.optional_text(3)?,
        visibility: row.optional_text(4)?,
        protected: row.optional_bool(5)?,
        owner: row.text(6)?,
        created_at: row.time(7)?,
        updated_at: row.optional_time(8)?,
    })
}

pub(super) fn object<DB: sqlx::Database>(
    row: &impl MetadefRow<DB>,
) -> Result<MetadefObject, RepoError> {
    let name = row.text(1)?;
    let required = row.optional_text(3)?.unwrap_or_default();
    Ok(MetadefObject {
        id: row.id(0)?,
        properties: definitions(&row.text(4)?, &format!("object {name}"))?,
        name,
        description: row.optional_text(2)?,
        required: required
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: row.time(5)?,
        updated_at: row.optional_time(6)?,
    })
}

pub(super) fn property<DB: sqlx::Database>(
    row: &impl MetadefRow<DB>,
) -> Result<Property, RepoError> {
    let name = row.text(1)?;
    let schema = definitions(&row.text(2)?, &format!("property {name}"))?;
    Ok(Property {
        id: row.id(0)?,
        name,
        schema: Value::Object(schema),
        created_at: row.time(3)?,
        updated_at: row.optional_time(4)?,
    })
}

pub(super) fn tag<DB: sqlx::Database>(row: &impl MetadefRow<DB>) -> Result<Tag, RepoError> {
    Ok(Tag {
        id: row.id(0)?,
        name: row.text(1)?,
        created_at: row.time(2)?,
        updated_at: row.optional_time(3)?,
    })
}

pub(super) fn resource_type<DB: sqlx::Database>(
    row: &impl MetadefRow<DB>,
) -> Result<ResourceType, RepoError> {
    Ok(ResourceType {
        name: row.text(1)?,
        protected: row.optional_bool(2)?.unwrap_or(false),
        created_at: row.time(3)?,
        updated_at: row.optional_time(4)?,
    })
}

pub(super) fn association<DB: sqlx::Database>(
    row: &impl MetadefRow<DB>,
) -> Result<Association, RepoError> {
    Ok(Association {
        name: row.text(0)?,
        prefix: row.optional_text(1)?,
        properties_target: row.optional_text(2)?,
        created_at: row.time(3)?,
        updated_at: row.optional_time(4)?,
    })
}
