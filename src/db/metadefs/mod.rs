//! `MetadefRepo` over Glance's `metadef_*` tables, for every database. Reads run on the read
//! pool (retried on a lost connection); each write is one transaction on the write pool, run
//! again whole when the database rolled it back to break a conflict. A unique key a write
//! runs into is answered as a `Clash`, the transaction rolled back.

mod namespaces;
mod rows;
mod tables;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::dialect::Dialect;
use super::errors::retry_on_conflict;
use super::repo::SqlRepo;
use crate::domain::metadefs::{
    Association, AssociationFields, Clash, Content, MetadefObject, MetadefRepo, Namespace,
    NamespaceFields, NewNamespace, ObjectFields, Property, PropertyFields, Reach, ResourceType,
    Tag, Written,
};
use crate::domain::RepoError;

#[async_trait]
impl<DB> MetadefRepo for SqlRepo<DB>
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
    async fn namespace(&self, name: &str) -> Result<Option<Namespace>, RepoError> {
        self.read_namespace(name).await
    }

    async fn namespaces(
        &self,
        reach: Reach<'_>,
        visibility: Option<&str>,
        resource_types: Option<&[String]>,
    ) -> Result<Vec<Namespace>, RepoError> {
        self.read_namespaces(reach, visibility, resource_types)
            .await
    }

    async fn create_namespace(
        &self,
        new: &NewNamespace,
        at: DateTime<Utc>,
    ) -> Result<Written<Namespace>, RepoError> {
        retry_on_conflict(|| self.create_namespace_once(new, at)).await
    }

    async fn update_namespace(
        &self,
        id: i64,
        fields: &NamespaceFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<Namespace>>, RepoError> {
        retry_on_conflict(|| self.update_namespace_once(id, fields, at)).await
    }

    async fn delete_namespace(&self, id: i64) -> Result<(), RepoError> {
        retry_on_conflict(|| self.delete_namespace_once(id)).await
    }

    async fn delete_content(&self, id: i64, content: Content) -> Result<(), RepoError> {
        let table = match content {
            Content::Objects => "metadef_objects",
            Content::Properties => "metadef_properties",
            Content::Tags => "metadef_tags",
        };
        retry_on_conflict(|| self.delete_rows_once(table, "namespace_id", id)).await
    }

    async fn objects(&self, namespace: i64) -> Result<Vec<MetadefObject>, RepoError> {
        self.read_objects(namespace, None).await
    }

    async fn object(&self, namespace: i64, name: &str) -> Result<Option<MetadefObject>, RepoError> {
        Ok(self
            .read_objects(namespace, Some(name))
            .await?
            .into_iter()
            .next())
    }

    async fn create_object(
        &self,
        namespace: i64,
        fields: &ObjectFields,
        at: DateTime<Utc>,
    ) -> Result<Written<MetadefObject>, RepoError> {
        retry_on_conflict(|| self.create_object_once(namespace, fields, at)).await
    }

    async fn update_object(
        &self,
        id: i64,
        fields: &ObjectFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<MetadefObject>>, RepoError> {
        retry_on_conflict(|| self.update_object_once(id, fields, at)).await
    }

    async fn delete_object(&self, id: i64) -> Result<(), RepoError> {
        retry_on_conflict(|| self.delete_rows_once("metadef_objects", "id", id)).await
    }

    async fn properties(&self, namespace: i64) -> Result<Vec<Property>, RepoError> {
        self.read_properties(namespace, None).await
    }

    async fn property(&self, namespace: i64, name: &str) -> Result<Option<Property>, RepoError> {
        Ok(self
            .read_properties(namespace, Some(name))
            .await?
            .into_iter()
            .next())
    }

    async fn create_property(
        &self,
        namespace: i64,
        fields: &PropertyFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Property>, RepoError> {
        retry_on_conflict(|| self.create_property_once(namespace, fields, at)).await
    }

    async fn update_property(
        &self,
        id: i64,
        fields: &PropertyFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<Property>>, RepoError> {
        retry_on_conflict(|| self.update_property_once(id, fields, at)).await
    }

    async fn delete_property(&self, id: i64) -> Result<(), RepoError> {
        retry_on_conflict(|| self.delete_rows_once("metadef_properties", "id", id)).await
    }

    async fn tags(&self, namespace: i64) -> Result<Vec<Tag>, RepoError> {
        self.read_tags(namespace, None).await
    }

    async fn tag(&self, namespace: i64, name: &str) -> Result<Option<Tag>, RepoError> {
        Ok(self
            .read_tags(namespace, Some(name))
            .await?
            .into_iter()
            .next())
    }

    async fn create_tag(
        &self,
        namespace: i64,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Written<Tag>, RepoError> {
        let names = [name.to_owned()];
        let created =
            retry_on_conflict(|| self.create_tags_once(namespace, &names, true, at)).await?;
        Ok(created.and_then(|tags| tags.into_iter().next().ok_or(Clash::Tag(name.to_owned()))))
    }

    async fn create_tags(
        &self,
        namespace: i64,
        names: &[String],
        append: bool,
        at: DateTime<Utc>,
    ) -> Result<Written<Vec<Tag>>, RepoError> {
        retry_on_conflict(|| self.create_tags_once(namespace, names, append, at)).await
    }

    async fn rename_tag(
        &self,
        id: i64,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<Tag>>, RepoError> {
        retry_on_conflict(|| self.rename_tag_once(id, name, at)).await
    }

    async fn delete_tag(&self, id: i64) -> Result<(), RepoError> {
        retry_on_conflict(|| self.delete_rows_once("metadef_tags", "id", id)).await
    }

    async fn resource_types(&self) -> Result<Vec<ResourceType>, RepoError> {
        self.read_resource_types().await
    }

    async fn associations(&self, namespace: i64) -> Result<Vec<Association>, RepoError> {
        self.read_associations(namespace).await
    }

    async fn associate(
        &self,
        namespace: i64,
        fields: &AssociationFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Association>, RepoError> {
        retry_on_conflict(|| self.associate_once(namespace, fields, at)).await
    }

    async fn dissociate(&self, namespace: i64, resource_type: &str) -> Result<bool, RepoError> {
        retry_on_conflict(|| self.dissociate_once(namespace, resource_type)).await
    }
}
