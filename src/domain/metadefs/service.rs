//! The metadefs service: what every operation shares — finding the namespace a request
//! addresses as the caller may see it, Glance's policy checks on it, and publishing events.
//! The operations themselves are in `namespaces.rs`, `objects.rs`, `properties.rs`,
//! `tags.rs` and `resource_types.rs`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::rules::{rule, Miss};
use super::schemas::MetadefSchemas;
use super::{MetadefRepo, Namespace, Reach};
use crate::domain::error::{DomainError, DomainResult, Refusal};
use crate::domain::events::{Event, EventSink, Priority};
use crate::domain::image::Visibility;
use crate::domain::image_rules::check_storable;
use crate::domain::listing::PageLimits;
use crate::domain::policy::{Policy, Target};
use crate::domain::RequestContext;

#[derive(Debug, Clone)]
pub struct MetadefService {
    repo: Arc<dyn MetadefRepo>,
    policy: Arc<dyn Policy>,
    events: Arc<dyn EventSink>,
    schemas: Arc<MetadefSchemas>,
    page: PageLimits,
}

impl MetadefService {
    pub fn new(
        repo: Arc<dyn MetadefRepo>,
        policy: Arc<dyn Policy>,
        events: Arc<dyn EventSink>,
        page: PageLimits,
    ) -> Result<MetadefService, String> {
        Ok(MetadefService {
            repo,
            policy,
            events,
            schemas: Arc::new(MetadefSchemas::new()?),
            page,
        })
    }

    /// The ten schema documents, and the validators built from them.
    pub fn schemas(&self) -> &MetadefSchemas {
        &self.schemas
    }

    pub(super) fn repo(&self) -> &dyn MetadefRepo {
        self.repo.as_ref()
    }

    pub(super) fn page(&self) -> PageLimits {
        self.page
    }

    pub(super) fn now() -> DateTime<Utc> {
        Utc::now()
    }

    /// Which namespaces the database shows the caller (Glance's `_is_namespace_visible`).
    pub(super) fn reach<'a>(&self, ctx: &'a RequestContext) -> Reach<'a> {
        if ctx.is_admin {
            Reach::All
        } else {
            Reach::OwnedOrPublic(ctx.project_id.as_deref())
        }
    }

    pub(super) fn visible(&self, ctx: &RequestContext, namespace: &Namespace) -> bool {
        ctx.is_admin || namespace.is_public() || ctx.is_owner(Some(&namespace.owner))
    }

    /// Glance's metadef policy target: the namespace's owner and visibility, or the caller's
    /// project when there is no namespace.
    pub(super) fn allowed(
        &self,
        ctx: &RequestContext,
        name: &str,
        namespace: Option<&Namespace>,
    ) -> bool {
        let target = match namespace {
            Some(ns) => Target {
                owner: Some(ns.owner.as_str()),
                visibility: Some(if ns.is_public() {
                    Visibility::Public
                } else {
                    Visibility::Private
                }),
                member: None,
            },
            None => Target {
                owner: ctx.project_id.as_deref(),
                visibility: None,
                member: None,
            },
        };
        self.policy.allows_named(ctx, name, &target)
    }

    /// A refused rule is 404 when the caller may not even read the namespace, 403 otherwise
    /// (Glance's `MetadefAPIPolicy._enforce`).
    pub(super) fn enforce(
        &self,
        ctx: &RequestContext,
        name: &str,
        namespace: Option<&Namespace>,
    ) -> DomainResult<()> {
        if self.allowed(ctx, name, namespace) {
            return Ok(());
        }
        if name == rule::GET_NAMESPACE || !self.allowed(ctx, rule::GET_NAMESPACE, namespace) {
            return Err(DomainError::plain(Refusal::NotFound));
        }
        Err(DomainError::not_authorized(name))
    }

    /// The namespace named `name` as the caller may see it, worded as `miss` says when not.
    pub(super) async fn find(
        &self,
        ctx: &RequestContext,
        name: &str,
        miss: Miss,
    ) -> DomainResult<Namespace> {
        check_storable("namespace", name)?;
        match self.repo.namespace(name).await? {
            None => Err(miss.missing(name)),
            Some(ns) if !self.visible(ctx, &ns) => Err(miss.hidden(name)),
            Some(ns) => Ok(ns),
        }
    }

    pub(super) fn publish(&self, ctx: &RequestContext, event_type: &'static str, payload: Value) {
        self.events.publish(Event {
            context: ctx,
            event_type,
            priority: Priority::Info,
            payload,
        });
    }
}
