//! The image service: every image operation of the API, with Glance's validation, visibility
//! and status rules, over the `ImageRepo` port and the `Policy`.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::context::RequestContext;
use super::error::{DomainError, DomainResult, Refusal, RepoError};
use super::image::{self, Image, ImageId, Visibility};
use super::image_rules::{
    apply_change, check_boot_minimums, check_count, check_storable, check_storable_json,
    invalid_object, is_reserved, is_schema_property, read_only, set_attribute, OUTPUT_ONLY,
};
use super::listing::{ListQuery, PageLimits, Viewer};
use super::patch::{Change, PatchDialect};
use super::policy::{Action, Policy, Target};
use super::protections::PropertyProtections;
use super::repository::{CountLimits, Counted, Created, ImageRepo, SaveOutcome, StoredLocation};
use super::schema::{Schemas, READ_ONLY};
use super::status::ImageStatus;
use crate::quota::{Resource, UnifiedLimits};

mod checks;
mod notify;
mod tags;

/// Per-image limits from `[DEFAULT]` (`-1` in the config means unlimited).
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    pub page: PageLimits,
    pub property_quota: Option<usize>,
    pub tag_quota: Option<usize>,
    /// `image_member_quota`.
    pub member_quota: Option<usize>,
}

/// How many times a conditional write is retried when the image status moved under it.
const SAVE_ATTEMPTS: usize = 5;

#[derive(Debug, Clone)]
pub struct ImageService {
    repo: Arc<dyn ImageRepo>,
    policy: Arc<dyn Policy>,
    schemas: Arc<Schemas>,
    limits: ImageLimits,
    /// Keystone's unified limits, when `use_keystone_limits`.
    unified_limits: Option<Arc<UnifiedLimits>>,
    /// `property_protection_file`'s rules, when set.
    protections: Option<Arc<PropertyProtections>>,
    /// Where Glance's notifications go (`with_events`).
    events: Arc<dyn super::events::EventSink>,
}

/// One page of a listing and the marker of the next page, if the page was full.
#[derive(Debug)]
pub struct ImagePage {
    pub images: Vec<Image>,
    pub next_marker: Option<String>,
}

/// The policy target of `image` for `ctx`: as Glance, the caller's project is the image's
/// `member` when it sees a shared image it does not own.
fn target<'a>(image: &'a Image, ctx: &'a RequestContext) -> Target<'a> {
    let member = (image.visibility == Visibility::Shared && !ctx.is_owner(image.owner.as_deref()))
        .then_some(ctx.project_id.as_deref())
        .flatten();
    Target {
        owner: image.owner.as_deref(),
        visibility: Some(image.visibility),
        member,
    }
}

impl ImageService {
    pub fn new(
        repo: Arc<dyn ImageRepo>,
        policy: Arc<dyn Policy>,
        schemas: Arc<Schemas>,
        limits: ImageLimits,
    ) -> ImageService {
        ImageService {
            repo,
            policy,
            schemas,
            limits,
            unified_limits: None,
            protections: None,
            events: Arc::new(super::events::NoEvents),
        }
    }

    /// Enforces property protections too (`property_protection_file`).
    pub fn with_property_protections(
        mut self,
        rules: Option<Arc<PropertyProtections>>,
    ) -> ImageService {
        self.protections = rules;
        self
    }

    pub(super) fn protections(&self) -> Option<&PropertyProtections> {
        self.protections.as_deref()
    }

    pub(super) fn unified_limits(&self) -> Option<&Arc<UnifiedLimits>> {
        self.unified_limits.as_ref()
    }

    /// Enforces Keystone's unified limits too.
    pub fn with_unified_limits(mut self, limits: Option<Arc<UnifiedLimits>>) -> ImageService {
        self.unified_limits = limits;
        self
    }

    /// Whether the metadata database answers (the health check).
    pub async fn health(&self) -> DomainResult<()> {
        Ok(self.repo.health().await?)
    }

    pub fn schemas(&self) -> &Schemas {
        &self.schemas
    }

    fn authorize(
        &self,
        ctx: &RequestContext,
        action: Action,
        target: &Target<'_>,
    ) -> DomainResult<()> {
        if self.policy.allows(ctx, action, target) {
            Ok(())
        } else {
            Err(DomainError::not_authorized(action.rule_name()))
        }
    }

    pub(super) fn repo(&self) -> &Arc<dyn ImageRepo> {
        &self.repo
    }

    pub(super) fn member_quota(&self) -> Option<usize> {
        self.limits.member_quota
    }

    /// Whether `action` on `image` is allowed to `ctx`, without an error.
    pub(super) fn allowed_on_image(
        &self,
        ctx: &RequestContext,
        action: Action,
        image: &Image,
    ) -> bool {
        self.policy.allows(ctx, action, &target(image, ctx))
    }

