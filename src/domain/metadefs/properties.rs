//! Properties of a namespace: list, create, show (by a resource type's prefixed name too),
//! replace and delete. A property's definition is checked against the property document
//! and stored as Glance's model keeps it.

use serde_json::Value;

use super::bodies;
use super::namespaces::clash_error;
use super::payloads;
use super::rules::{self, rule, Miss};
use super::schemas::{property_type, refuse_read_only, validate};
use super::{MetadefService, Namespace, Property};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::RequestContext;

const READ_ONLY: &[&str] = &["created_at", "updated_at"];

fn property_not_found(name: &str) -> DomainError {
    DomainError::not_found(format!("Could not find property {name}"))
}

/// A property as a response shows it alone: its definition, with its name.
pub fn named_definition(property: &Property) -> Value {
    let mut definition = property_type(&property.schema);
    definition["name"] = Value::String(property.name.clone());
    definition
}

impl MetadefService {
    fn checked_property_body(&self, body: &Value) -> DomainResult<()> {
        bodies::require_object(body, "property")?;
        refuse_read_only(body, READ_ONLY)?;
        validate(&self.schemas().property, body)
    }

    async fn stored_property(&self, ns: &Namespace, name: &str) -> DomainResult<Property> {
        crate::domain::image_rules::check_storable("property", name)?;
        self.repo()
            .property(ns.id, name)
            .await?
            .ok_or_else(|| property_not_found(name))
    }

    pub async fn list_properties(
        &self,
        ctx: &RequestContext,
        namespace: &str,
    ) -> DomainResult<Vec<Property>> {
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::GET_PROPERTIES, Some(&ns))?;
        Ok(self.repo().properties(ns.id).await?)
    }

    /// `GET …/properties/{name}`; with `resource_type`, `name` carries that association's
    /// prefix, which is taken off.
    pub async fn show_property(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        name: &str,
        resource_type: Option<&str>,
    ) -> DomainResult<Property> {
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::GET_PROPERTY, Some(&ns))?;
        let mut name = name;
        if let Some(resource_type) = resource_type.filter(|r| !r.is_empty()) {
            self.enforce(ctx, rule::GET_RESOURCE_TYPE, Some(&ns))?;
            let known = self
                .repo()
                .resource_types()
                .await?
                .iter()
                .any(|r| r.name == resource_type);
            if !known {
                return Err(DomainError::not_found(format!(
                    "The metadata definition resource-type with name={resource_type}, was not \
                     found."
                )));
            }
            let association = self
                .repo()
                .associations(ns.id)
                .await?
                .into_iter()
                .find(|a| a.name == resource_type)
                .ok_or_else(|| {
                    DomainError::not_found(format!(
                        "The metadata definition resource-type association of \
                         resource-type={resource_type} to namespace={}, was not found.",
                        ns.namespace
                    ))
                })?;
            let prefix = association.prefix.unwrap_or_default();
            match name
                .strip_prefix(prefix.as_str())
                .filter(|_| !prefix.is_empty())
            {
                Some(rest) => name = rest,
                None => {
                    let shown = if prefix.is_empty() { "None" } else { &prefix };
                    return Err(DomainError::not_found(format!(
                        "Property {name} does not start with the expected resource type \
                         association prefix of '{shown}'."
                    )));
                }
            }
        }
        self.stored_property(&ns, name).await
    }

    pub async fn create_property(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        body: &Value,
    ) -> DomainResult<Property> {
        self.checked_property_body(body)?;
        let name = body["name"].as_str().unwrap_or_default();
        let fields = bodies::property_fields(name, body);
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::ADD_PROPERTY, Some(&ns))?;
        let created = self
            .repo()
            .create_property(ns.id, &fields, Self::now())
            .await?
            .map_err(|clash| clash_error(&clash, &ns.namespace))?;
        self.publish(
            ctx,
            "metadef_property.create",
            payloads::property(&ns.namespace, &created, &created.name),
        );
        Ok(created)
    }

    pub async fn replace_property(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        name: &str,
        body: &Value,
    ) -> DomainResult<Property> {
        self.checked_property_body(body)?;
        let new_name = body["name"].as_str().unwrap_or_default();
        let fields = bodies::property_fields(new_name, body);
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::MODIFY_PROPERTY, Some(&ns))?;
        let old = self.stored_property(&ns, name).await?;
        let updated = match self
            .repo()
            .update_property(old.id, &fields, Self::now())
            .await?
        {
            Ok(Some(updated)) => updated,
            Ok(None) => return Err(property_not_found(name)),
            Err(_) => {
                return Err(rules::duplicate_on_update(
                    "property",
                    new_name,
                    &ns.namespace,
                ))
            }
        };
        self.publish(
            ctx,
            "metadef_property.update",
            payloads::property(&ns.namespace, &updated, &old.name),
        );
        Ok(updated)
    }

    pub async fn delete_property(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        name: &str,
    ) -> DomainResult<()> {
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::REMOVE_PROPERTY, Some(&ns))?;
        let property = self.stored_property(&ns, name).await?;
        if ns.is_protected() {
            return Err(rules::protected("property", &property.name));
        }
        self.repo().delete_property(property.id).await?;
        self.publish(
            ctx,
            "metadef_property.delete",
            payloads::deleted(payloads::property(&ns.namespace, &property, &property.name)),
        );
        Ok(())
    }
}
