//! A namespace's content: `metadef_objects`, `metadef_properties`, `metadef_tags`, and its
//! associations with `metadef_resource_types`.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::rows::{
    self, db_id, joined, written, ASSOCIATION_COLUMNS, OBJECT_COLUMNS, PROPERTY_COLUMNS,
    TAG_COLUMNS,
};
use crate::db::dialect::Dialect;
use crate::db::errors::{map_err, retry_on_lost};
use crate::db::repo::SqlRepo;
use crate::db::rows::to_db_time;
use crate::domain::metadefs::{
    Association, AssociationFields, Clash, MetadefObject, NewNamespace, ObjectFields, Property,
    PropertyFields, ResourceType, Tag, Written,
};
use crate::domain::RepoError;

/// Stops a write transaction at the first unique key it runs into.
macro_rules! stop_on_clash {
    ($written:expr) => {
        if let Err(clash) = $written {
            return Ok(Err(clash));
        }
    };
}

fn json_text(value: &impl serde::Serialize) -> Result<String, RepoError> {
    serde_json::to_string(value).map_err(|e| RepoError::Other(e.to_string()))
}

impl<DB> SqlRepo<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB> + Default,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<bool>: Decode<'q, DB> + Type<DB>,
    for<'q> NaiveDateTime: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Option<NaiveDateTime>: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Rows of `table` in the namespace (or the one named `name`), by name: the order
    /// Glance's unordered query returns through the `(namespace_id, name)` index.
    async fn read_content(
        &self,
        columns: &str,
        table: &str,
        namespace: i64,
        name: Option<&str>,
    ) -> Result<Vec<DB::Row>, RepoError> {
        let by_name = if name.is_some() { " AND name = $2" } else { "" };
        let sql = DB::sql(&format!(
            "SELECT {columns} FROM {table} WHERE namespace_id = $1{by_name} ORDER BY name, id"
        ))
        .into_owned();
        let id = db_id(namespace)?;
        retry_on_lost(&self.read, || {
            let mut query = sqlx::query::<DB>(&sql).bind(id);
            if let Some(name) = name {
                query = query.bind(name.to_owned());
            }
            async move { query.fetch_all(&self.read).await.map_err(map_err) }
        })
        .await
    }

    pub(super) async fn read_objects(
        &self,
        namespace: i64,
        name: Option<&str>,
    ) -> Result<Vec<MetadefObject>, RepoError> {
        let found = self
            .read_content(OBJECT_COLUMNS, "metadef_objects", namespace, name)
            .await?;
        found.iter().map(rows::object::<DB>).collect()
    }

    pub(super) async fn read_properties(
        &self,
        namespace: i64,
        name: Option<&str>,
    ) -> Result<Vec<Property>, RepoError> {
        let found = self
            .read_content(PROPERTY_COLUMNS, "metadef_properties", namespace, name)
            .await?;
        found.iter().map(rows::property::<DB>).collect()
    }

    pub(super) async fn read_tags(
        &self,
        namespace: i64,
        name: Option<&str>,
    ) -> Result<Vec<Tag>, RepoError> {
        let found = self
            .read_content(TAG_COLUMNS, "metadef_tags", namespace, name)
            .await?;
        found.iter().map(rows::tag::<DB>).collect()
    }

    pub(super) async fn read_resource_types(&self) -> Result<Vec<ResourceType>, RepoError> {
        let sql = "SELECT id, name, protected, created_at, updated_at \
                   FROM metadef_resource_types ORDER BY id";
        let found = retry_on_lost(&self.read, || async {
            sqlx::query::<DB>(sql)
                .fetch_all(&self.read)
                .await
                .map_err(map_err)
        })
        .await?;
        found.iter().map(rows::resource_type::<DB>).collect()
    }

    pub(super) async fn read_associations(
        &self,
        namespace: i64,
    ) -> Result<Vec<Association>, RepoError> {
        let sql = DB::sql(&format!(
            "SELECT {ASSOCIATION_COLUMNS} FROM metadef_namespace_resource_types a \
             JOIN metadef_resource_types r ON r.id = a.resource_type_id \
             WHERE a.namespace_id = $1 ORDER BY a.created_at, r.id"
        ))
        .into_owned();
        let id = db_id(namespace)?;
        let found = retry_on_lost(&self.read, || {
            let query = sqlx::query::<DB>(&sql).bind(id);
            async move { query.fetch_all(&self.read).await.map_err(map_err) }
        })
        .await?;
        found.iter().map(rows::association::<DB>).collect()
    }

    /// A new namespace's content, in Glance's order.
    pub(super) async fn write_content(
        conn: &mut DB::Connection,
        namespace: i64,
        new: &NewNamespace,
        at: NaiveDateTime,
    ) -> Result<Written<()>, RepoError> {
        for association in &new.associations {
            stop_on_clash!(Self::insert_association(conn, namespace, association, at).await?);
        }
        for object in &new.objects {
            stop_on_clash!(Self::insert_object(conn, namespace, object, at).await?);
        }
        for tag in &new.tags {
            stop_on_clash!(Self::insert_tag(conn, namespace, tag, at).await?);
        }
        for property in &new.properties {
            stop_on_clash!(Self::insert_property(conn, namespace, property, at).await?);
        }
        Ok(Ok(()))
    }

    pub(super) async fn insert_object(
        conn: &mut DB::Connection,
        namespace: i64,
        object: &ObjectFields,
        at: NaiveDateTime,
    ) -> Result<Written<()>, RepoError> {
        let inserted = sqlx::query::<DB>(&DB::sql(
            "INSERT INTO metadef_objects (namespace_id, name, description, required, \
             json_schema, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ))
        .bind(db_id(namespace)?)
        .bind(object.name.clone())
        .bind(object.description.clone())
        .bind(joined(&object.required))
        .bind(json_text(&object.properties)?)
        .bind(at)
        .bind(at)
        .execute(conn)
        .await;
        written(inserted, Clash::Object(object.name.clone()))
    }

    pub(super) async fn insert_property(
        conn: &mut DB::Connection,
        namespace: i64,
        property: &PropertyFields,
        at: NaiveDateTime,
    ) -> Result<Written<()>, RepoError> {
        let inserted = sqlx::query::<DB>(&DB::sql(
            "INSERT INTO metadef_properties (namespace_id, name, json_schema, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5)",
        ))
        .bind(db_id(namespace)?)
        .bind(property.name.clone())
        .bind(json_text(&property.schema)?)
        .bind(at)
        .bind(at)
        .execute(conn)
        .await;
        written(inserted, Clash::Property(property.name.clone()))
    }

    pub(super) async fn insert_tag(
        conn: &mut DB::Connection,
        namespace: i64,
        name: &str,
        at: NaiveDateTime,
    ) -> Result<Written<()>, RepoError> {
        let inserted = sqlx::query::<DB>(&DB::sql(
            "INSERT INTO metadef_tags (namespace_id, name, created_at, updated_at) \
             VALUES ($1, $2, $3, $4)",
        ))
        .bind(db_id(namespace)?)
        .bind(name.to_owned())
        .bind(at)
        .bind(at)
        .execute(conn)
        .await;
        written(inserted, Clash::Tag(name.to_owned()))
    }

    /// Associates the resource type named in `fields`, created first when unknown (not
    /// protected, as Glance creates it).
    pub(super) async fn insert_association(
        conn: &mut DB::Connection,
        namespace: i64,
        fields: &AssociationFields,
        at: NaiveDateTime,
    ) -> Result<Written<()>, RepoError> {
        let find = DB::sql("SELECT id FROM metadef_resource_types WHERE name = $1").into_owned();
        let mut found = sqlx::query_scalar::<DB, i32>(&find)
            .bind(fields.name.clone())
            .fetch_optional(&mut *conn)
            .await
            .map_err(map_err)?;
        if found.is_none() {
            sqlx::query::<DB>(&DB::sql(
                "INSERT INTO metadef_resource_types (name, protected, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4)",
            ))
            .bind(fields.name.clone())
            .bind(false)
            .bind(at)
            .bind(at)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
            found = sqlx::query_scalar::<DB, i32>(&find)
                .bind(fields.name.clone())
                .fetch_optional(&mut *conn)
                .await
                .map_err(map_err)?;
        }
        let Some(resource_type) = found else {
            return Err(RepoError::Other(format!(
                "resource type {} vanished",
                fields.name
            )));
        };
        let inserted = sqlx::query::<DB>(&DB::sql(
            "INSERT INTO metadef_namespace_resource_types (resource_type_id, namespace_id, \
             properties_target, prefix, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        ))
        .bind(resource_type)
        .bind(db_id(namespace)?)
        .bind(fields.properties_target.clone())
        .bind(fields.prefix.clone())
        .bind(at)
        .bind(at)
        .execute(&mut *conn)
        .await;
        written(inserted, Clash::Association(fields.name.clone()))
    }

    /// Runs `write` in a transaction and reads back the rows of `table` it names.
    pub(super) async fn create_object_once(
        &self,
        namespace: i64,
        fields: &ObjectFields,
        at: DateTime<Utc>,
    ) -> Result<Written<MetadefObject>, RepoError> {
        let mut tx = self.begin_write().await?;
        if let Err(clash) = Self::insert_object(&mut tx, namespace, fields, to_db_time(at)).await? {
            tx.abandon().await;
            return Ok(Err(clash));
        }
        tx.commit().await.map_err(map_err)?;
        self.read_back(
            self.read_objects(namespace, Some(&fields.name)).await?,
            &fields.name,
        )
    }

    pub(super) async fn update_object_once(
        &self,
        id: i64,
        fields: &ObjectFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<MetadefObject>>, RepoError> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query::<DB>(&DB::sql(
            "UPDATE metadef_objects SET name = $1, description = $2, required = $3, \
             json_schema = $4, updated_at = $5 WHERE id = $6",
        ))
        .bind(fields.name.clone())
        .bind(fields.description.clone())
        .bind(joined(&fields.required))
        .bind(json_text(&fields.properties)?)
        .bind(to_db_time(at))
        .bind(db_id(id)?)
        .execute(&mut *tx)
        .await;
        if let Err(clash) = written(changed, Clash::Object(fields.name.clone()))? {
            tx.abandon().await;
            return Ok(Err(clash));
        }
        let row = sqlx::query::<DB>(&DB::sql(&format!(
            "SELECT {OBJECT_COLUMNS} FROM metadef_objects WHERE id = $1"
        )))
        .bind(db_id(id)?)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Ok(row.as_ref().map(rows::object::<DB>).transpose()?))
    }

    pub(super) async fn create_property_once(
        &self,
        namespace: i64,
        fields: &PropertyFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Property>, RepoError> {
        let mut tx = self.begin_write().await?;
        if let Err(clash) =
            Self::insert_property(&mut tx, namespace, fields, to_db_time(at)).await?
        {
            tx.abandon().await;
            return Ok(Err(clash));
        }
        tx.commit().await.map_err(map_err)?;
        self.read_back(
            self.read_properties(namespace, Some(&fields.name)).await?,
            &fields.name,
        )
    }

    pub(super) async fn update_property_once(
        &self,
        id: i64,
        fields: &PropertyFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<Property>>, RepoError> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query::<DB>(&DB::sql(
            "UPDATE metadef_properties SET name = $1, json_schema = $2, updated_at = $3 \
             WHERE id = $4",
        ))
        .bind(fields.name.clone())
        .bind(json_text(&fields.schema)?)
        .bind(to_db_time(at))
        .bind(db_id(id)?)
        .execute(&mut *tx)
        .await;
        if let Err(clash) = written(changed, Clash::Property(fields.name.clone()))? {
            tx.abandon().await;
            return Ok(Err(clash));
        }
        let row = sqlx::query::<DB>(&DB::sql(&format!(
            "SELECT {PROPERTY_COLUMNS} FROM metadef_properties WHERE id = $1"
        )))
        .bind(db_id(id)?)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Ok(row.as_ref().map(rows::property::<DB>).transpose()?))
    }

    /// Adds tags, after removing the namespace's others unless `append`.
    pub(super) async fn create_tags_once(
        &self,
        namespace: i64,
        names: &[String],
        append: bool,
        at: DateTime<Utc>,
    ) -> Result<Written<Vec<Tag>>, RepoError> {
        let mut tx = self.begin_write().await?;
        if !append {
            sqlx::query::<DB>(&DB::sql("DELETE FROM metadef_tags WHERE namespace_id = $1"))
                .bind(db_id(namespace)?)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        for name in names {
            if let Err(clash) = Self::insert_tag(&mut tx, namespace, name, to_db_time(at)).await? {
                tx.abandon().await;
                return Ok(Err(clash));
            }
        }
        tx.commit().await.map_err(map_err)?;
        let stored = self.read_tags(namespace, None).await?;
        Ok(Ok(names
            .iter()
            .filter_map(|name| stored.iter().find(|t| &t.name == name).cloned())
            .collect()))
    }

    pub(super) async fn rename_tag_once(
        &self,
        id: i64,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<Tag>>, RepoError> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query::<DB>(&DB::sql(
            "UPDATE metadef_tags SET name = $1, updated_at = $2 WHERE id = $3",
        ))
        .bind(name.to_owned())
        .bind(to_db_time(at))
        .bind(db_id(id)?)
        .execute(&mut *tx)
        .await;
        if let Err(clash) = written(changed, Clash::Tag(name.to_owned()))? {
            tx.abandon().await;
            return Ok(Err(clash));
        }
        let row = sqlx::query::<DB>(&DB::sql(&format!(
            "SELECT {TAG_COLUMNS} FROM metadef_tags WHERE id = $1"
        )))
        .bind(db_id(id)?)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Ok(row.as_ref().map(rows::tag::<DB>).transpose()?))
    }

    pub(super) async fn associate_once(
        &self,
        namespace: i64,
        fields: &AssociationFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Association>, RepoError> {
        let mut tx = self.begin_write().await?;
        if let Err(clash) =
            Self::insert_association(&mut tx, namespace, fields, to_db_time(at)).await?
        {
            tx.abandon().await;
            return Ok(Err(clash));
        }
        tx.commit().await.map_err(map_err)?;
        let stored = self.read_associations(namespace).await?;
        let found = stored.into_iter().find(|a| a.name == fields.name);
        self.read_back(found.into_iter().collect(), &fields.name)
    }

    pub(super) async fn dissociate_once(
        &self,
        namespace: i64,
        resource_type: &str,
    ) -> Result<bool, RepoError> {
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query::<DB>(&DB::sql(
            "DELETE FROM metadef_namespace_resource_types WHERE namespace_id = $1 AND \
             resource_type_id IN (SELECT id FROM metadef_resource_types WHERE name = $2)",
        ))
        .bind(db_id(namespace)?)
        .bind(resource_type.to_owned())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(DB::rows_affected(&removed) > 0)
    }

    /// The row a committed write made, read back.
    fn read_back<T>(&self, found: Vec<T>, name: &str) -> Result<Written<T>, RepoError> {
        found
            .into_iter()
            .next()
            .map(Ok)
            .ok_or_else(|| RepoError::Other(format!("metadef {name} vanished after its write")))
    }
}
