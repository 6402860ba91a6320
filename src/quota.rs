//! Keystone's unified limits (`use_keystone_limits`), enforced as oslo.limit's flat model does
//! for Glance: a project's limit for a resource is its own (`GET /v3/limits`) or else the
//! registered default (`GET /v3/registered_limits`) — none at all is a limit of 0 — for the
//! image service's catalog entry; a request that would take usage past it is refused (413).
//! Limits are read at each check, as oslo.limit does, so an operator's change applies at once.

use std::collections::HashMap;

use serde_json::Value;

use crate::auth::session::Session;
use crate::config::keystone::{LimitsEndpoint, UnifiedLimitsConfig};
use crate::domain::repository::ProjectCounts;

/// Glance's four resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// MiB of image data stored (`user_storage_quota`'s unified twin).
    ImageSizeTotal,
    /// MiB of data staged for import.
    ImageStageTotal,
    /// Images, not counting deleted or killed ones.
    ImageCountTotal,
    /// Images being uploaded or imported at once.
    ImageCountUploading,
}

impl Resource {
    pub const ALL: [Resource; 4] = [
        Resource::ImageSizeTotal,
        Resource::ImageStageTotal,
        Resource::ImageCountTotal,
        Resource::ImageCountUploading,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resource::ImageSizeTotal => "image_size_total",
            Resource::ImageStageTotal => "image_stage_total",
            Resource::ImageCountTotal => "image_count_total",
            Resource::ImageCountUploading => "image_count_uploading",
        }
    }
}

/// A project's usage of `resource`, as Glance counts it (sizes in whole MiB).
pub fn usage_of(counts: &ProjectCounts, resource: Resource) -> i64 {
    let mib = |bytes: u64| i64::try_from(bytes >> 20).unwrap_or(i64::MAX);
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    match resource {
        Resource::ImageSizeTotal => mib(counts.stored_bytes),
        Resource::ImageStageTotal => mib(counts.staged_bytes),
        Resource::ImageCountTotal => count(counts.images),
        Resource::ImageCountUploading => count(counts.uploading),
    }
}

/// Why a check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// oslo.limit's ProjectOverLimit, worded as it words it.
    #[error("{0}")]
    OverLimit(String),
    /// Keystone could not be asked, or answered what cannot be used: the request fails (503),
    /// it is never let through unchecked.
    #[error("cannot read the unified limits: {0}")]
    Unavailable(String),
}

/// oslo.limit's ProjectOverLimit for `(resource, limit, usage, delta)` each over.
pub fn over_limit(project: &str, over: &[(Resource, i64, i64, i64)]) -> QuotaError {
    let each: Vec<String> = over
        .iter()
        .map(|(resource, limit, current, delta)| {
            format!(
                "Resource {} is over limit of {limit} due to current usage {current} and delta \
                 {delta}",
                resource.name()
            )
        })
        .collect();
    QuotaError::OverLimit(format!(
        "Project {project} is over a limit for [{}]",
        each.join(", ")
    ))
}

/// The image service's catalog entry: limits are registered per service (and region).
#[derive(Debug, Clone)]
struct ServiceKey {
    service_id: String,
    region_id: Option<String>,
}

#[derive(Debug)]
pub struct UnifiedLimits {
    session: Session,
    endpoint: LimitsEndpoint,
    key: tokio::sync::OnceCell<ServiceKey>,
}

impl UnifiedLimits {
    pub fn new(config: &UnifiedLimitsConfig) -> Result<UnifiedLimits, String> {
        let connector =
            glint_store::net::https_connector(config.cafile.as_deref(), config.insecure)
                .map_err(|e| format!("[oslo_limit] cafile: {e}"))?;
        Ok(UnifiedLimits {
            session: Session::new(
                config.identity_url.clone(),
                config.credentials.clone(),
                "oslo_limit",
                config.timeout,
                connector,
            ),
            endpoint: config.endpoint.clone(),
            key: tokio::sync::OnceCell::new(),
        })
    }

    /// Refuses when `usage + delta` of any resource in `deltas` passes the project's limit.
    pub async fn enforce(
        &self,
        project: &str,
        usage: &ProjectCounts,
        deltas: &[(Resource, i64)],
    ) -> Result<(), QuotaError> {
        let resources: Vec<Resource> = deltas.iter().map(|(r, _)| *r).collect();
        let limits = self.limits(project, &resources).await?;
        let over: Vec<(Resource, i64, i64, i64)> = deltas
            .iter()
            .filter_map(|(resource, delta)| {
                let limit = limits.get(resource).copied().unwrap_or(0);
                let current = usage_of(usage, *resource);
                (current + delta > limit).then_some((*resource, limit, current, *delta))
            })
            .collect();
        if over.is_empty() {
            Ok(())
        } else {
            Err(over_limit(project, &over))
        }
    }

    /// The project's limit for `resource` (0 when none is defined).
    pub async fn limit(&self, project: &str, resource: Resource) -> Result<i64, QuotaError> {
        Ok(self
            .limits(project, &[resource])
            .await?
            .get(&resource)
            .copied()
            .unwrap_or(0))
    }

