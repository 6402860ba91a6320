//! Namespaces: list (visibility, resource types, sort and markers as Glance pages them),
//! create with their content, show with it, replace, delete, and deleting all of a
//! namespace's objects, properties or tags.

use std::cmp::Ordering;

use serde_json::Value;

use super::bodies::{self, namespace_fields};
use super::payloads;
use super::rules::{self, rule, Miss};
use super::schemas::{refuse_read_only, validate};
use super::{
    Association, Clash, Content, MetadefObject, MetadefService, Namespace, NewNamespace, Property,
    Tag,
};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::RequestContext;

const READ_ONLY: &[&str] = &["self", "schema", "created_at", "updated_at"];
const SORT_KEYS: &[&str] = &[
    "namespace",
    "display_name",
    "description",
    "visibility",
    "protected",
    "owner",
    "created_at",
    "updated_at",
    "id",
];

/// The parameters of Glance's metadef lists (`resource_types` is the namespaces list's).
#[derive(Debug, Clone, Default)]
pub struct MetadefQuery {
    pub limit: Option<String>,
    pub marker: Option<String>,
    pub sort_key: Option<String>,
    pub sort_dir: Option<String>,
    pub visibility: Option<String>,
    pub resource_types: Option<String>,
}

/// A namespace and what a response shows of its content; `None` leaves a key out.
#[derive(Debug, Clone)]
pub struct NamespaceDetail {
    pub namespace: Namespace,
    pub associations: Option<Vec<Association>>,
    pub objects: Option<Vec<MetadefObject>>,
    pub properties: Option<Vec<Property>>,
    pub tags: Option<Vec<Tag>>,
    /// The content was written by this request: Glance echoes what was sent, without
    /// timestamps or links.
    pub echoed: bool,
}

impl NamespaceDetail {
    fn bare(namespace: Namespace) -> NamespaceDetail {
        NamespaceDetail {
            namespace,
            associations: None,
            objects: None,
            properties: None,
            tags: None,
            echoed: false,
        }
    }
}

