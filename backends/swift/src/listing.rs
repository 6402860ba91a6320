//! Listings: the cluster's `/info`, a container's objects, the sweep of what killed uploads
//! left (segments and markers), and the committed data the orphan sweep compares with the
//! database.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{NaiveDateTime, Utc};
use glint_store::{is_image_id, StoreError, StoredData};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;

use crate::auth::Auth;
use crate::client::{encode_query, read_limited, status_error, transport_error, Swift, Target};
use crate::writer::{MARKER_PREFIX, SEGMENT_PREFIX};
use crate::{ClusterInfo, Shared};
use glint_store::net::body::UploadBody;

/// An entry of a JSON listing.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Listed {
    /// Empty for the `subdir` entries of a listing with a delimiter.
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) subdir: Option<String>,
    #[serde(default)]
    pub(crate) last_modified: Option<String>,
}

impl Listed {
    fn modified(&self) -> Option<chrono::DateTime<Utc>> {
        let text = self.last_modified.as_deref()?;
        NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|t| t.and_utc())
    }
}

/// `/info` beside the account's URL (`…/v1/AUTH_x` → `…/info`; RGW's `…/swift/v1` →
/// `…/swift/info`), asked without a token.
pub(crate) async fn cluster_info(swift: &Swift, auth: &Auth) -> Result<ClusterInfo, String> {
    let token = auth
        .token(&swift.unpooled)
        .await
        .map_err(|e| e.to_string())?;
    let url = &token.storage_url;
    let base = url
        .rfind("/v1")
        .map(|at| &url[..at])
        .ok_or_else(|| format!("no /v1 in the storage URL {url}"))?;
    let request = Request::get(format!("{base}/info"))
        .body(UploadBody::empty())
        .map_err(|e| e.to_string())?;
    let response = swift
        .http
        .request(request)
        .await
        .map_err(|e| transport_error(&swift.store, &e).to_string())?;
    if !response.status().is_success() {
        return Err(format!("/info answered {}", response.status()));
    }
    let body = read_limited(response.into_body().boxed(), 1 << 20).await?;
    let info: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let defaults = ClusterInfo::default();
    let slo = info.get("slo");
    Ok(ClusterInfo {
        slo: slo.is_some(),
        max_segments: match slo {
            Some(slo) => slo["max_manifest_segments"].as_u64().unwrap_or(1000),
            None => info["swift"]["container_listing_limit"]
                .as_u64()
                .unwrap_or(defaults.max_segments),
        },
        max_object: info["swift"]["max_file_size"]
            .as_u64()
            .unwrap_or(defaults.max_object),
    })
}

/// Every object of `container` whose name starts with `prefix`, page after page. A missing
/// container lists nothing.
pub(crate) async fn list(
    shared: &Shared,
    auth: &Auth,
    container: &str,
    prefix: &str,
) -> Result<Vec<Listed>, StoreError> {
    list_in(&shared.swift, auth, Some(container), prefix, false).await
}

/// The account's containers (`container: None`) or a container's objects.
async fn list_in(
    swift: &Swift,
    auth: &Auth,
    container: Option<&str>,
    prefix: &str,
    top_level: bool,
) -> Result<Vec<Listed>, StoreError> {
    let mut found: Vec<Listed> = Vec::new();
    loop {
        let mut query = format!("format=json&prefix={}", encode_query(prefix));
        if top_level {
            // Names below a `/` (segments, markers) come back as one `subdir` entry each.
            query.push_str("&delimiter=%2F");
        }
        if let Some(last) = found.last() {
            let last = last.subdir.as_deref().unwrap_or(&last.name);
            query.push_str(&format!("&marker={}", encode_query(last)));
        }
        let target = match container {
            Some(container) => Target::container(container),
            // The account itself: an empty container name leaves the storage URL with a
            // trailing slash, which Swift takes as the account.
            None => Target::container(""),
        }
        .with_query(&query);
        let answer = swift
            .call(auth, Method::GET, target, &[], Bytes::new())
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(found);
        }
        if !answer.status.is_success() {
            return Err(status_error(
                &swift.store,
                container.unwrap_or("the account"),
                &answer,
            ));
        }
        if answer.status == StatusCode::NO_CONTENT || answer.body.is_empty() {
            return Ok(found);
        }
        let page: Vec<Listed> =
            serde_json::from_slice(&answer.body).map_err(|e| StoreError::Backend {
                store: swift.store.clone(),
                source: format!("unreadable listing: {e}").into(),
            })?;
        if page.is_empty() {
            return Ok(found);
        }
        found.extend(page);
    }
}

