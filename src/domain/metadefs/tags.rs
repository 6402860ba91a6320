//! Tags of a namespace: list (sorted and paged as Glance pages them), create one, create
//! many (replacing the namespace's tags unless appended), rename and delete.

use std::cmp::Ordering;

use serde_json::{json, Value};

use super::namespaces::clash_error;
use super::objects::check_list_query;
use super::payloads;
use super::rules::{self, rule, Miss};
use super::schemas::{refuse_read_only, validate};
use super::{bodies, MetadefQuery, MetadefService, Namespace, Tag};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::RequestContext;

const READ_ONLY: &[&str] = &["created_at", "updated_at"];
const SORT_KEYS: &[&str] = &["name", "created_at", "updated_at", "id"];

fn tag_not_found(name: &str) -> DomainError {
    DomainError::not_found(format!("Could not find metadata tag {name}"))
}

fn sort_value(tag: &Tag, key: &str) -> Option<String> {
    match key {
        "name" => Some(tag.name.clone()),
        "created_at" => Some(tag.created_at.format("%Y%m%d%H%M%S%.f").to_string()),
        "updated_at" => tag
            .updated_at
            .map(|t| t.format("%Y%m%d%H%M%S%.f").to_string()),
        _ => Some(format!("{:020}", tag.id)),
    }
}

fn compare(a: &Tag, b: &Tag, key: &str) -> Ordering {
    [key, "created_at", "id"]
        .iter()
        .map(|k| sort_value(a, k).cmp(&sort_value(b, k)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// Glance's default order of a namespace's tags: newest first.
pub(super) fn newest_first(tags: &mut [Tag]) {
    tags.sort_by(|a, b| compare(b, a, "created_at"));
}

impl MetadefService {
    async fn stored_tag(&self, ns: &Namespace, name: &str) -> DomainResult<Tag> {
        crate::domain::image_rules::check_storable("tag", name)?;
        self.repo()
            .tag(ns.id, name)
            .await?
            .ok_or_else(|| tag_not_found(name))
    }

    pub async fn list_tags(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        query: &MetadefQuery,
    ) -> DomainResult<Vec<Tag>> {
        check_list_query(query, true)?;
        let sort_key = query.sort_key.as_deref().unwrap_or("created_at");
        if !SORT_KEYS.contains(&sort_key) {
            return Err(DomainError::bad_request(format!(
                "Invalid sort key: {sort_key}"
            )));
        }
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::GET_TAGS, Some(&ns))?;
        let marker = match query.marker.as_deref().filter(|m| !m.is_empty()) {
            Some(name) => Some(self.stored_tag(&ns, name).await?),
            None => None,
        };
        let descending = query.sort_dir.as_deref() != Some("asc");
        let directed = |a: &Tag, b: &Tag| {
            let order = compare(a, b, sort_key);
            if descending {
                order.reverse()
            } else {
                order
            }
        };
        let mut tags = self.repo().tags(ns.id).await?;
        tags.sort_by(directed);
        if let Some(marker) = &marker {
            tags.retain(|tag| directed(tag, marker) == Ordering::Greater);
        }
        // Glance pages by any limit given, 0 included (an empty page).
        let limit = query
            .limit
            .as_deref()
            .filter(|l| !l.is_empty())
            .and_then(|l| l.trim().parse::<usize>().ok());
        if let Some(limit) = limit {
            tags.truncate(limit);
        }
        Ok(tags)
    }

    pub async fn show_tag(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        name: &str,
    ) -> DomainResult<Tag> {
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::GET_TAG, Some(&ns))?;
        self.stored_tag(&ns, name).await
    }

    /// `POST …/tags/{name}`: the namespace is looked up before the name is checked.
    pub async fn create_tag(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        name: &str,
    ) -> DomainResult<Tag> {
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        validate(&self.schemas().tag, &json!({"name": name}))?;
        self.enforce(ctx, rule::ADD_TAG, Some(&ns))?;
        let created = self
            .repo()
            .create_tag(ns.id, name, Self::now())
            .await?
            .map_err(|clash| clash_error(&clash, &ns.namespace))?;
        self.publish(
            ctx,
            "metadef_tag.create",
            payloads::tag(&ns.namespace, &created, &created.name),
        );
        Ok(created)
    }

    /// `POST …/tags`: `{"tags": [{"name": …}, …]}`; without `append`, the namespace's tags
    /// are replaced by these (an empty list changes nothing).
    pub async fn create_tags(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        body: &Value,
        append: bool,
    ) -> DomainResult<Vec<Tag>> {
        bodies::require_object(body, "tags")?;
        refuse_read_only(body, READ_ONLY)?;
        validate(&self.schemas().tag_list, body)?;
        let names = bodies::tag_names(body.get("tags"), "tags")?;
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::ADD_TAGS, Some(&ns))?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(repeated) = rules::first_repeated(names.iter().map(String::as_str)) {
            return Err(rules::duplicate_tag(repeated, &ns.namespace));
        }
        let created = self
            .repo()
            .create_tags(ns.id, &names, append, Self::now())
            .await?
            .map_err(|clash| clash_error(&clash, &ns.namespace))?;
        for tag in &created {
            self.publish(
                ctx,
                "metadef_tag.create",
                payloads::tag(&ns.namespace, tag, &tag.name),
            );
        }
        Ok(created)
    }

    pub async fn rename_tag(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        name: &str,
        body: &Value,
    ) -> DomainResult<Tag> {
        bodies::require_object(body, "tag")?;
        refuse_read_only(body, READ_ONLY)?;
        validate(&self.schemas().tag, body)?;
        let new_name = body["name"].as_str().unwrap_or_default().to_owned();
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::MODIFY_TAG, Some(&ns))?;
        let old = self.stored_tag(&ns, name).await?;
        let renamed = match self
            .repo()
            .rename_tag(old.id, &new_name, Self::now())
            .await?
        {
            Ok(Some(renamed)) => renamed,
            Ok(None) => return Err(tag_not_found(name)),
            Err(_) => return Err(rules::duplicate_tag(&new_name, &ns.namespace)),
        };
        self.publish(
            ctx,
            "metadef_tag.update",
            payloads::tag(&ns.namespace, &renamed, &old.name),
        );
        Ok(renamed)
    }

    pub async fn delete_tag(
        &self,
        ctx: &RequestContext,
        namespace: &str,
        name: &str,
    ) -> DomainResult<()> {
        let ns = self.find(ctx, namespace, Miss::Short).await?;
        self.enforce(ctx, rule::DELETE_TAG, Some(&ns))?;
        let tag = self.stored_tag(&ns, name).await?;
        if ns.is_protected() {
            return Err(rules::protected("tag", &tag.name));
        }
        self.repo().delete_tag(tag.id).await?;
        self.publish(
            ctx,
            "metadef_tag.delete",
            payloads::deleted(payloads::tag(&ns.namespace, &tag, &tag.name)),
        );
        Ok(())
    }
}
