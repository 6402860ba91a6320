//! `metadef_namespaces`: reads, the create that writes a namespace with its content, the
//! replace, and deletes (the namespace with everything in it, or one kind of its content).

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::rows::{self, db_id, written, NAMESPACE_COLUMNS};
use crate::db::dialect::Dialect;
use crate::db::errors::{map_err, retry_on_lost};
use crate::db::repo::SqlRepo;
use crate::db::rows::to_db_time;
use crate::domain::metadefs::{Clash, Namespace, NamespaceFields, NewNamespace, Reach, Written};
use crate::domain::RepoError;

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
    pub(super) async fn read_namespace(&self, name: &str) -> Result<Option<Namespace>, RepoError> {
        let sql = DB::sql(&format!(
            "SELECT {NAMESPACE_COLUMNS} FROM metadef_namespaces n WHERE n.namespace = $1"
        ))
        .into_owned();
        let row = retry_on_lost(&self.read, || {
            let query = sqlx::query::<DB>(&sql).bind(name.to_owned());
            async move { query.fetch_optional(&self.read).await.map_err(map_err) }
        })
        .await?;
        row.as_ref().map(rows::namespace::<DB>).transpose()
    }

    pub(super) async fn read_namespaces(
        &self,
        reach: Reach<'_>,
        visibility: Option<&str>,
        resource_types: Option<&[String]>,
    ) -> Result<Vec<Namespace>, RepoError> {
        let mut sql = format!("SELECT {NAMESPACE_COLUMNS} FROM metadef_namespaces n WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let next = |sql: &mut String, value: &str, binds: &mut Vec<String>| {
            binds.push(value.to_owned());
            sql.push_str(&format!("${}", binds.len()));
        };
        match reach {
            Reach::All => {}
            Reach::OwnedOrPublic(Some(project)) => {
                sql.push_str(" AND (n.owner = ");
                next(&mut sql, project, &mut binds);
                sql.push_str(" OR n.visibility = 'public')");
            }
            Reach::OwnedOrPublic(None) => sql.push_str(" AND n.visibility = 'public'"),
        }
        if let Some(visibility) = visibility {
            sql.push_str(" AND n.visibility = ");
            next(&mut sql, visibility, &mut binds);
        }
        if let Some(names) = resource_types {
            if names.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(
                " AND n.id IN (SELECT a.namespace_id FROM metadef_namespace_resource_types a \
                 JOIN metadef_resource_types r ON r.id = a.resource_type_id WHERE r.name IN (",
            );
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                next(&mut sql, name, &mut binds);
            }
            sql.push_str("))");
        }
        let sql = DB::sql(&sql).into_owned();
        let found = retry_on_lost(&self.read, || {
            let query = binds
                .iter()
                .fold(sqlx::query::<DB>(&sql), |q, b| q.bind(b.clone()));
            async move { query.fetch_all(&self.read).await.map_err(map_err) }
        })
        .await?;
        found.iter().map(rows::namespace::<DB>).collect()
    }

    /// The id of the namespace named `name`, read within a write transaction.
    async fn namespace_id(conn: &mut DB::Connection, name: &str) -> Result<i64, RepoError> {
        let row = sqlx::query::<DB>(&DB::sql(&format!(
            "SELECT {NAMESPACE_COLUMNS} FROM metadef_namespaces n WHERE n.namespace = $1"
        )))
        .bind(name.to_owned())
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
        Ok(rows::namespace::<DB>(&row)?.id)
    }

    async fn namespace_by_id(
        conn: &mut DB::Connection,
        id: i32,
    ) -> Result<Option<Namespace>, RepoError> {
        let row = sqlx::query::<DB>(&DB::sql(&format!(
            "SELECT {NAMESPACE_COLUMNS} FROM metadef_namespaces n WHERE n.id = $1"
        )))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(map_err)?;
        row.as_ref().map(rows::namespace::<DB>).transpose()
    }

    pub(super) async fn create_namespace_once(
        &self,
        new: &NewNamespace,
        at: DateTime<Utc>,
    ) -> Result<Written<Namespace>, RepoError> {
        let at = to_db_time(at);
        let f = &new.fields;
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query::<DB>(&DB::sql(
            "INSERT INTO metadef_namespaces (namespace, display_name, description, \
             visibility, protected, owner, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        ))
        .bind(f.namespace.clone())
        .bind(f.display_name.clone())
        .bind(f.description.clone())
        .bind(f.visibility.clone())
        .bind(f.protected)
        .bind(f.owner.clone())
        .bind(at)
        .bind(at)
        .execute(&mut *tx)
        .await;
        if let Err(clash) = written(inserted, Clash::Namespace)? {
            tx.abandon().await;
            return Ok(Err(clash));
        }
        let id = Self::namespace_id(&mut tx, &f.namespace).await?;
        let outcome = Self::write_content(&mut tx, id, new, at).await?;
        if let Err(clash) = outcome {
            tx.abandon().await;
            return Ok(Err(clash));
        }
        let created = Self::namespace_by_id(&mut tx, db_id(id)?).await?;
        tx.commit().await.map_err(map_err)?;
        created
            .map(Ok)
            .ok_or_else(|| RepoError::Other(format!("namespace {} vanished", f.namespace)))
    }

    pub(super) async fn update_namespace_once(
        &self,
        id: i64,
        fields: &NamespaceFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<Namespace>>, RepoError> {
        let id = db_id(id)?;
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query::<DB>(&DB::sql(
            "UPDATE metadef_namespaces SET namespace = $1, display_name = $2, \
             description = $3, visibility = $4, protected = $5, owner = $6, \
             updated_at = $7 WHERE id = $8",
        ))
        .bind(fields.namespace.clone())
        .bind(fields.display_name.clone())
        .bind(fields.description.clone())
        .bind(fields.visibility.clone())
        .bind(fields.protected)
        .bind(fields.owner.clone())
        .bind(to_db_time(at))
        .bind(id)
        .execute(&mut *tx)
        .await;
        if let Err(clash) = written(changed, Clash::Namespace)? {
            tx.abandon().await;
            return Ok(Err(clash));
        }
        let updated = Self::namespace_by_id(&mut tx, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Ok(updated))
    }

    /// The namespace and everything in it, children first (Glance's `delete_cascade`).
    pub(super) async fn delete_namespace_once(&self, id: i64) -> Result<(), RepoError> {
        let id = db_id(id)?;
        let mut tx = self.begin_write().await?;
        for (table, column) in [
            ("metadef_tags", "namespace_id"),
            ("metadef_objects", "namespace_id"),
            ("metadef_properties", "namespace_id"),
            ("metadef_namespace_resource_types", "namespace_id"),
            ("metadef_namespaces", "id"),
        ] {
            sqlx::query::<DB>(&DB::sql(&format!(
                "DELETE FROM {table} WHERE {column} = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    /// Rows of `table` whose `column` is `id`.
    pub(super) async fn delete_rows_once(
        &self,
        table: &str,
        column: &str,
        id: i64,
    ) -> Result<(), RepoError> {
        let mut tx = self.begin_write().await?;
        sqlx::query::<DB>(&DB::sql(&format!(
            "DELETE FROM {table} WHERE {column} = $1"
        )))
        .bind(db_id(id)?)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }
}
