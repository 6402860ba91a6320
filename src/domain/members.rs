//! Image members: the projects a shared image is shared with, and where each stands
//! (pending, accepted, rejected), with Glance's rules and messages. The owner adds and
//! removes members; a member accepts or rejects, and sees only its own membership.

use super::error::{DomainError, DomainResult, Refusal};
use super::image::{self, Image, ImageId, Visibility};
use super::images::ImageService;
use super::policy::Action;
use super::repository::{Member, MemberAdded, MemberStatus};
use super::RequestContext;

/// What a member operation was, for Glance's refusal messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    List,
    Show,
    Create,
    Update,
    Delete,
}

impl Operation {
    /// Glance's answer when the image is not shared.
    fn not_shared(self, id: &str) -> DomainError {
        const ONLY_SHARED: &str = "Only shared images have members.";
        match self {
            Operation::List => DomainError::forbidden(format!(
                "Not allowed to list members for image {id}: {ONLY_SHARED}"
            )),
            Operation::Show => DomainError::not_found(ONLY_SHARED),
            Operation::Create => {
                DomainError::forbidden(format!("Not allowed to create members for image {id}."))
            }
            Operation::Update => {
                DomainError::forbidden(format!("Not allowed to update members for image {id}."))
            }
            Operation::Delete => {
                DomainError::forbidden(format!("Not allowed to delete members for image {id}."))
            }
        }
    }
}

impl ImageService {
    /// The image a member request addresses: visible to the caller, `get_image` allowed,
    /// and shared.
    async fn shared_image(
        &self,
        ctx: &RequestContext,
        id: &str,
        operation: Operation,
    ) -> DomainResult<Image> {
        let not_found = || DomainError::not_found(format!("Image {id} not found."));
        let image = match self.get(ctx, id).await {
            Ok(image) => image,
            Err(e) if e.kind() == Some(Refusal::NotFound) => {
                // Glance finds any image for a system administrator (context_is_admin has no
                // scope) and checks that it is shared before its rules refuse that scope.
                if ctx.project_id.is_none() && self.policy().context_is_admin(ctx) {
                    let stored = match ImageId::parse(id) {
                        Some(image_id) => self.repo().get(&image_id).await?,
                        None => None,
                    };
                    if stored.is_some_and(|i| i.visibility != Visibility::Shared) {
                        return Err(operation.not_shared(id));
                    }
                }
                return Err(not_found());
            }
            Err(e) => return Err(e),
        };
        if image.visibility != Visibility::Shared {
            return Err(operation.not_shared(id));
        }
        Ok(image)
    }

    /// The memberships the caller may see: all of them for the owner and administrators, its
    /// own for a member.
    async fn visible_members(
        &self,
        ctx: &RequestContext,
        image: &Image,
        only: Option<&str>,
    ) -> DomainResult<Vec<Member>> {
        let sees_all = ctx.is_admin || ctx.is_owner(image.owner.as_deref());
        let filter = match (sees_all, only) {
            (true, only) => only,
            (false, Some(member)) if Some(member) != ctx.project_id.as_deref() => {
                return Ok(Vec::new())
            }
            (false, _) => ctx.project_id.as_deref(),
        };
        let Some(id) = ImageId::parse(image.id.as_str()) else {
            return Ok(Vec::new());
        };
        Ok(self.repo().members(&id, filter).await?)
    }

    fn member_not_found(member: &str, id: &str) -> DomainError {
        DomainError::not_found(format!(
            "{member} not found in the member list of the image {id}."
        ))
    }

    /// `GET /v2/images/{id}/members`.
    pub async fn list_members(&self, ctx: &RequestContext, id: &str) -> DomainResult<Vec<Member>> {
        let image = self.shared_image(ctx, id, Operation::List).await?;
        self.authorize_on_image(ctx, Action::GetMembers, &image)?;
        if !self.allowed_on_image(ctx, Action::GetMember, &image) {
            return Ok(Vec::new());
        }
        self.visible_members(ctx, &image, None).await
    }

    /// `GET /v2/images/{id}/members/{member}`: every refusal is 404, as with Glance.
    pub async fn show_member(
        &self,
        ctx: &RequestContext,
        id: &str,
        member: &str,
    ) -> DomainResult<Member> {
        let image = self.shared_image(ctx, id, Operation::Show).await?;
        self.member_of(ctx, &image, id, member).await
    }

