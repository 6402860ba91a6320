//! Objects of a namespace: list, create, show, replace and delete, each property of an
//! object's definition checked as a property is.

use serde_json::Value;

use super::bodies;
use super::namespaces::clash_error;
use super::payloads;
use super::rules::{self, rule, Miss};
use super::schemas::{refuse_read_only, validate};
use super::{MetadefObject, MetadefQuery, MetadefService, Namespace};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::RequestContext;

const READ_ONLY: &[&str] = &["self", "schema", "created_at", "updated_at"];

fn object_not_found(name: &str) -> DomainError {
    DomainError::not_found(format!("Could not find metadata object {name}"))
}

/// The paging parameters Glance checks on lists it then returns whole (objects, and tags'
/// `sort_dir` and `visibility`): `zero_limit_ok` where a limit of 0 means none.
pub(super) fn check_list_query(query: &MetadefQuery, zero_limit_ok: bool) -> DomainResult<()> {
    let sort_dir = query.sort_dir.as_deref().unwrap_or("desc");
    if !matches!(sort_dir, "asc" | "desc") {
        return Err(DomainError::bad_request(format!(
            "Invalid sort direction: {sort_dir}"
        )));
    }
    if let Some(visibility) = query.visibility.as_deref().filter(|v| !v.is_empty()) {
        if !matches!(visibility, "public" | "private" | "shared") {
            return Err(DomainError::bad_request(format!(
                "Invalid visibility value: {visibility}"
            )));
        }
    }
    if let Some(limit) = query.limit.as_deref().filter(|l| !l.is_empty()) {
        let limit: i64 = limit
            .trim()
            .parse()
            .map_err(|_| DomainError::bad_request("limit param must be an integer"))?;
        if limit < 0 || (limit == 0 && !zero_limit_ok) {
            return Err(DomainError::bad_request("limit param must be positive"));
        }
    }
    Ok(())
}

impl MetadefService {
    /// An object's body: the object document, and each of its properties as a property.
    fn checked_object_body(&self, body: &Value, with_properties: bool) -> DomainResult<()> {
        bodies::require_object(body, "object")?;
        refuse_read_only(body, READ_ONLY)?;
        validate(&self.schemas().object, body)?;
        if with_properties {
            if let Some(properties) = body.get("properties").and_then(Value::as_object) {
                for definition in properties.values() {
                    validate(&self.schemas().object_property, definition)?;
                }
            }
        }
        Ok(())
    }

    async fn visible_object(&self, ns: &Namespace, name: &str) -> DomainResult<MetadefObject> {
        crate::domain::image_rules::check_storable("object", name)?;
        self.repo()
            .object(ns.id, name)
            .await?
            .ok_or_else(|| object_not_found(name))
    }

    pub async fn list_objects(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        query: &MetadefQuery,
    ) -> DomainResult<Vec<MetadefObject>> {
        check_list_query(query, false)?;
        let ns = self.find(ctx, namespace, Miss::Database).await?;
        self.enforce(ctx, rule::GET_OBJECTS, Some(&ns))?;
        if !self.allowed(ctx, rule::GET_OBJECT, Some(&ns)) {
            return Ok(Vec::new());
        }
        Ok(self.repo().objects(ns.id).await?)
    }

    pub async fn create_object(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        body: &Value,
    ) -> DomainResult<MetadefObject> {
        self.checked_object_body(body, true)?;
        let fields = bodies::object_fields(body, "object")?;
        let ns = self.find(ctx, namespace, Miss::Database).await?;
        self.enforce(ctx, rule::ADD_OBJECT, Some(&ns))?;
        let created = self
            .repo()
            .create_object(ns.id, &fields, Self::now())
            .await?
            .map_err(|clash| clash_error(&clash, &ns.namespace))?;
        self.publish(
            ctx,
            "metadef_object.create",
            payloads::object(&ns.namespace, &created, &created.name),
        );
        Ok(created)
    }

    pub async fn show_object(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        name: &str,
    ) -> DomainResult<MetadefObject> {
        let ns = self.find(ctx, namespace, Miss::Database).await?;
        self.enforce(ctx, rule::GET_OBJECT, Some(&ns))?;
        self.visible_object(&ns, name).await
    }

    pub async fn replace_object(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        name: &str,
        body: &Value,
    ) -> DomainResult<MetadefObject> {
        self.checked_object_body(body, false)?;
        let fields = bodies::object_fields(body, "object")?;
        let ns = self.find(ctx, namespace, Miss::Database).await?;
        self.enforce(ctx, rule::MODIFY_OBJECT, Some(&ns))?;
        let old = self.visible_object(&ns, name).await?;
        let updated = match self
            .repo()
            .update_object(old.id, &fields, Self::now())
            .await?
        {
            Ok(Some(updated)) => updated,
            Ok(None) => return Err(object_not_found(name)),
            Err(_) => {
                return Err(rules::duplicate_on_update(
                    "object",
                    &fields.name,
                    &ns.namespace,
                ))
            }
        };
        self.publish(
            ctx,
            "metadef_object.update",
            payloads::object(&ns.namespace, &updated, &old.name),
        );
        Ok(updated)
    }

    pub async fn delete_object(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        name: &str,
    ) -> DomainResult<()> {
        let ns = self.find(ctx, namespace, Miss::Database).await?;
        self.enforce(ctx, rule::DELETE_OBJECT, Some(&ns))?;
        let object = self.visible_object(&ns, name).await?;
        if ns.is_protected() {
            return Err(rules::protected("object", &object.name));
        }
        self.repo().delete_object(object.id).await?;
        self.publish(
            ctx,
            "metadef_object.delete",
            payloads::deleted(payloads::object(&ns.namespace, &object, &object.name)),
        );
        Ok(())
    }
}
