//! `glint db load-metadefs`, `unload-metadefs` and `export-metadefs` on Glance's `metadef_*`
//! tables, row for row as `glance/db/sqlalchemy/metadata.py` writes them: schemas as the JSON
//! text given, `updated_at` left NULL on insert, resource types created `protected`, rows found
//! by name with the database's own comparison (MySQL's is case-insensitive, as for Glance).
//!
//! Unlike Glance, which commits row by row and goes on past a failing file, a load is one
//! transaction: a definition the database refuses leaves every table as it was.

use chrono::NaiveDateTime;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::dialect::Dialect;
use super::pool::DbPool;
use super::DbError;
use crate::domain::metadef_files::{
    AssociationDefinition, LoadMode, NamespaceDefinition, NamespaceLoaded, ObjectDefinition,
    Unloaded,
};

/// A load that failed, and the file and namespace being written then, if it was one.
#[derive(Debug, thiserror::Error)]
pub struct LoadError {
    pub at: Option<(String, String)>,
    #[source]
    pub source: DbError,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.at {
            Some((file, namespace)) => write!(f, "{file}: namespace {namespace}: {}", self.source),
            None => write!(f, "{}", self.source),
        }
    }
}

/// The tables in the order an unload empties them (children first), as Glance's.
const TABLES: &[&str] = &[
    "metadef_properties",
    "metadef_objects",
    "metadef_tags",
    "metadef_namespace_resource_types",
    "metadef_namespaces",
    "metadef_resource_types",
];

/// The statements of the three commands on one database.
pub(super) struct MetadefTables<DB>(std::marker::PhantomData<DB>);