    /// The membership `member` of `image`, if the caller may see it (`get_member`, and its
    /// own membership unless it owns the image), else 404.
    async fn member_of(
        &self,
        ctx: &RequestContext,
        image: &Image,
        id: &str,
        member: &str,
    ) -> DomainResult<Member> {
        if !self.allowed_on_image(ctx, Action::GetMember, image) {
            return Err(Self::member_not_found(member, id));
        }
        self.visible_members(ctx, image, Some(member))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Self::member_not_found(member, id))
    }

    /// `POST /v2/images/{id}/members`.
    pub async fn add_member(
        &self,
        ctx: &RequestContext,
        id: &str,
        member: &str,
    ) -> DomainResult<Member> {
        let image = self.shared_image(ctx, id, Operation::Create).await?;
        self.authorize_on_image(ctx, Action::AddMember, &image)?;
        if member.chars().count() > 255 {
            return Err(DomainError::bad_request(
                "Member can't be longer than 255 characters.",
            ));
        }
        let image_id = ImageId::parse(id).ok_or_else(|| DomainError::image_not_found(id))?;
        match self
            .repo()
            .add_member(&image_id, member, self.member_quota(), image::now())
            .await?
        {
            MemberAdded::Added(added) => {
                self.notify_member(ctx, "image.member.create", &added, false);
                Ok(added)
            }
            MemberAdded::Duplicate => Err(DomainError::conflict(format!(
                "Member {member} is duplicated for image {id}"
            ))),
            MemberAdded::OverQuota { count } => Err(DomainError::refused(
                Refusal::OverLimit,
                format!(
                    "Image member limit exceeded for image {id}: The limit has been exceeded \
                     on the number of allowed image members for this image. Attempted: {}, \
                     Maximum: {count}:",
                    count + 1
                ),
            )),
            MemberAdded::Gone => Err(DomainError::not_found(format!("Image {id} not found."))),
        }
    }

    /// `PUT /v2/images/{id}/members/{member}`: only the member itself (or an administrator)
    /// sets its status.
    pub async fn update_member(
        &self,
        ctx: &RequestContext,
        id: &str,
        member: &str,
        status: &str,
    ) -> DomainResult<Member> {
        let image = self.shared_image(ctx, id, Operation::Update).await?;
        self.member_of(ctx, &image, id, member).await?;
        self.authorize_on_image(ctx, Action::ModifyMember, &image)?;
        let status = MemberStatus::parse(status).ok_or_else(|| {
            DomainError::bad_request(
                "Incorrect request: Status must be \"pending\", \"accepted\" or \"rejected\".",
            )
        })?;
        let image_id = ImageId::parse(id).ok_or_else(|| DomainError::image_not_found(id))?;
        let updated = self
            .repo()
            .set_member_status(&image_id, member, status, image::now())
            .await?
            .ok_or_else(|| Self::member_not_found(member, id))?;
        self.notify_member(ctx, "image.member.update", &updated, false);
        Ok(updated)
    }

    /// `DELETE /v2/images/{id}/members/{member}`.
    pub async fn remove_member(
        &self,
        ctx: &RequestContext,
        id: &str,
        member: &str,
    ) -> DomainResult<()> {
        let image = self.shared_image(ctx, id, Operation::Delete).await?;
        let removed = self.member_of(ctx, &image, id, member).await?;
        self.authorize_on_image(ctx, Action::DeleteMember, &image)?;
        let image_id = ImageId::parse(id).ok_or_else(|| DomainError::image_not_found(id))?;
        if self
            .repo()
            .remove_member(&image_id, member, image::now())
            .await?
        {
            self.notify_member(ctx, "image.member.delete", &removed, true);
            Ok(())
        } else {
            Err(Self::member_not_found(member, id))
        }
    }

    /// The projects an image's data should be readable by besides its owner (its members,
    /// in any status, as Glance grants them).
    pub async fn member_projects(&self, image: &Image) -> DomainResult<Vec<String>> {
        let Some(id) = ImageId::parse(image.id.as_str()) else {
            return Ok(Vec::new());
        };
        Ok(self
            .repo()
            .members(&id, None)
            .await?
            .into_iter()
            .map(|m| m.member_id)
            .collect())
    }
}