    /// `authorize_on`, for the other services of the domain.
    pub(super) fn authorize_on_image(
        &self,
        ctx: &RequestContext,
        action: Action,
        image: &Image,
    ) -> DomainResult<()> {
        self.authorize_on(ctx, action, image)
    }

    /// `action` on an existing image. A refusal is 404 when the caller may not even see the
    /// image (`get_image` refuses too), 403 otherwise: Glance reveals no image this way.
    pub fn authorize_on(
        &self,
        ctx: &RequestContext,
        action: Action,
        image: &Image,
    ) -> DomainResult<()> {
        let target = target(image, ctx);
        if self.policy.allows(ctx, action, &target) {
            return Ok(());
        }
        if action == Action::GetImage || !self.policy.allows(ctx, Action::GetImage, &target) {
            return Err(DomainError::image_not_found(image.id.as_str()));
        }
        Err(DomainError::not_authorized(action.rule_name()))
    }

    /// `action` on no image in particular (the caller's project is the target): listings,
    /// discovery.
    pub fn authorize_global(&self, ctx: &RequestContext, action: Action) -> DomainResult<()> {
        self.authorize(
            ctx,
            action,
            &Target {
                owner: ctx.project_id.as_deref(),
                visibility: None,
                member: None,
            },
        )
    }

    /// `limit_param_default` and `api_limit_max`, which other listings share.
    pub fn page_limits(&self) -> PageLimits {
        self.limits.page
    }

    /// Whether the caller is an administrator by the policy (`context_is_admin`).
    pub fn is_admin(&self, ctx: &RequestContext) -> bool {
        self.policy.is_admin(ctx)
    }

    pub(super) fn policy(&self) -> &Arc<dyn Policy> {
        &self.policy
    }