/// One page, and the marker of the next when the page is full.
#[derive(Debug)]
pub struct NamespacePage {
    pub namespaces: Vec<NamespaceDetail>,
    pub next: Option<String>,
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// The value of a namespace's sort column; `None` sorts first, as NULL does on MySQL and
/// SQLite.
fn sort_value(ns: &Namespace, key: &str) -> Option<String> {
    match key {
        "namespace" => Some(ns.namespace.clone()),
        "display_name" => ns.display_name.clone(),
        "description" => ns.description.clone(),
        "visibility" => ns.visibility.clone(),
        "protected" => ns.protected.map(|p| u8::from(p).to_string()),
        "owner" => Some(ns.owner.clone()),
        "created_at" => Some(ns.created_at.format("%Y%m%d%H%M%S%.f").to_string()),
        "updated_at" => ns
            .updated_at
            .map(|t| t.format("%Y%m%d%H%M%S%.f").to_string()),
        _ => Some(format!("{:020}", ns.id)),
    }
}

/// Glance's sort: the key, then `created_at`, then `id`, all in one direction.
fn compare(a: &Namespace, b: &Namespace, key: &str) -> Ordering {
    [key, "created_at", "id"]
        .iter()
        .map(|k| sort_value(a, k).cmp(&sort_value(b, k)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

impl MetadefService {
    pub async fn list_namespaces(
        &self,
        ctx: &RequestContext,
        query: &MetadefQuery,
    ) -> DomainResult<NamespacePage> {
        let sort_dir = query.sort_dir.as_deref().unwrap_or("desc");
        if !matches!(sort_dir, "asc" | "desc") {
            return Err(DomainError::bad_request(format!(
                "Invalid sort direction: {sort_dir}"
            )));
        }
        if let Some(visibility) = query.visibility.as_deref().filter(|v| !v.is_empty()) {
            if !matches!(visibility, "public" | "private") {
                return Err(DomainError::bad_request(format!(
                    "Invalid visibility value: {visibility}"
                )));
            }
        }
        let page = self.page();
        let limit = match query.limit.as_deref() {
            None => i64::from(page.default),
            Some(text) => text
                .trim()
                .parse::<i64>()
                .map_err(|_| DomainError::bad_request("limit param must be an integer"))?,
        }
        .min(i64::from(page.max));
        if limit < 0 {
            return Err(DomainError::bad_request("limit param must be positive"));
        }
        let sort_key = query.sort_key.as_deref().unwrap_or("created_at");
        if !SORT_KEYS.contains(&sort_key) {
            return Err(DomainError::bad_request(format!(
                "Invalid sort key: {sort_key}"
            )));
        }
        for (field, text) in [
            ("marker", &query.marker),
            ("resource_types", &query.resource_types),
        ] {
            if let Some(text) = text {
                crate::domain::image_rules::check_storable(field, text)?;
            }
        }
        self.enforce(ctx, rule::GET_NAMESPACES, None)?;
        self.enforce(ctx, rule::LIST_RESOURCE_TYPES, None)?;
        let marker = match query.marker.as_deref() {
            None => None,
            Some(name) => match self.repo().namespace(name).await? {
                None => return Err(Miss::Database.missing(name)),
                Some(ns) if !self.visible(ctx, &ns) => {
                    return Err(DomainError::forbidden(format!(
                        "Forbidding request, metadata definition namespace={name} is not visible."
                    )))
                }
                Some(ns) => Some(ns),
            },
        };
        let resource_types: Option<Vec<String>> = query
            .resource_types
            .as_deref()
            .map(|list| list.split(',').map(str::to_owned).collect());
        let visibility = query.visibility.as_deref().filter(|v| !v.is_empty());
        let mut found = self
            .repo()
            .namespaces(self.reach(ctx), visibility, resource_types.as_deref())
            .await?;
        let descending = sort_dir == "desc";
        let directed = |a: &Namespace, b: &Namespace| {
            let order = compare(a, b, sort_key);
            if descending {
                order.reverse()
            } else {
                order
            }
        };
        found.sort_by(directed);
        if let Some(marker) = &marker {
            found.retain(|ns| directed(ns, marker) == Ordering::Greater);
        }
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let shown: Vec<Namespace> = found
            .into_iter()
            .filter(|ns| self.allowed(ctx, rule::GET_NAMESPACE, Some(ns)))
            .collect();
        let next = match shown.last() {
            Some(last) if i64::try_from(shown.len()).ok() == Some(limit) => {
                Some(last.namespace.clone())
            }
            _ => None,
        };
        let mut namespaces = Vec::with_capacity(shown.len());
        for ns in shown {
            let associations = non_empty(self.repo().associations(ns.id).await?);
            namespaces.push(NamespaceDetail {
                associations,
                ..NamespaceDetail::bare(ns)
            });
        }
        Ok(NamespacePage { namespaces, next })
    }

    pub async fn create_namespace(
        &self,
        ctx: &RequestContext,
        body: &Value,
    ) -> DomainResult<NamespaceDetail> {
        bodies::require_object(body, "namespace")?;
        refuse_read_only(body, READ_ONLY)?;
        validate(&self.schemas().namespace, body)?;
        let new = NewNamespace {
            fields: namespace_fields(ctx, body),
            associations: body
                .get("resource_type_associations")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| bodies::association_fields(item, "namespace"))
                        .collect::<DomainResult<Vec<_>>>()
                })
                .transpose()?
                .unwrap_or_default(),
            objects: body
                .get("objects")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| bodies::object_fields(item, "namespace"))
                        .collect::<DomainResult<Vec<_>>>()
                })
                .transpose()?
                .unwrap_or_default(),
            tags: bodies::tag_names(body.get("tags"), "namespace")?,
            properties: bodies::property_map(body.get("properties"))
                .iter()
                .map(|(name, definition)| bodies::property_fields(name, definition))
                .collect(),
        };
        self.enforce(ctx, rule::ADD_NAMESPACE, None)?;
        let checks = [
            (!new.associations.is_empty(), rule::ADD_ASSOCIATION),
            (!new.objects.is_empty(), rule::ADD_OBJECT),
            (!new.properties.is_empty(), rule::ADD_PROPERTY),
            (!new.tags.is_empty(), rule::ADD_TAG),
        ];
        for (_, name) in checks.iter().filter(|(needed, _)| *needed) {
            self.enforce(ctx, name, None)?;
        }
        let name = new.fields.namespace.clone();
        if let Some(repeated) = rules::first_repeated(new.objects.iter().map(|o| o.name.as_str())) {
            return Err(rules::duplicate_object(repeated, &name));
        }
        if let Some(repeated) = rules::first_repeated(new.tags.iter().map(String::as_str)) {
            return Err(rules::duplicate_tag(repeated, &name));
        }
        if let Some(repeated) =
            rules::first_repeated(new.associations.iter().map(|a| a.name.as_str()))
        {
            return Err(rules::duplicate_association(repeated, &name));
        }
        let at = Self::now();
        let created = match self.repo().create_namespace(&new, at).await? {
            Ok(created) => created,
            Err(clash) => return Err(clash_error(&clash, &name)),
        };
        self.announce_creation(ctx, &created, &new, at);
        let associations: Vec<Association> = new
            .associations
            .iter()
            .map(|a| Association {
                name: a.name.clone(),
                prefix: a.prefix.clone(),
                properties_target: a.properties_target.clone(),
                created_at: at,
                updated_at: Some(at),
            })
            .collect();
        let objects: Vec<MetadefObject> = new
            .objects
            .iter()
            .map(|o| MetadefObject {
                id: 0,
                name: o.name.clone(),
                description: o.description.clone(),
                required: o.required.clone(),
                properties: o.properties.clone(),
                created_at: at,
                updated_at: Some(at),
            })
            .collect();
        let properties: Vec<Property> = new
            .properties
            .iter()
            .map(|p| Property {
                id: 0,
                name: p.name.clone(),
                schema: p.schema.clone(),
                created_at: at,
                updated_at: Some(at),
            })
            .collect();
        let tags: Vec<Tag> = new
            .tags
            .iter()
            .map(|name| Tag {
                id: 0,
                name: name.clone(),
                created_at: at,
                updated_at: Some(at),
            })
            .collect();
        let given = |key: &str| body.get(key).is_some();
        Ok(NamespaceDetail {
            namespace: created,
            associations: given("resource_type_associations").then_some(associations),
            objects: given("objects").then_some(objects),
            properties: given("properties").then_some(properties),
            tags: given("tags").then_some(tags),
            echoed: true,
        })
    }

    /// Glance's events for a namespace created with content: the namespace, then its
    /// associations, objects, tags and properties.
    fn announce_creation(
        &self,
        ctx: &RequestContext,
        created: &Namespace,
        new: &NewNamespace,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let name = created.namespace.as_str();
        self.publish(
            ctx,
            "metadef_namespace.create",
            payloads::namespace(created, name),
        );
        for association in &new.associations {
            let record = Association {
                name: association.name.clone(),
                prefix: association.prefix.clone(),
                properties_target: association.properties_target.clone(),
                created_at: at,
                updated_at: Some(at),
            };
            self.publish(
                ctx,
                "metadef_resource_type.create",
                payloads::association(name, &record),
            );
        }
        for object in &new.objects {
            let record = MetadefObject {
                id: 0,
                name: object.name.clone(),
                description: object.description.clone(),
                required: object.required.clone(),
                properties: object.properties.clone(),
                created_at: at,
                updated_at: Some(at),
            };
            self.publish(
                ctx,
                "metadef_object.create",
                payloads::object(name, &record, &object.name),
            );
        }
        for tag in &new.tags {
            let record = Tag {
                id: 0,
                name: tag.clone(),
                created_at: at,
                updated_at: Some(at),
            };
            self.publish(ctx, "metadef_tag.create", payloads::tag(name, &record, tag));
        }
        for property in &new.properties {
            let record = Property {
                id: 0,
                name: property.name.clone(),
                schema: property.schema.clone(),
                created_at: at,
                updated_at: Some(at),
            };
            self.publish(
                ctx,
                "metadef_property.create",
                payloads::property(name, &record, &property.name),
            );
        }
    }

    /// `GET …/namespaces/{name}`, with property names prefixed for `resource_type`.
    pub async fn show_namespace(
        &self,
        ctx: &RequestContext,
        name: &str,
        resource_type: Option<&str>,
    ) -> DomainResult<NamespaceDetail> {
        let ns = self.find(ctx, name, Miss::Show).await?;
        self.enforce(ctx, rule::GET_NAMESPACE, Some(&ns))?;
        for name in [
            rule::LIST_RESOURCE_TYPES,
            rule::GET_OBJECTS,
            rule::GET_PROPERTIES,
            rule::GET_TAGS,
        ] {
            self.enforce(ctx, name, Some(&ns))?;
        }
        let mut objects = self.repo().objects(ns.id).await?;
        let associations = self.repo().associations(ns.id).await?;
        let mut properties = self.repo().properties(ns.id).await?;
        let mut tags = self.repo().tags(ns.id).await?;
        super::tags::newest_first(&mut tags);
        let prefix = resource_type
            .filter(|r| !r.is_empty())
            .and_then(|r| associations.iter().find(|a| a.name == r))
            .and_then(|a| a.prefix.clone())
            .filter(|p| !p.is_empty());
        if let Some(prefix) = prefix {
            for property in &mut properties {
                property.name = format!("{prefix}{}", property.name);
            }
            for object in &mut objects {
                object.properties = std::mem::take(&mut object.properties)
                    .into_iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v))
                    .collect();
                for required in &mut object.required {
                    *required = format!("{prefix}{required}");
                }
            }
        }
        Ok(NamespaceDetail {
            associations: non_empty(associations),
            objects: non_empty(objects),
            properties: non_empty(properties),
            tags: non_empty(tags),
            ..NamespaceDetail::bare(ns)
        })
    }

    /// `PUT …/namespaces/{name}`: the namespace's own fields replaced, defaults as on create.
    pub async fn replace_namespace(
        &self,
        ctx: &RequestContext,
        name: &str,
        body: &Value,
    ) -> DomainResult<NamespaceDetail> {
        bodies::require_object(body, "namespace")?;
        refuse_read_only(body, READ_ONLY)?;
        validate(&self.schemas().namespace, body)?;
        let ns = self.find(ctx, name, Miss::Short).await?;
        self.enforce(ctx, rule::MODIFY_NAMESPACE, Some(&ns))?;
        let fields = namespace_fields(ctx, body);
        let updated = match self
            .repo()
            .update_namespace(ns.id, &fields, Self::now())
            .await?
        {
            Ok(Some(updated)) => updated,
            Ok(None) => return Err(rules::namespace_not_found(name)),
            Err(_) => {
                return Err(DomainError::conflict(format!(
                    "Invalid update. It would result in a duplicate metadata definition \
                     namespace with the same name of {}",
                    fields.namespace
                )))
            }
        };
        self.publish(
            ctx,
            "metadef_namespace.update",
            payloads::namespace(&updated, &ns.namespace),
        );
        Ok(NamespaceDetail::bare(updated))
    }

    pub async fn delete_namespace(&self, ctx: &RequestContext, name: &str) -> DomainResult<()> {
        let ns = self.find(ctx, name, Miss::Short).await?;
        self.enforce(ctx, rule::DELETE_NAMESPACE, Some(&ns))?;
        if ns.is_protected() {
            return Err(rules::protected("namespace", &ns.namespace));
        }
        self.repo().delete_namespace(ns.id).await?;
        self.publish(
            ctx,
            "metadef_namespace.delete",
            payloads::deleted(payloads::namespace(&ns, &ns.namespace)),
        );
        Ok(())
    }

    /// `DELETE …/namespaces/{name}/{objects,properties,tags}`: allowed to whoever may delete
    /// the namespace, and never on a protected one.
    pub async fn delete_content(
        &self,
        ctx: &RequestContext,
        name: &str,
        content: Content,
    ) -> DomainResult<()> {
        let ns = self.find(ctx, name, Miss::Short).await?;
        self.enforce(ctx, rule::DELETE_NAMESPACE, Some(&ns))?;
        if content == Content::Tags {
            self.enforce(ctx, rule::DELETE_TAGS, Some(&ns))?;
        }
        if ns.is_protected() {
            return Err(rules::protected("namespace", &ns.namespace));
        }
        self.repo().delete_content(ns.id, content).await?;
        let event_type = match content {
            Content::Objects => "metadef_namespace.delete_objects",
            Content::Properties => "metadef_namespace.delete_properties",
            Content::Tags => "metadef_namespace.delete_tags",
        };
        self.publish(ctx, event_type, payloads::namespace(&ns, &ns.namespace));
        Ok(())
    }
}

pub(super) fn clash_error(clash: &Clash, namespace: &str) -> DomainError {
    match clash {
        Clash::Namespace => rules::duplicate_namespace(namespace),
        Clash::Object(name) => rules::duplicate_object(name, namespace),
        Clash::Property(name) => rules::duplicate_property(name, namespace),
        Clash::Tag(name) => rules::duplicate_tag(name, namespace),
        Clash::Association(name) => rules::duplicate_association(name, namespace),
    }
}
