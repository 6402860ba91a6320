//! Metadata definitions (Glance's metadefs catalog): namespaces and what they hold — objects,
//! properties, tags and resource type associations — with Glance's visibility, policy,
//! protection and duplicate rules, its schema documents and its notifications. The records
//! here are what the `metadef_*` tables hold; `MetadefRepo` is the port `db/metadefs`
//! implements.

mod bodies;
mod namespaces;
mod objects;
mod payloads;
mod properties;
mod resource_types;
mod rules;
pub mod schemas;
mod service;
mod tags;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::RepoError;

pub use namespaces::{MetadefQuery, NamespaceDetail, NamespacePage};
pub use properties::named_definition;
pub use rules::isotime;
pub use service::MetadefService;

/// A `metadef_namespaces` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    pub id: i64,
    pub namespace: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// `public` or `private`; Glance reads a missing value as `private`.
    pub visibility: Option<String>,
    pub protected: Option<bool>,
    pub owner: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Namespace {
    pub fn is_public(&self) -> bool {
        self.visibility.as_deref() == Some("public")
    }

    pub fn is_protected(&self) -> bool {
        self.protected == Some(true)
    }
}

/// The columns of a namespace a create or a replace writes.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceFields {
    pub namespace: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub visibility: String,
    pub protected: bool,
    pub owner: String,
}

/// A `metadef_objects` row: `required` is stored comma-joined, `properties` as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadefObject {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub required: Vec<String>,
    /// Property name → property definition, as stored.
    pub properties: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// What an object create or replace writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectFields {
    pub name: String,
    pub description: Option<String>,
    pub required: Vec<String>,
    pub properties: Map<String, Value>,
}

/// A `metadef_properties` row: its definition is stored as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub id: i64,
    pub name: String,
    pub schema: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// What a property create or replace writes.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyFields {
    pub name: String,
    pub schema: Value,
}

/// A `metadef_tags` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A `metadef_resource_types` row.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub name: String,
    pub protected: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A `metadef_namespace_resource_types` row, named by its resource type.
#[derive(Debug, Clone, PartialEq)]
pub struct Association {
    pub name: String,
    pub prefix: Option<String>,
    pub properties_target: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// What an association create writes.
#[derive(Debug, Clone, PartialEq)]
pub struct AssociationFields {
    pub name: String,
    pub prefix: Option<String>,
    pub properties_target: Option<String>,
}

/// A namespace and the content a create writes with it, in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNamespace {
    pub fields: NamespaceFields,
    pub associations: Vec<AssociationFields>,
    pub objects: Vec<ObjectFields>,
    pub tags: Vec<String>,
    pub properties: Vec<PropertyFields>,
}

/// Which unique name a write ran into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clash {
    Namespace,
    Object(String),
    Property(String),
    Tag(String),
    Association(String),
}

/// A write, or the unique name it ran into (nothing of it was kept).
pub type Written<T> = Result<T, Clash>;

/// The content of a namespace that `DELETE …/{objects,properties,tags}` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Objects,
    Properties,
    Tags,
}

/// Which namespaces a caller may see (Glance's database-level visibility).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach<'a> {
    /// An administrator: every namespace.
    All,
    /// Public namespaces, and those of this project if any.
    OwnedOrPublic(Option<&'a str>),
}

/// The `metadef_*` tables. Namespaces are addressed by id once found by name; every write is
/// one transaction.
#[async_trait]
pub trait MetadefRepo: Send + Sync + std::fmt::Debug {
    async fn namespace(&self, name: &str) -> Result<Option<Namespace>, RepoError>;
    /// The namespaces within `reach`; only those of `visibility` and associated with one of
    /// `resource_types` when given.
    async fn namespaces(
        &self,
        reach: Reach<'_>,
        visibility: Option<&str>,
        resource_types: Option<&[String]>,
    ) -> Result<Vec<Namespace>, RepoError>;
    async fn create_namespace(
        &self,
        new: &NewNamespace,
        at: DateTime<Utc>,
    ) -> Result<Written<Namespace>, RepoError>;
    async fn update_namespace(
        &self,
        id: i64,
        fields: &NamespaceFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<Namespace>>, RepoError>;
    /// Removes the namespace and everything in it.
    async fn delete_namespace(&self, id: i64) -> Result<(), RepoError>;
    async fn delete_content(&self, id: i64, content: Content) -> Result<(), RepoError>;

    async fn objects(&self, namespace: i64) -> Result<Vec<MetadefObject>, RepoError>;
    async fn object(&self, namespace: i64, name: &str) -> Result<Option<MetadefObject>, RepoError>;
    async fn create_object(
        &self,
        namespace: i64,
        fields: &ObjectFields,
        at: DateTime<Utc>,
    ) -> Result<Written<MetadefObject>, RepoError>;
    async fn update_object(
        &self,
        id: i64,
        fields: &ObjectFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<MetadefObject>>, RepoError>;
    async fn delete_object(&self, id: i64) -> Result<(), RepoError>;

    async fn properties(&self, namespace: i64) -> Result<Vec<Property>, RepoError>;
    async fn property(&self, namespace: i64, name: &str) -> Result<Option<Property>, RepoError>;
    async fn create_property(
        &self,
        namespace: i64,
        fields: &PropertyFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Property>, RepoError>;
    async fn update_property(
        &self,
        id: i64,
        fields: &PropertyFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<Property>>, RepoError>;
    async fn delete_property(&self, id: i64) -> Result<(), RepoError>;

    async fn tags(&self, namespace: i64) -> Result<Vec<Tag>, RepoError>;
    async fn tag(&self, namespace: i64, name: &str) -> Result<Option<Tag>, RepoError>;
    async fn create_tag(
        &self,
        namespace: i64,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Written<Tag>, RepoError>;
    /// Adds `names`, after removing every tag of the namespace unless `append`.
    async fn create_tags(
        &self,
        namespace: i64,
        names: &[String],
        append: bool,
        at: DateTime<Utc>,
    ) -> Result<Written<Vec<Tag>>, RepoError>;
    async fn rename_tag(
        &self,
        id: i64,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<Written<Option<Tag>>, RepoError>;
    async fn delete_tag(&self, id: i64) -> Result<(), RepoError>;

    async fn resource_types(&self) -> Result<Vec<ResourceType>, RepoError>;
    async fn associations(&self, namespace: i64) -> Result<Vec<Association>, RepoError>;
    /// Associates the resource type, creating it first when it does not exist.
    async fn associate(
        &self,
        namespace: i64,
        fields: &AssociationFields,
        at: DateTime<Utc>,
    ) -> Result<Written<Association>, RepoError>;
    /// False when the namespace has no association with that resource type.
    async fn dissociate(&self, namespace: i64, resource_type: &str) -> Result<bool, RepoError>;
}
