//! Authorisation: the rules the image service consults, by Glance's names. The service layer
//! asks `Policy::allows` before acting; `crate::policy::Enforcer` decides with the operator's
//! rules.

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
    /// `GET /v2/info/stores/detail`.
    StoresInfoDetail,
    /// The copy-image import method.
    CopyImage,
    /// `POST /v2/images/{id}/locations`.
    AddImageLocation,
    /// Adding or replacing locations by JSON-patch.
    SetImageLocation,
    /// `GET /v2/images/{id}/locations`.
    FetchImageLocation,
    /// The tasks API.
    TasksApiAccess,
    GetMembers,
    GetMember,
    AddMember,
    ModifyMember,
    DeleteMember,
    /// The cache API (`/v2/cache…`), each call by its own rule.
    CacheList,
    CacheImage,
    CacheDelete,
    CacheClean,
    CachePrune,
    ListCachedNodes,
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
            Action::StoresInfoDetail => "stores_info_detail",
            Action::CopyImage => "copy_image",
            Action::AddImageLocation => "add_image_location",
            Action::SetImageLocation => "set_image_location",
            Action::FetchImageLocation => "fetch_image_location",
            Action::TasksApiAccess => "tasks_api_access",
            Action::GetMembers => "get_members",
            Action::GetMember => "get_member",
            Action::AddMember => "add_member",
            Action::ModifyMember => "modify_member",
            Action::DeleteMember => "delete_member",
            Action::CacheList => "cache_list",
            Action::CacheImage => "cache_image",
            Action::CacheDelete => "cache_delete",
            Action::CacheClean => "cache_clean",
            Action::CachePrune => "cache_prune",
            Action::ListCachedNodes => "list_cached_nodes",
        }
    }
}

/// What a rule is checked against: the image's owner and visibility, and the caller's project
/// when it sees a shared image as a member.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub owner: Option<&'a str>,
    pub visibility: Option<Visibility>,
    pub member: Option<&'a str>,
}

pub trait Policy: Send + Sync + std::fmt::Debug {
    /// Whether `action` on `target` is allowed to `ctx`.
    fn allows(&self, ctx: &RequestContext, action: Action, target: &Target<'_>) -> bool;

    /// Whether `ctx` is an administrator (`context_is_admin`): it sees every image.
    fn is_admin(&self, ctx: &RequestContext) -> bool;

    /// `context_is_admin` whatever the token's scope: a system administrator passes it
    /// (Glance then finds any image, though no image rule lets it act on one).
    fn context_is_admin(&self, ctx: &RequestContext) -> bool;

    /// Whether the rule named `rule` allows `ctx`, with no target: oslo.policy's
    /// `rule:<name>`, so an undefined name denies (property protections, policies format).
    fn allows_rule(&self, ctx: &RequestContext, rule: &str) -> bool;

    /// Whether the rule named `rule` allows `ctx` on `target`: rules outside the image API's
    /// `Action`s (the metadefs API's), checked as `allows` checks an action.
    fn allows_named(&self, ctx: &RequestContext, rule: &str, target: &Target<'_>) -> bool;
}
