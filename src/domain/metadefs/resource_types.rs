//! Resource types: the catalog's list, and a namespace's associations with them (list,
//! create — which creates an unknown resource type — and delete).

use serde_json::Value;

use super::bodies;
use super::namespaces::clash_error;
use super::payloads;
use super::rules::{self, rule, Miss};
use super::schemas::{refuse_read_only, validate};
use super::{Association, MetadefService, ResourceType};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::RequestContext;

const READ_ONLY: &[&str] = &["created_at", "updated_at"];

impl MetadefService {
    pub async fn list_resource_types(
        &self,
        ctx: &RequestContext,
    ) -> DomainResult<Vec<ResourceType>> {
        self.enforce(ctx, rule::LIST_RESOURCE_TYPES, None)?;
        Ok(self.repo().resource_types().await?)
    }

    pub async fn list_associations(
        &self,
        ctx: &RequestContext,
        namespace: &str,
    ) -> DomainResult<Vec<Association>> {
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::LIST_RESOURCE_TYPES, Some(&ns))?;
        if !self.allowed(ctx, rule::GET_RESOURCE_TYPE, Some(&ns)) {
            return Ok(Vec::new());
        }
        Ok(self.repo().associations(ns.id).await?)
    }

    pub async fn create_association(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        body: &Value,
    ) -> DomainResult<Association> {
        bodies::require_object(body, "resource_type_association")?;
        refuse_read_only(body, READ_ONLY)?;
        validate(&self.schemas().resource_type, body)?;
        let fields = bodies::association_fields(body, "resource_type_association")?;
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::ADD_ASSOCIATION, Some(&ns))?;
        let created = self
            .repo()
            .associate(ns.id, &fields, Self::now())
            .await?
            .map_err(|clash| clash_error(&clash, &ns.namespace))?;
        self.publish(
            ctx,
            "metadef_resource_type.create",
            payloads::association(&ns.namespace, &created),
        );
        Ok(created)
    }

    pub async fn delete_association(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        resource_type: &str,
    ) -> DomainResult<()> {
        crate::domain::image_rules::check_storable("resource_type", resource_type)?;
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::REMOVE_ASSOCIATION, Some(&ns))?;
        let not_found = || {
            DomainError::not_found(format!(
                "Failed to find resource type {resource_type} to delete"
            ))
        };
        let association = self
            .repo()
            .associations(ns.id)
            .await?
            .into_iter()
            .find(|a| a.name == resource_type)
            .ok_or_else(not_found)?;
        if ns.is_protected() {
            return Err(rules::protected(
                "resource-type-association",
                &association.name,
            ));
        }
        if !self.repo().dissociate(ns.id, resource_type).await? {
            return Err(not_found());
        }
        self.publish(
            ctx,
            "metadef_resource_type.delete",
            payloads::deleted(payloads::association(&ns.namespace, &association)),
        );
        Ok(())
    }
}
