//! `PUT /v2/images/{id}/stage` and `POST /v2/images/{id}/import`: every check Glance makes,
//! in its order and words, then the import started in one transaction.

use bytes::Bytes;
use chrono::Duration as ChronoDuration;
use futures_util::Stream;
use serde_json::{json, Value};

use super::spec::{ImportMethod, ImportSpec};
use super::ImportService;
use crate::datapath::{DataError, UploadRequest};
use crate::domain::image::{self, Image};
use crate::domain::policy::Action;
use crate::domain::tasks::{merge_store_list, props, ImportBegun, ImportStart, Task, TaskStatus};
use crate::domain::{DomainError, ImageStatus, RequestContext};
use crate::quota::Resource;

/// Glance breaks a lock whose task has not moved for an hour (two when still pending); a
/// Glint job renews its task every heartbeat, so only a lock no node works on gets that old.
const LOCK_EXPIRY_MINUTES: i64 = 60;

/// What `POST /import` brings besides the image id.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub body: Value,
    /// `X-Image-Meta-Store`.
    pub store_header: Option<String>,
}

impl ImportService {
    /// `PUT /v2/images/{id}/stage`: only where glance-direct is enabled (404 otherwise).
    pub async fn stage<S, E>(
        &self,
        ctx: &RequestContext,
        id: &str,
        request: UploadRequest<S>,
    ) -> Result<(), DataError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        self.check_stage_enabled()?;
        self.data.stage(ctx, id, request).await
    }

    /// The 404 a stage gets where glance-direct is not enabled; checked before the body.
    pub fn check_stage_enabled(&self) -> Result<(), DomainError> {
        if self.enabled("glance-direct") {
            Ok(())
        } else {
            Err(DomainError::not_found(
                "'glance-direct' method is not available at this site.",
            ))
        }
    }

    /// `POST /v2/images/{id}/import`.
    pub async fn start(
        &self,
        ctx: &RequestContext,
        id: &str,
        request: ImportRequest,
    ) -> Result<(), DomainError> {
        let body = &request.body;
        let method = body
            .get("method")
            .ok_or_else(|| DomainError::bad_request("Import request requires a 'method' field."))?;
        let name = method
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| DomainError::bad_request("Import request requires a 'name' field."))?;
        if !self.enabled(name) {
            return Err(DomainError::bad_request(format!(
                "Unknown import method name '{name}'."
            )));
        }
        let flag = |key: &str, default: bool| match body.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(DomainError::bad_request(format!(
                "'{key}' must be boolean value only"
            ))),
        };
        let all_stores_must_succeed = flag("all_stores_must_succeed", true)?;
        let all_stores = flag("all_stores", false)?;

        self.images
            .enforce_unified_limits(ctx, &[(Resource::ImageSizeTotal, 0)])
            .await?;
        let image = self.images.get_visible(ctx, id).await?;
        check_status(&image, name)?;
        let mut body = body.clone();
        if name == "glance-download" {
            check_remote_image(&mut body)?;
        }
        let body = &body;
        let method = &body["method"];
        let action = if name == "copy-image" {
            Action::CopyImage
        } else {
            Action::ModifyImage
        };
        self.images.authorize_on(ctx, action, &image)?;
        self.check_lock(&image).await?;

        let mut stores = self.target_stores(body, request.store_header.as_deref(), all_stores)?;
        if name == "copy-image" {
            if !self.data.stores().multi() {
                return Err(DomainError::bad_request(
                    "The copy-image method copies between stores: it needs enabled_backends.",
                ));
            }
            if all_stores {
                stores.retain(|s| !s.as_ref().is_some_and(|s| image.stores.contains(s)));
                if stores.is_empty() {
                    // Every store holds the image already: nothing to do (Glance's 202).
                    return Ok(());
                }
            } else if let Some(present) = stores.iter().flatten().find(|s| image.stores.contains(s))
            {
                return Err(DomainError::bad_request(format!(
                    "Image is already present at store '{present}'"
                )));
            }
        }
        let uri = method.get("uri").and_then(Value::as_str);
        if !all_stores_must_succeed && !self.data.stores().multi() {
            return Err(DomainError::bad_request(format!(
                "All_stores_must_succeed can only be set with enabled_backends {}",
                uri.unwrap_or("None")
            )));
        }
        let method = match name {
            "glance-direct" => ImportMethod::GlanceDirect,
            "copy-image" => ImportMethod::CopyImage,
            "glance-download" => self.remote_image(ctx, method)?,
            _ => {
                let uri = uri.unwrap_or("");
                if let Err(why) = self.filter.check(uri) {
                    tracing::info!(image.id = %image.id, %why, "web-download URI refused");
                    return Err(DomainError::bad_request(format!(
                        "URI for web-download does not pass filtering: {}",
                        if uri.is_empty() { "None" } else { uri }
                    )));
                }
                ImportMethod::WebDownload {
                    uri: uri.to_owned(),
                }
            }
        };
        self.enforce_import_limits(ctx, &image, &method).await?;
        let spec = ImportSpec {
            method,
            stores,
            all_stores_must_succeed,
        };
        let backend: Vec<Value> = spec
            .stores
            .iter()
            .map(|s| s.as_ref().map_or(Value::Null, |s| json!(s)))
            .collect();
        let input = json!({
            "image_id": image.id.to_string(),
            "import_req": body,
            "backend": backend,
        });
        // glance-download reads with the caller's token, kept in this node's memory only (its
        // job is this node's), never written anywhere; the job takes it when it starts.
        if let (ImportMethod::GlanceDownload { .. }, Some(token)) = (&spec.method, &ctx.auth_token)
        {
            self.keep_token(image.id.as_str(), Some(token.clone()));
        }
        let begun = self
            .begin(ctx, &image, spec, "api_image_import", input)
            .await;
        if begun.is_err() && name == "glance-download" {
            self.keep_token(image.id.as_str(), None);
        }
        begun.map(|_| ())
    }

    /// glance-download's remote image: the image service of `glance_region` in the caller's
    /// catalog (`glance_service_interface`), its image and file URLs, the latter through the
    /// URL filter as Glance applies it.
    fn remote_image(
        &self,
        ctx: &RequestContext,
        method: &Value,
    ) -> Result<ImportMethod, DomainError> {
        let text = |key: &str| method.get(key).and_then(Value::as_str).unwrap_or("");
        let (region, image_id, interface) = (
            text("glance_region"),
            text("glance_image_id"),
            text("glance_service_interface"),
        );
        let endpoint = ctx
            .service_catalog
            .iter()
            .find(|e| {
                e.service_type == "image"
                    && e.interface == interface
                    && e.region
                        .as_deref()
                        .is_some_and(|r| r.eq_ignore_ascii_case(region))
            })
            .map(|e| e.url.trim_end_matches('/').to_owned())
            .ok_or_else(|| {
                DomainError::bad_request(format!(
                    "{interface} glance endpoint not found for region {region}"
                ))
            })?;
        let image_url = format!("{endpoint}/v2/images/{image_id}");
        let url = format!("{image_url}/file");
        if self.filter.check(&url).is_err() {
            return Err(DomainError::bad_request(format!(
                "Processed URI for glance-download does not pass filtering: {url}"
            )));
        }
        if ctx.auth_token.is_none() {
            return Err(DomainError::bad_request(
                "glance-download reads the remote image with the caller's token: the request has none.",
            ));
        }
        Ok(ImportMethod::GlanceDownload {
            region: region.to_owned(),
            image_url,
            url,
        })
    }

    /// The stores an import writes: `stores`, or `X-Image-Meta-Store`, or all writable ones,
    /// or the default; `[None]` with a single store.
    fn target_stores(
        &self,
        body: &Value,
        header: Option<&str>,
        all_stores: bool,
    ) -> Result<Vec<Option<String>>, DomainError> {
        let registry = self.data.stores();
        if !registry.multi() {
            return Ok(vec![None]);
        }
        let listed = body.get("stores");
        if all_stores {
            if listed.is_some() || header.is_some() {
                return Err(DomainError::bad_request(
                    "All_stores parameter can't be used with x-image-meta-store header or stores parameter",
                ));
            }
            return Ok(registry
                .entries()
                .iter()
                .filter(|e| !e.read_only())
                .map(|e| Some(e.id.clone()))
                .collect());
        }
        let ids: Vec<String> = match (listed, header) {
            (Some(_), Some(_)) => {
                return Err(DomainError::bad_request(
                    "Stores parameter and x-image-meta-store header can't be both specified",
                ))
            }
            (Some(Value::Array(items)), None) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        DomainError::bad_request("Stores must be a list of store identifiers.")
                    })
                })
                .collect::<Result<_, _>>()?,
            (Some(_), None) => {
                return Err(DomainError::bad_request(
                    "Stores must be a list of store identifiers.",
                ))
            }
            (None, Some(header)) => vec![header.to_owned()],
            (None, None) => vec![registry.default_entry().id.clone()],
        };
        if ids.is_empty() {
            return Err(DomainError::bad_request(
                "Stores must name at least one store.",
            ));
        }
        for id in &ids {
            match registry.entries().iter().find(|e| &e.id == id) {
                None => {
                    return Err(DomainError::conflict(format!(
                        "Store for identifier {id} not found"
                    )))
                }
                Some(entry) if entry.read_only() => {
                    return Err(DomainError::conflict(format!(
                        "Store {id} is read-only: no image data can be written to it"
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(ids.into_iter().map(Some).collect())
    }

    /// Keystone's unified limits, checked before anything starts (Glance fails the task
    /// after its 202; the caller hears 413 at once here): a glance-direct import counts
    /// against `image_size_total`, the others stage data (`image_stage_total`) and count
    /// as an upload.
    async fn enforce_import_limits(
        &self,
        ctx: &RequestContext,
        image: &Image,
        method: &ImportMethod,
    ) -> Result<(), DomainError> {
        let mib = image.size.map_or(0, |size| size >> 20);
        let deltas: &[(Resource, i64)] = match method {
            ImportMethod::GlanceDirect => &[(Resource::ImageSizeTotal, mib)],
            _ => &[
                (Resource::ImageStageTotal, mib),
                (Resource::ImageCountUploading, 1),
            ],
        };
        self.images.enforce_unified_limits(ctx, deltas).await
    }

    /// Glance refuses an image another import holds before it looks at the stores; the
    /// transaction that takes the lock (`begin`) decides again.
    async fn check_lock(&self, image: &Image) -> Result<(), DomainError> {
        let Some(holder) = image.properties.get(props::IMPORT_TASK) else {
            return Ok(());
        };
        let stale_before = image::now() - ChronoDuration::minutes(LOCK_EXPIRY_MINUTES);
        if self.tasks.lock_held(holder, stale_before).await? {
            Err(DomainError::conflict("Image has active task"))
        } else {
            Ok(())
        }
    }

    /// Writes the task, the job, the lock and the image's new status together.
    pub(super) async fn begin(
        &self,
        ctx: &RequestContext,
        image: &Image,
        spec: ImportSpec,
        task_type: &str,
        input: Value,
    ) -> Result<Task, DomainError> {
        let now = image::now();
        let task_id = uuid::Uuid::new_v4().to_string();
        let task = Task {
            id: task_id.clone(),
            task_type: task_type.to_owned(),
            status: TaskStatus::Pending,
            owner: ctx.project_id.clone().unwrap_or_default(),
            expires_at: None,
            created_at: now,
            updated_at: now,
            image_id: Some(image.id.to_string()),
            request_id: Some(ctx.request_id.clone()),
            user_id: ctx.user_id.clone(),
            input: Some(input),
            result: None,
            message: String::new(),
        };
        let named: Vec<&str> = spec.store_ids().collect();
        let importing = merge_store_list(
            image
                .properties
                .get(props::IMPORTING_TO)
                .map(String::as_str),
            &named,
            &[],
        );
        let failed = merge_store_list(
            image
                .properties
                .get(props::FAILED_IMPORT)
                .map(String::as_str),
            &[],
            &named,
        );
        let mut set = vec![(props::IMPORT_TASK.to_owned(), task_id.clone())];
        // A registered location is no import into stores: no store lists.
        if !matches!(spec.method, ImportMethod::LocationImport { .. }) {
            set.push((props::IMPORTING_TO.to_owned(), importing));
            set.push((props::FAILED_IMPORT.to_owned(), failed));
        }
        // Data staged on one node's disk can only be imported there.
        let node = match spec.method {
            ImportMethod::GlanceDirect => self
                .data
                .staged(&image.id)
                .await
                .map_err(DomainError::from)?
                .and_then(|s| s.node),
            // The caller's token lives in this node's memory only.
            ImportMethod::GlanceDownload { .. } => Some(self.node_id.to_string()),
            _ => None,
        };
        // inject_image_metadata: the operator's properties, unless the caller has a role the
        // plugin ignores (copy-image and registered locations run no plugins).
        let plugins_run = !matches!(
            spec.method,
            ImportMethod::CopyImage | ImportMethod::LocationImport { .. }
        );
        if plugins_run
            && self.plugin_enabled("inject_image_metadata")
            && !ctx
                .roles
                .iter()
                .any(|r| self.config.inject_ignore_roles.contains(r))
        {
            set.extend(
                self.config
                    .inject
                    .iter()
                    .filter(|(key, _)| !key.starts_with(crate::domain::schema::RESERVED_PREFIX))
                    .cloned(),
            );
        }
        let (from_status, to_status) = match spec.method {
            ImportMethod::GlanceDirect => ("uploading", Some("importing")),
            ImportMethod::WebDownload { .. } | ImportMethod::GlanceDownload { .. } => {
                ("queued", Some("importing"))
            }
            ImportMethod::CopyImage => ("active", None),
            ImportMethod::LocationImport { .. } => ("queued", None),
        };
        let start = ImportStart {
            task: task.clone(),
            spec: spec.to_json(),
            node,
            from_status,
            to_status,
            set,
            remove: vec![props::STAGE_HOST.to_owned()],
            stale_before: now - ChronoDuration::minutes(LOCK_EXPIRY_MINUTES),
        };
        match self.tasks.begin_import(&image.id, &start).await? {
            ImportBegun::Started { preempted } => {
                if let Some(old) = preempted {
                    tracing::warn!(image.id = %image.id, task.id = %old, "broke an expired import lock");
                }
                tracing::info!(image.id = %image.id, task.id = %task_id,
                    method = spec.method.name(), "import queued");
                self.images.notify_task(ctx, "task.create", &task);
                // The image as the import left it (Glance's flow saves the same changes).
                if self.images.events().enabled("image.update") {
                    let mut started = image.clone();
                    if let Some(status) = start.to_status.and_then(ImageStatus::parse) {
                        started.status = status;
                    }
                    started.properties.extend(start.set.iter().cloned());
                    for key in &start.remove {
                        started.properties.remove(key);
                    }
                    started.updated_at = now;
                    self.images.notify_image(ctx, "image.update", &started);
                }
                self.wake.notify_one();
                Ok(task)
            }
            ImportBegun::Locked => Err(DomainError::conflict("Image has active task")),
            ImportBegun::StatusChanged => Err(DomainError::conflict(format!(
                "New operation on image '{}' is not permitted as prior operation is still in progress",
                image.id
            ))),
            ImportBegun::Gone => Err(DomainError::image_not_found(image.id.as_str())),
        }
    }
}

/// glance-download's own fields (400s), and its default interface written into the body.
fn check_remote_image(body: &mut Value) -> Result<(), DomainError> {
    let method = &mut body["method"];
    let text =
        |method: &Value, key: &str| method.get(key).and_then(Value::as_str).map(str::to_owned);
    if text(method, "glance_region").is_none() {
        return Err(DomainError::bad_request(
            "'glance_region' needs to be set for glance-download import method",
        ));
    }
    let Some(image_id) = text(method, "glance_image_id") else {
        return Err(DomainError::bad_request(
            "'glance_image_id' needs to be set for glance-download import method",
        ));
    };
    if uuid::Uuid::parse_str(&image_id).is_err() {
        return Err(DomainError::bad_request(format!(
            "Remote image id does not look like a UUID: {image_id}"
        )));
    }
    if text(method, "glance_service_interface").is_none() {
        if let Some(method) = method.as_object_mut() {
            method.insert("glance_service_interface".into(), json!("public"));
        }
    }
    Ok(())
}

/// Glance's status and format checks, in its order (all 409).
fn check_status(image: &Image, method: &str) -> Result<(), DomainError> {
    let status = image.status;
    let refusal = if status == ImageStatus::Active && method != "copy-image" {
        Some("Image with status active cannot be target for import".to_owned())
    } else if status != ImageStatus::Active && method == "copy-image" {
        Some("Only images with status active can be targeted for copying".to_owned())
    } else if status != ImageStatus::Queued && matches!(method, "web-download" | "glance-download")
    {
        Some(format!(
            "Image needs to be in 'queued' state to use '{method}' method"
        ))
    } else if status != ImageStatus::Uploading && method == "glance-direct" {
        Some("Image needs to be staged before 'glance-direct' method can be used".to_owned())
    } else if image.container_format.is_none() {
        Some("'container_format' needs to be set before import".to_owned())
    } else if image.disk_format.is_none() {
        Some("'disk_format' needs to be set before import".to_owned())
    } else {
        None
    };
    refusal.map_or(Ok(()), |message| Err(DomainError::conflict(message)))
}