    /// `POST /v2/images`, checking in Glance's order so that the first failure is the one
    /// Glance would report.
    pub async fn create(
        &self,
        ctx: &RequestContext,
        body: &Map<String, Value>,
    ) -> DomainResult<Image> {
        if let Some(key) = body.keys().find(|k| OUTPUT_ONLY.contains(&k.as_str())) {
            return Err(read_only(key));
        }
        for (key, value) in body {
            check_storable("property name", key)?;
            check_storable_json(key, value)?;
        }
        self.schemas
            .image
            .validate(&Value::Object(body.clone()))
            .map_err(invalid_object)?;
        for key in body.keys().filter(|k| !is_schema_property(k)) {
            if key.chars().count() > 255 {
                return Err(DomainError::bad_request(
                    "Custom property should not be greater than 255 characters.",
                ));
            }
            if is_reserved(key) {
                return Err(DomainError::with_detail(
                    Refusal::Forbidden,
                    format!("Attribute '{key}' is reserved."),
                ));
            }
        }
        self.check_create_protections(ctx, body.keys().filter(|k| !is_schema_property(k)))?;

        let id = match body.get("id").and_then(Value::as_str) {
            Some(id) => ImageId::parse(id)
                .ok_or_else(|| invalid_object(format!("'{id}' is not a valid id")))?,
            None => ImageId::generate(),
        };
        let mut new = Image::new(id, ctx.project_id.clone(), image::now());
        if let Some(owner) = body.get("owner") {
            let owner = owner.as_str().map(str::to_owned);
            if !ctx.is_admin && owner != ctx.project_id {
                return Err(DomainError::with_detail(
                    Refusal::Forbidden,
                    format!(
                        "You are not permitted to create images owned by '{}'",
                        owner.as_deref().unwrap_or("None")
                    ),
                ));
            }
            new.owner = owner;
        }
        self.authorize(ctx, Action::AddImage, &target(&new, ctx))?;
        // image_count_total: read here, counted by the insert's own transaction.
        let count_limit = match (&self.unified_limits, ctx.project_id.as_deref()) {
            (Some(limits), Some(project)) => Some((
                project,
                limits.limit(project, Resource::ImageCountTotal).await?,
            )),
            _ => None,
        };
        for (key, value) in body {
            if key != "id" && key != "owner" {
                set_attribute(&mut new, key, value);
            }
        }
        self.check_visibility_change(ctx, &new, None)?;
        self.check_tag_quota(&new, None)?;
        if let Some(key) = body
            .keys()
            .find(|k| READ_ONLY.contains(&k.as_str()) && *k != "id")
        {
            return Err(read_only(key));
        }
        if body.contains_key("locations") {
            return Err(DomainError::forbidden("Attribute 'locations' is reserved."));
        }
        check_boot_minimums(body)?;
        self.check_property_quota(&new, None)?;

        match self.repo.create(&new, count_limit).await {
            Ok(Created::Created) => {
                self.notify_image(ctx, "image.create", &new);
                Ok(self.readable(ctx, new))
            }
            Ok(Created::OverLimit { count }) => {
                let (project, limit) = count_limit.unwrap_or_default();
                Err(crate::quota::over_limit(
                    project,
                    &[(Resource::ImageCountTotal, limit, count, 1)],
                )
                .into())
            }
            Err(RepoError::Duplicate) => Err(DomainError::conflict(format!(
                "Image ID {} already exists!",
                new.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// An image the caller may see, or 404 (never 403: existence is not revealed).
    pub async fn get(&self, ctx: &RequestContext, id: &str) -> DomainResult<Image> {
        self.get_for(ctx, id, Action::GetImage).await
    }

    /// `GET /v2/images/{id}`: `get`, without the properties the caller may not read.
    pub async fn show(&self, ctx: &RequestContext, id: &str) -> DomainResult<Image> {
        Ok(self.readable(ctx, self.get(ctx, id).await?))
    }

    /// An image the caller may see (no other rule asked).
    pub async fn get_visible(&self, ctx: &RequestContext, id: &str) -> DomainResult<Image> {
        let not_found = || DomainError::image_not_found(id);
        let image_id = ImageId::parse(id).ok_or_else(not_found)?;
        let image = self.repo.get(&image_id).await?.ok_or_else(not_found)?;
        if self.is_visible(ctx, &image).await? {
            Ok(image)
        } else {
            Err(not_found())
        }
    }

    /// Glance's `is_image_visible`: admins see all; others see their own, ownerless, public and
    /// community images, and shared images they are a member of (in any member status).
    async fn is_visible(&self, ctx: &RequestContext, image: &Image) -> DomainResult<bool> {
        if ctx.is_admin {
            return Ok(true);
        }
        // A caller with no project (system or domain scope) may use no image, so it sees none:
        // anything it addresses by id is not found, as with Glance.
        if ctx.project_id.is_none() {
            return Ok(false);
        }
        if image.owner.is_none() || ctx.is_owner(image.owner.as_deref()) {
            return Ok(true);
        }
        Ok(match image.visibility {
            Visibility::Public | Visibility::Community => true,
            Visibility::Private => false,
            Visibility::Shared => match &ctx.project_id {
                Some(project) => self.repo.is_member(&image.id, project).await?,
                None => false,
            },
        })
    }

    /// `GET /v2/images`.
    pub async fn list(
        &self,
        ctx: &RequestContext,
        params: &[(String, String)],
    ) -> DomainResult<ImagePage> {
        self.authorize_global(ctx, Action::GetImages)?;
        let query = ListQuery::parse(params, self.limits.page)?;
        let viewer = Viewer {
            project: ctx.project_id.clone(),
            is_admin: ctx.is_admin,
        };
        // The marker must be an image the caller may see (Glance answers 400 otherwise).
        let marker = match &query.marker {
            Some(id) => Some(self.get_visible(ctx, id).await.map_err(|e| {
                if e.kind() == Some(Refusal::NotFound) {
                    e.into_kind(Refusal::BadRequest)
                } else {
                    e
                }
            })?),
            None => None,
        };
        let images = self.repo.list(&query, &viewer, marker.as_ref()).await?;
        let full = query.limit > 0 && images.len() == query.limit as usize;
        let next_marker = if full {
            images.last().map(|i| i.id.to_string())
        } else {
            None
        };
        let images = images
            .into_iter()
            .map(|image| self.readable(ctx, image))
            .collect();
        Ok(ImagePage {
            images,
            next_marker,
        })
    }

    /// `PATCH /v2/images/{id}`: the whole patch is validated, then applied to the image read
    /// from the database; nothing is written unless every change applies.
    pub async fn update(
        &self,
        ctx: &RequestContext,
        id: &str,
        dialect: PatchDialect,
        changes: &[Change],
    ) -> DomainResult<Image> {
        for change in changes {
            self.validate_change(change)?;
        }
        for _ in 0..SAVE_ATTEMPTS {
            let before = self.get_visible(ctx, id).await?;
            self.authorize_on(ctx, Action::ModifyImage, &before)?;
            let mut after = before.clone();
            // As Glance, the patch applies to the properties the caller can read: the others
            // do not exist for it (409 on replace/remove), and are kept as they are.
            let hidden = self.take_unreadable(ctx, &mut after);
            for change in changes {
                self.check_change_protection(ctx, &after, dialect, change)?;
                apply_change(ctx, &mut after, dialect, change)?;
            }
            for (key, value) in hidden {
                after.properties.entry(key).or_insert(value);
            }
            self.check_visibility_change(ctx, &after, Some(&before))?;
            self.check_tag_quota(&after, Some(&before))?;
            self.check_property_quota(&after, Some(&before))?;
            if after == before {
                // Glance saves (and notifies) whenever the patch has changes, even no-ops.
                if !changes.is_empty() {
                    self.notify_image(ctx, "image.update", &before);
                }
                return Ok(self.readable(ctx, before));
            }
            after.updated_at = image::now();
            match self.repo.save(&before, &after, self.count_limits()).await? {
                SaveOutcome::Saved => {
                    self.notify_image(ctx, "image.update", &after);
                    return Ok(self.readable(ctx, after));
                }
                SaveOutcome::Gone => return Err(DomainError::image_not_found(id)),
                SaveOutcome::StatusChanged => continue,
                SaveOutcome::OverQuota { what, count } => {
                    return Err(self.over_quota(what, count));
                }
            }
        }
        Err(DomainError::conflict(format!(
            "Image {id} changed status while being updated; retry the request."
        )))
    }

    /// `DELETE /v2/images/{id}`: soft-deletes the image row and hands back the locations
    /// whose data the caller must now remove (none are lost: until removed they stay
    /// `pending_delete`, which the scrubber works through), with the status the image had.
    /// With `delayed`, the data is left to the scrubber and the image becomes `pending_delete`.
    pub async fn delete(
        &self,
        ctx: &RequestContext,
        id: &str,
        delayed: bool,
    ) -> DomainResult<(ImageStatus, Vec<StoredLocation>)> {
        let not_found = || DomainError::not_found(format!("Failed to find image {id} to delete"));
        let image = self
            .get_for(ctx, id, Action::DeleteImage)
            .await
            .map_err(|e| {
                if e.kind() == Some(Refusal::NotFound) {
                    not_found()
                } else {
                    e
                }
            })?;
        if image.protected {
            return Err(DomainError::forbidden(format!(
                "Image {id} is protected and cannot be deleted."
            )));
        }
        if !image.status.can_become(ImageStatus::Deleted) {
            return Err(DomainError::bad_request(format!(
                "Image status transition from {} to deleted is not allowed",
                image.status
            )));
        }
        let deleted_at = image::now();
        let locations = self
            .repo
            .delete(&image.id, deleted_at, delayed)
            .await?
            .ok_or_else(not_found)?;
        let mut removed = image.clone();
        // Glance's `Image.delete`: pending_delete only when delayed and there is data.
        removed.status = if delayed && !locations.is_empty() {
            ImageStatus::PendingDelete
        } else {
            ImageStatus::Deleted
        };
        removed.updated_at = deleted_at;
        self.notify_image_deleted(ctx, &removed);
        Ok((image.status, locations))
    }

    /// An image the caller may see and act on by `action` (for the data routes).
    pub async fn get_for(
        &self,
        ctx: &RequestContext,
        id: &str,
        action: Action,
    ) -> DomainResult<Image> {
        let image = self.get_visible(ctx, id).await?;
        self.authorize_on(ctx, action, &image)?;
        Ok(image)
    }

    /// `POST …/actions/deactivate` (`reactivate: false`) and `…/reactivate` (`true`).
    pub async fn set_active(
        &self,
        ctx: &RequestContext,
        id: &str,
        reactivate: bool,
    ) -> DomainResult<()> {
        let (action, from, to, verb) = if reactivate {
            (
                Action::Reactivate,
                ImageStatus::Deactivated,
                ImageStatus::Active,
                "reactivate",
            )
        } else {
            (
                Action::Deactivate,
                ImageStatus::Active,
                ImageStatus::Deactivated,
                "deactivate",
            )
        };
        for _ in 0..SAVE_ATTEMPTS {
            let before = self.get_visible(ctx, id).await?;
            self.authorize_on(ctx, action, &before)?;
            if before.status == to {
                return Ok(());
            }
            if before.status != from {
                return Err(DomainError::forbidden(format!(
                    "Not allowed to {verb} image in status '{}'",
                    before.status
                )));
            }
            let mut after = before.clone();
            after.status = to;
            after.updated_at = image::now();
            match self.repo.save(&before, &after, self.count_limits()).await? {
                SaveOutcome::Saved => {
                    self.notify_image(ctx, "image.update", &after);
                    return Ok(());
                }
                SaveOutcome::Gone => return Err(DomainError::image_not_found(id)),
                SaveOutcome::StatusChanged => continue,
                SaveOutcome::OverQuota { what, count } => {
                    return Err(self.over_quota(what, count));
                }
            }
        }
        Err(DomainError::conflict(format!(
            "Image {id} changed status concurrently; retry the request."
        )))
    }
}