    /// Every resource's limit and usage, for `GET /v2/info/usage`.
    pub async fn report(
        &self,
        project: &str,
        usage: &ProjectCounts,
    ) -> Result<Vec<(Resource, i64, i64)>, QuotaError> {
        let limits = self.limits(project, &Resource::ALL).await?;
        Ok(Resource::ALL
            .iter()
            .map(|r| (*r, limits.get(r).copied().unwrap_or(0), usage_of(usage, *r)))
            .collect())
    }

    /// The project's limit for each resource: its own, else the registered default; absent
    /// from the map when neither exists (a limit of 0).
    async fn limits(
        &self,
        project: &str,
        resources: &[Resource],
    ) -> Result<HashMap<Resource, i64>, QuotaError> {
        let key = self.key().await?;
        let mut filter = format!("service_id={}", key.service_id);
        if let Some(region) = &key.region_id {
            filter.push_str(&format!("&region_id={region}"));
        }
        let registered = self
            .list(&format!("/registered_limits?{filter}"), "registered_limits")
            .await?;
        let own = self
            .list(&format!("/limits?{filter}&project_id={project}"), "limits")
            .await?;
        let own: Vec<Value> = own
            .into_iter()
            .filter(|e| e["project_id"] == project)
            .collect();
        let mut found = HashMap::new();
        for resource in resources {
            let named = |entries: &[Value], field: &str| {
                entries
                    .iter()
                    .find(|e| e["resource_name"] == resource.name())
                    .and_then(|e| e[field].as_i64())
            };
            if let Some(limit) =
                named(&own, "resource_limit").or_else(|| named(&registered, "default_limit"))
            {
                found.insert(*resource, limit);
            }
        }
        Ok(found)
    }

    async fn list(&self, path: &str, field: &str) -> Result<Vec<Value>, QuotaError> {
        let (status, body) = self
            .session
            .get_json(path)
            .await
            .map_err(QuotaError::Unavailable)?;
        if !status.is_success() {
            return Err(QuotaError::Unavailable(format!(
                "Keystone answered {status} to GET {path} (does the [oslo_limit] user have a \
                 reader role on the system?)"
            )));
        }
        body[field]
            .as_array()
            .cloned()
            .ok_or_else(|| QuotaError::Unavailable(format!("GET {path}: no {field} list")))
    }

    /// The image service's id and region, found once.
    async fn key(&self) -> Result<&ServiceKey, QuotaError> {
        self.key
            .get_or_try_init(|| async {
                let endpoint = match &self.endpoint {
                    LimitsEndpoint::Id(id) => {
                        let (status, body) = self
                            .session
                            .get_json(&format!("/endpoints/{id}"))
                            .await
                            .map_err(QuotaError::Unavailable)?;
                        if !status.is_success() {
                            return Err(QuotaError::Unavailable(format!(
                                "Keystone answered {status} for [oslo_limit] endpoint_id {id}"
                            )));
                        }
                        body["endpoint"].clone()
                    }
                    LimitsEndpoint::Lookup {
                        service_type,
                        service_name,
                        region,
                        interface,
                    } => {
                        let services = self
                            .list(&format!("/services?type={service_type}"), "services")
                            .await?;
                        let service = services
                            .iter()
                            .find(|s| service_name.as_ref().is_none_or(|n| s["name"] == *n))
                            .ok_or_else(|| {
                                QuotaError::Unavailable(format!(
                                    "no {service_type} service in Keystone's catalog"
                                ))
                            })?;
                        let mut path = format!(
                            "/endpoints?service_id={}&interface={interface}",
                            service["id"].as_str().unwrap_or_default()
                        );
                        if let Some(region) = region {
                            path.push_str(&format!("&region_id={region}"));
                        }
                        self.list(&path, "endpoints")
                            .await?
                            .into_iter()
                            .next()
                            .ok_or_else(|| {
                                QuotaError::Unavailable(format!(
                                    "no {interface} endpoint of the {service_type} service"
                                ))
                            })?
                    }
                };
                let service_id = endpoint["service_id"]
                    .as_str()
                    .ok_or_else(|| {
                        QuotaError::Unavailable("an endpoint without service_id".into())
                    })?
                    .to_owned();
                Ok(ServiceKey {
                    service_id,
                    region_id: endpoint["region_id"].as_str().map(str::to_owned),
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_mib_and_images_as_glance_does() {
        let counts = ProjectCounts {
            images: 3,
            uploading: 1,
            staged_bytes: (5 << 20) + 1,
            stored_bytes: (2 << 20) - 1,
        };
        assert_eq!(usage_of(&counts, Resource::ImageSizeTotal), 1);
        assert_eq!(usage_of(&counts, Resource::ImageStageTotal), 5);
        assert_eq!(usage_of(&counts, Resource::ImageCountTotal), 3);
        assert_eq!(usage_of(&counts, Resource::ImageCountUploading), 1);
    }
}
