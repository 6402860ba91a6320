//! Keystone's unified limits as the image service applies them: checks of the caller's
//! project before a write, the limits a write counts against in its own transaction, and
//! the usage report.

use super::error::DomainResult;
use super::images::ImageService;
use super::RequestContext;
use crate::quota::Resource;

impl ImageService {
    /// Refuses (413) when the caller's project would pass a unified limit by `deltas`; nothing
    /// to check without `use_keystone_limits` or without a project (Glance checks the
    /// caller's project, whoever owns the image).
    pub async fn enforce_unified_limits(
        &self,
        ctx: &RequestContext,
        deltas: &[(Resource, i64)],
    ) -> DomainResult<()> {
        let (Some(limits), Some(project)) = (self.unified_limits(), ctx.project_id.as_deref())
        else {
            return Ok(());
        };
        let counts = self.repo().project_counts(project).await?;
        limits.enforce(project, &counts, deltas).await?;
        Ok(())
    }

    /// The caller's project and its unified limit for `resource`, for a write that counts
    /// against it in its own transaction; `None` without `use_keystone_limits` or a project.
    pub async fn unified_limit(
        &self,
        ctx: &RequestContext,
        resource: Resource,
    ) -> DomainResult<Option<(String, i64)>> {
        let (Some(limits), Some(project)) = (self.unified_limits(), ctx.project_id.as_deref())
        else {
            return Ok(None);
        };
        Ok(Some((
            project.to_owned(),
            limits.limit(project, resource).await?,
        )))
    }

    /// `GET /v2/info/usage`: each unified limit of the caller's project and its usage; none
    /// without `use_keystone_limits`.
    pub async fn usage(&self, ctx: &RequestContext) -> DomainResult<Vec<(Resource, i64, i64)>> {
        let (Some(limits), Some(project)) = (self.unified_limits(), ctx.project_id.as_deref())
        else {
            return Ok(Vec::new());
        };
        let counts = self.repo().project_counts(project).await?;
        Ok(limits.report(project, &counts).await?)
    }
}
