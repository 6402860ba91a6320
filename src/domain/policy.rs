//! Authorisation decisions, as Glance's default (secure RBAC) policies make them. The service
//! layer asks `Policy::allows` before acting; an oslo.policy rule engine can later implement the
//! same trait without touching handlers or the service.

use super::context::RequestContext;
use super::image::Visibility;

/// The policy rules the image service consults, named as in Glance's `policy.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AddImage,
    GetImage,
    GetImages,
    ModifyImage,
    DeleteImage,
    PublicizeImage,
    CommunitizeImage,
    Deactivate,
    Reactivate,
    UploadImage,
    DownloadImage,
    /// Removing one store's copy of an image's data (`DELETE /v2/stores/{store}/{image}`).
    DeleteImageLocation,
}

impl Action {
    /// The rule name, as it appears in policy files and in Glance's 403 messages.
    pub fn rule_name(self) -> &'static str {
        match self {
            Action::AddImage => "add_image",
            Action::GetImage => "get_image",
            Action::GetImages => "get_images",
            Action::ModifyImage => "modify_image",
            Action::DeleteImage => "delete_image",
            Action::PublicizeImage => "publicize_image",
            Action::CommunitizeImage => "communitize_image",
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
            Action::UploadImage => "upload_image",
            Action::DownloadImage => "download_image",
            Action::DeleteImageLocation => "delete_image_location",
        }
    }
}

/// What a rule is checked against: the image's owner and visibility.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub owner: Option<&'a str>,
    pub visibility: Option<Visibility>,
}

pub trait Policy: Send + Sync + std::fmt::Debug {
    fn allows(&self, ctx: &RequestContext, action: Action, target: &Target<'_>) -> bool;
}

/// Glance's in-code defaults: `admin`, or `member`/`reader` scoped to the owning project.
/// Keystone expands implied roles (admin ⊃ member ⊃ reader) into the token; trusted headers may
/// not, so the implication is applied here as well.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultPolicy;

impl DefaultPolicy {
    fn is_member(ctx: &RequestContext) -> bool {
        ctx.has_role("member") || ctx.has_role("_member_")
    }

    fn is_reader(ctx: &RequestContext) -> bool {
        Self::is_member(ctx) || ctx.has_role("reader")
    }
}

impl Policy for DefaultPolicy {
    fn allows(&self, ctx: &RequestContext, action: Action, target: &Target<'_>) -> bool {
        if ctx.is_admin {
            return true;
        }
        // Every image rule is project-scoped: system- and domain-scoped tokens get nothing.
        if ctx.project_id.is_none() {
            return false;
        }
        let owner = ctx.is_owner(target.owner);
        match action {
            Action::GetImages => Self::is_reader(ctx),
            // Visibility itself (members, community, public) is decided by the repository
            // query; the rule only requires the reader role.
            Action::GetImage => Self::is_reader(ctx),
            Action::AddImage
            | Action::ModifyImage
            | Action::DeleteImage
            | Action::CommunitizeImage
            | Action::Deactivate
            | Action::Reactivate
            | Action::UploadImage
            | Action::DeleteImageLocation => Self::is_member(ctx) && owner,
            // Visibility was decided by the repository; downloading needs the member role.
            Action::DownloadImage => Self::is_member(ctx),
            Action::PublicizeImage => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(project: &str, roles: &[&str]) -> RequestContext {
        RequestContext {
            request_id: "req-test".into(),
            user_id: Some("u".into()),
            project_id: Some(project.into()),
            system_scope: None,
            domain_id: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            is_admin: roles.contains(&"admin"),
            auth_token: None,
            service_catalog: Vec::new(),
        }
    }

    #[test]
    fn members_modify_only_their_projects_images() {
        let own = Target {
            owner: Some("p1"),
            visibility: None,
        };
        let other = Target {
            owner: Some("p2"),
            visibility: None,
        };
        let member = ctx("p1", &["member"]);
        assert!(DefaultPolicy.allows(&member, Action::ModifyImage, &own));
        assert!(!DefaultPolicy.allows(&member, Action::ModifyImage, &other));
        assert!(!DefaultPolicy.allows(&member, Action::PublicizeImage, &own));
        assert!(DefaultPolicy.allows(&member, Action::CommunitizeImage, &own));
    }

    #[test]
    fn readers_read_but_never_write() {
        let own = Target {
            owner: Some("p1"),
            visibility: None,
        };
        let reader = ctx("p1", &["reader"]);
        assert!(DefaultPolicy.allows(&reader, Action::GetImages, &own));
        assert!(!DefaultPolicy.allows(&reader, Action::AddImage, &own));
    }

    #[test]
    fn admins_may_do_anything() {
        let other = Target {
            owner: Some("p2"),
            visibility: None,
        };
        let admin = ctx("p1", &["admin"]);
        assert!(DefaultPolicy.allows(&admin, Action::PublicizeImage, &other));
    }
}