/// The containers this store writes images into that exist now.
async fn own_containers(shared: &Shared, auth: &Auth) -> Result<Vec<String>, StoreError> {
    let config = &shared.config;
    if config.multiple_containers_seed == 0 {
        return Ok(vec![config.container.clone()]);
    }
    Ok(list_in(
        &shared.swift,
        auth,
        None,
        &format!("{}_", config.container),
        false,
    )
    .await?
    .into_iter()
    .map(|c| c.name)
    .filter(|name| config.is_own_container(name))
    .collect())
}

/// Removes what uploads that neither run nor finished left: for each marker not refreshed
/// for `older_than`, the segments under it (unless the image's manifest names them: a
/// committed upload whose marker could not be removed), then the marker. Segments always have
/// a marker while they exist outside a manifest, so markers are all the sweep lists. Returns
/// how many uploads were cleared.
pub(crate) async fn sweep(shared: &Shared, older_than: Duration) -> Result<usize, StoreError> {
    let auth = shared.writer_auth()?;
    let cutoff =
        Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
    let mut cleared = 0;
    for container in own_containers(shared, &auth).await? {
        for marker in list(shared, &auth, &container, &format!("{MARKER_PREFIX}/")).await? {
            if marker.modified().is_some_and(|at| at > cutoff) {
                continue;
            }
            let Some(upload) = marker.name.strip_prefix(&format!("{MARKER_PREFIX}/")) else {
                continue;
            };
            let Some((image_id, _)) = upload.split_once('/') else {
                continue;
            };
            if !is_image_id(image_id) {
                continue;
            }
            let prefix = format!("{SEGMENT_PREFIX}/{upload}/");
            if !manifest_names(shared, &auth, &container, image_id, &prefix).await? {
                shared.delete_prefix(&auth, &container, &prefix).await?;
            }
            match shared.delete_object(&auth, &container, &marker.name).await {
                Ok(()) | Err(StoreError::NotFound(_)) => cleared += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(cleared)
}

/// Whether the committed object of `image_id` is a manifest of the segments under `prefix`.
pub(crate) async fn manifest_names(
    shared: &Shared,
    auth: &Auth,
    container: &str,
    image_id: &str,
    prefix: &str,
) -> Result<bool, StoreError> {
    let head = shared.head(auth, container, image_id).await?;
    if head.status == StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !head.status.is_success() {
        return Err(status_error(&shared.config.name, image_id, &head));
    }
    if let Some(dynamic) = head.header("x-object-manifest") {
        return Ok(crate::client::decode_path(dynamic) == format!("{container}/{prefix}"));
    }
    if !head
        .header("x-static-large-object")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Ok(false);
    }
    let manifest = shared
        .swift
        .call(
            auth,
            Method::GET,
            Target::object(container, image_id).with_query("multipart-manifest=get"),
            &[],
            Bytes::new(),
        )
        .await?;
    // Ceph RGW answers this request with no body: a static manifest it cannot show is taken
    // to name the segments, so that they are never removed from under a committed image.
    let Ok(segments) = serde_json::from_slice::<Vec<serde_json::Value>>(&manifest.body) else {
        return Ok(true);
    };
    Ok(segments.iter().any(|s| {
        s["name"].as_str().is_some_and(|name| {
            name.trim_start_matches('/')
                .starts_with(&format!("{container}/{prefix}"))
        })
    }))
}

/// Every image's data in the store's containers (objects named as image ids).
pub(crate) async fn committed(shared: &Shared) -> Result<Vec<StoredData>, StoreError> {
    let auth = shared.writer_auth()?;
    let mut found = Vec::new();
    for container in own_containers(shared, &auth).await? {
        for object in list_in(&shared.swift, &auth, Some(&container), "", true).await? {
            if !is_image_id(&object.name) || shared.config.container_for(&object.name) != container
            {
                continue;
            }
            found.push(StoredData {
                location: shared.location(&object.name)?,
                aliases: Vec::new(),
                modified: object
                    .modified()
                    .map_or(SystemTime::now(), SystemTime::from),
                image_id: object.name,
            });
        }
    }
    Ok(found)
}