impl<DB> MetadefTables<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<bool>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> NaiveDateTime: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Loads every namespace, in order, in one transaction.
    pub(super) async fn load(
        pool: &DbPool<DB>,
        namespaces: &[NamespaceDefinition],
        mode: LoadMode,
        now: NaiveDateTime,
    ) -> Result<Vec<NamespaceLoaded>, LoadError> {
        let failed = |definition: Option<&NamespaceDefinition>, source: DbError| LoadError {
            at: definition.map(|d| (d.file.clone(), d.namespace.clone())),
            source,
        };
        let mut tx = pool
            .begin()
            .await
            .map_err(|e| failed(None, DbError::Query(e)))?;
        let mut outcomes = Vec::with_capacity(namespaces.len());
        for definition in namespaces {
            let outcome = Self::load_namespace(&mut tx, definition, mode, now)
                .await
                .map_err(|e| failed(Some(definition), DbError::Query(e)))?;
            outcomes.push(outcome);
        }
        tx.commit()
            .await
            .map_err(|e| failed(None, DbError::Query(e)))?;
        Ok(outcomes)
    }

    async fn id_of(
        conn: &mut DB::Connection,
        sql: &str,
        binds: (Option<i32>, &str),
    ) -> Result<Option<i32>, sqlx::Error> {
        let sql = DB::sql(sql);
        let mut query = sqlx::query::<DB>(&sql);
        if let Some(namespace_id) = binds.0 {
            query = query.bind(namespace_id);
        }
        let row = query
            .bind(binds.1.to_owned())
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|r| r.try_get::<i32, _>(0)).transpose()
    }

    /// A row of `table` in the namespace, by name.
    async fn child_id(
        conn: &mut DB::Connection,
        table: &str,
        namespace_id: i32,
        name: &str,
    ) -> Result<Option<i32>, sqlx::Error> {
        let sql = format!("SELECT id FROM {table} WHERE namespace_id = $1 AND name = $2");
        Self::id_of(conn, &sql, (Some(namespace_id), name)).await
    }

    async fn load_namespace(
        conn: &mut DB::Connection,
        definition: &NamespaceDefinition,
        mode: LoadMode,
        now: NaiveDateTime,
    ) -> Result<NamespaceLoaded, sqlx::Error> {
        let find = "SELECT id FROM metadef_namespaces WHERE namespace = $1";
        let mut existing = Self::id_of(conn, find, (None, &definition.namespace)).await?;
        let mut outcome = NamespaceLoaded::Merged;
        if let (Some(id), LoadMode::Overwrite) = (existing, mode) {
            for table in &TABLES[..4] {
                sqlx::query::<DB>(&DB::sql(&format!(
                    "DELETE FROM {table} WHERE namespace_id = $1"
                )))
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query::<DB>(&DB::sql("DELETE FROM metadef_namespaces WHERE id = $1"))
                .bind(id)
                .execute(&mut *conn)
                .await?;
            existing = None;
            outcome = NamespaceLoaded::Replaced;
        }
        let prefer_new = mode == LoadMode::PreferNew;
        let namespace_id = match existing {
            None => {
                sqlx::query::<DB>(&DB::sql(
                    "INSERT INTO metadef_namespaces (namespace, display_name, description, \
                     visibility, protected, owner, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                ))
                .bind(definition.namespace.clone())
                .bind(definition.display_name.clone())
                .bind(definition.description.clone())
                .bind(definition.visibility.clone())
                .bind(definition.protected)
                .bind(definition.owner.clone())
                .bind(now)
                .execute(&mut *conn)
                .await?;
                if outcome != NamespaceLoaded::Replaced {
                    outcome = NamespaceLoaded::Created;
                }
                Self::id_of(conn, find, (None, &definition.namespace))
                    .await?
                    .ok_or(sqlx::Error::RowNotFound)?
            }
            Some(_) if mode == LoadMode::SkipExisting => return Ok(NamespaceLoaded::Skipped),
            Some(id) => {
                if prefer_new {
                    sqlx::query::<DB>(&DB::sql(
                        "UPDATE metadef_namespaces SET namespace = $1, display_name = $2, \
                         description = $3, visibility = $4, protected = $5, owner = $6, \
                         updated_at = $7 WHERE id = $8",
                    ))
                    .bind(definition.namespace.clone())
                    .bind(definition.display_name.clone())
                    .bind(definition.description.clone())
                    .bind(definition.visibility.clone())
                    .bind(definition.protected)
                    .bind(definition.owner.clone())
                    .bind(now)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                }
                id
            }
        };
        for association in &definition.resource_type_associations {
            Self::load_association(conn, namespace_id, association, prefer_new, now).await?;
        }
        for (name, schema) in &definition.properties {
            match Self::child_id(conn, "metadef_properties", namespace_id, name).await? {
                None => {
                    sqlx::query::<DB>(&DB::sql(
                        "INSERT INTO metadef_properties (name, namespace_id, json_schema, \
                         created_at) VALUES ($1, $2, $3, $4)",
                    ))
                    .bind(name.clone())
                    .bind(namespace_id)
                    .bind(schema.clone())
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                }
                Some(id) if prefer_new => {
                    sqlx::query::<DB>(&DB::sql(
                        "UPDATE metadef_properties SET json_schema = $1, updated_at = $2 \
                         WHERE id = $3",
                    ))
                    .bind(schema.clone())
                    .bind(now)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                }
                Some(_) => {}
            }
        }
        for object in &definition.objects {
            Self::load_object(conn, namespace_id, object, prefer_new, now).await?;
        }
        for tag in &definition.tags {
            match Self::child_id(conn, "metadef_tags", namespace_id, tag).await? {
                None => {
                    sqlx::query::<DB>(&DB::sql(
                        "INSERT INTO metadef_tags (name, namespace_id, created_at) \
                         VALUES ($1, $2, $3)",
                    ))
                    .bind(tag.clone())
                    .bind(namespace_id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                }
                Some(id) if prefer_new => Self::touch(conn, "metadef_tags", id, now).await?,
                Some(_) => {}
            }
        }
        Ok(outcome)
    }

    /// Sets `updated_at` alone: what Glance's `--prefer_new` changes of a tag or resource type.
    async fn touch(
        conn: &mut DB::Connection,
        table: &str,
        id: i32,
        now: NaiveDateTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query::<DB>(&DB::sql(&format!(
            "UPDATE {table} SET updated_at = $1 WHERE id = $2"
        )))
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn load_association(
        conn: &mut DB::Connection,
        namespace_id: i32,
        association: &AssociationDefinition,
        prefer_new: bool,
        now: NaiveDateTime,
    ) -> Result<(), sqlx::Error> {
        let find = "SELECT id FROM metadef_resource_types WHERE name = $1";
        let resource_type_id = match Self::id_of(conn, find, (None, &association.name)).await? {
            Some(id) => {
                if prefer_new {
                    Self::touch(conn, "metadef_resource_types", id, now).await?;
                }
                id
            }
            None => {
                sqlx::query::<DB>(&DB::sql(
                    "INSERT INTO metadef_resource_types (name, protected, created_at) \
                     VALUES ($1, $2, $3)",
                ))
                .bind(association.name.clone())
                .bind(true)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Self::id_of(conn, find, (None, &association.name))
                    .await?
                    .ok_or(sqlx::Error::RowNotFound)?
            }
        };
        let present = sqlx::query::<DB>(&DB::sql(
            "SELECT resource_type_id FROM metadef_namespace_resource_types \
             WHERE namespace_id = $1 AND resource_type_id = $2",
        ))
        .bind(namespace_id)
        .bind(resource_type_id)
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
        if !present {
            sqlx::query::<DB>(&DB::sql(
                "INSERT INTO metadef_namespace_resource_types (namespace_id, resource_type_id, \
                 properties_target, prefix, created_at) VALUES ($1, $2, $3, $4, $5)",
            ))
            .bind(namespace_id)
            .bind(resource_type_id)
            .bind(association.properties_target.clone())
            .bind(association.prefix.clone())
            .bind(now)
            .execute(&mut *conn)
            .await?;
        } else if prefer_new {
            sqlx::query::<DB>(&DB::sql(
                "UPDATE metadef_namespace_resource_types SET properties_target = $1, prefix = $2, \
                 updated_at = $3 WHERE namespace_id = $4 AND resource_type_id = $5",
            ))
            .bind(association.properties_target.clone())
            .bind(association.prefix.clone())
            .bind(now)
            .bind(namespace_id)
            .bind(resource_type_id)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn load_object(
        conn: &mut DB::Connection,
        namespace_id: i32,
        object: &ObjectDefinition,
        prefer_new: bool,
        now: NaiveDateTime,
    ) -> Result<(), sqlx::Error> {
        match Self::child_id(conn, "metadef_objects", namespace_id, &object.name).await? {
            None => {
                sqlx::query::<DB>(&DB::sql(
                    "INSERT INTO metadef_objects (name, description, namespace_id, json_schema, \
                     created_at) VALUES ($1, $2, $3, $4, $5)",
                ))
                .bind(object.name.clone())
                .bind(object.description.clone())
                .bind(namespace_id)
                .bind(object.json_schema.clone())
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            Some(id) if prefer_new => {
                sqlx::query::<DB>(&DB::sql(
                    "UPDATE metadef_objects SET description = $1, json_schema = $2, \
                     updated_at = $3 WHERE id = $4",
                ))
                .bind(object.description.clone())
                .bind(object.json_schema.clone())
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Empties every metadefs table, resource types included, in one transaction.
    pub(super) async fn unload(pool: &DbPool<DB>) -> Result<Unloaded, DbError> {
        let mut tx = pool.begin().await?;
        let mut removed = Unloaded::new();
        for table in TABLES {
            let result = sqlx::query::<DB>(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
            removed.push((table, DB::rows_affected(&result)));
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Every namespace with everything in it, in one consistent read: namespaces, objects,
    /// properties and tags in the order they were created (id), associations by resource type.
    pub(super) async fn export(pool: &DbPool<DB>) -> Result<Vec<NamespaceDefinition>, DbError> {
        let mut tx = pool.begin().await?;
        let rows = sqlx::query::<DB>(
            "SELECT id, namespace, display_name, description, visibility, protected, owner \
             FROM metadef_namespaces ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut namespaces = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i32 = row.try_get(0)?;
            let associations = sqlx::query::<DB>(&DB::sql(
                "SELECT rt.name, a.prefix, a.properties_target \
                     FROM metadef_namespace_resource_types a \
                     JOIN metadef_resource_types rt ON rt.id = a.resource_type_id \
                     WHERE a.namespace_id = $1 ORDER BY a.resource_type_id",
            ))
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| {
                Ok(AssociationDefinition {
                    name: r.try_get(0)?,
                    prefix: r.try_get(1)?,
                    properties_target: r.try_get(2)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let properties = sqlx::query::<DB>(&DB::sql(
                "SELECT name, json_schema FROM metadef_properties WHERE namespace_id = $1 \
                     ORDER BY id",
            ))
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let objects = sqlx::query::<DB>(&DB::sql(
                "SELECT name, description, json_schema FROM metadef_objects \
                     WHERE namespace_id = $1 ORDER BY id",
            ))
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| {
                Ok(ObjectDefinition {
                    name: r.try_get(0)?,
                    description: r.try_get(1)?,
                    json_schema: r.try_get(2)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let tags = sqlx::query::<DB>(&DB::sql(
                "SELECT name FROM metadef_tags WHERE namespace_id = $1 ORDER BY id",
            ))
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<Vec<String>, sqlx::Error>>()?;
            namespaces.push(NamespaceDefinition {
                file: String::new(),
                namespace: row.try_get(1)?,
                display_name: row.try_get(2)?,
                description: row.try_get(3)?,
                visibility: row.try_get(4)?,
                protected: row.try_get(5)?,
                owner: row.try_get(6)?,
                resource_type_associations: associations,
                properties,
                objects,
                tags,
            });
        }
        tx.commit().await?;
        Ok(namespaces)
    }
}
