//! The tasks API (`tasks_api_access`, administrators by default): a task shown, tasks
//! listed with Glance's filters, sort and paging, an image's tasks (any reader of the image),
//! and the task schemas.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::ImportService;
use crate::domain::image;
use crate::domain::policy::Action;
use crate::domain::tasks::{Task, TaskQuery, TaskStatus, TASK_SORT_KEYS, TASK_TYPES};
use crate::domain::{DomainError, RequestContext};

/// Glance's task timestamps in the task views.
fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The raw form `GET /v2/images/{id}/tasks` shows (Glance's database row, no `Z`).
fn raw_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// A task's full view (`GET /v2/tasks/{id}`, `POST /v2/tasks`).
pub fn task_view(task: &Task) -> Value {
    let mut view = stub_view(task);
    let object = view.as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut object: Map<String, Value> = object;
    object.insert("input".into(), task.input.clone().unwrap_or(Value::Null));
    object.insert("result".into(), task.result.clone().unwrap_or(Value::Null));
    object.insert("message".into(), json!(task.message));
    for (key, value) in [
        ("image_id", &task.image_id),
        ("request_id", &task.request_id),
        ("user_id", &task.user_id),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            object.insert(key.into(), json!(value));
        }
    }
    Value::Object(object)
}

/// A task as `GET /v2/tasks` lists it.
fn stub_view(task: &Task) -> Value {
    let mut view = json!({
        "id": task.id,
        "type": task.task_type,
        "status": task.status.as_str(),
        "owner": task.owner,
        "created_at": timestamp(task.created_at),
        "updated_at": timestamp(task.updated_at),
        "self": format!("/v2/tasks/{}", task.id),
        "schema": "/v2/schemas/task",
    });
    if let (Some(expires), Some(object)) = (task.expires_at, view.as_object_mut()) {
        object.insert("expires_at".into(), json!(timestamp(expires)));
    }
    view
}

/// A task as `GET /v2/images/{id}/tasks` shows it: every column.
fn raw_view(task: &Task) -> Value {
    json!({
        "id": task.id,
        "type": task.task_type,
        "status": task.status.as_str(),
        "owner": task.owner,
        "expires_at": task.expires_at.map(raw_timestamp),
        "created_at": raw_timestamp(task.created_at),
        "updated_at": raw_timestamp(task.updated_at),
        "deleted_at": Value::Null,
        "deleted": false,
        "image_id": task.image_id,
        "request_id": task.request_id,
        "user_id": task.user_id,
        "input": task.input,
        "result": task.result,
        "message": task.message,
    })
}

/// The task properties of Glance's schema (`input`, `result`, `message` only in the item).
fn task_properties(full: bool) -> Value {
    let mut properties = json!({
        "id": {"description": "An identifier for the task", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$", "type": "string"},
        "type": {"description": "The type of task represented by this content", "enum": ["import", "api_image_import", "location_import"], "type": "string"},
        "status": {"description": "The current status of this task", "enum": ["pending", "processing", "success", "failure"], "type": "string"},
        "owner": {"description": "An identifier for the owner of this task", "type": "string"},
        "image_id": {"description": "Image associated with the task", "type": "string"},
        "request_id": {"description": "Human-readable informative request-id", "type": "string"},
        "user_id": {"description": "User associated with the task", "type": "string"},
        "expires_at": {"description": "Datetime when this resource would be subject to removal", "type": ["null", "string"]},
        "created_at": {"description": "Datetime when this resource was created", "type": "string"},
        "updated_at": {"description": "Datetime when this resource was updated", "type": "string"},
        "self": {"readOnly": true, "type": "string"},
        "schema": {"readOnly": true, "type": "string"},
    });
    if let (true, Some(object)) = (full, properties.as_object_mut()) {
        object.insert("input".into(), json!({"description": "The parameters required by task, JSON blob", "type": ["null", "object"]}));
        object.insert("result".into(), json!({"description": "The result of current task, JSON blob", "type": ["null", "object"]}));
        object.insert("message".into(), json!({"description": "Human-readable informative message only included when appropriate (usually on failure)", "type": "string"}));
    }
    properties
}

/// `GET /v2/schemas/task`.
pub fn task_schema() -> Value {
    json!({"name": "task", "properties": task_properties(true)})
}

/// `GET /v2/schemas/tasks`.
pub fn tasks_schema() -> Value {
    json!({
        "name": "tasks",
        "properties": {
            "tasks": {"type": "array", "items": {"name": "task", "properties": task_properties(false)}},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    })
}

impl ImportService {
    fn task_access(&self, ctx: &RequestContext) -> Result<(), DomainError> {
        self.images.authorize_global(ctx, Action::TasksApiAccess)
    }

    fn sees(&self, ctx: &RequestContext, task: &Task) -> bool {
        ctx.is_admin || task.owner.is_empty() || ctx.project_id.as_deref() == Some(&task.owner)
    }

    /// `GET /v2/tasks/{id}`.
    pub async fn task(&self, ctx: &RequestContext, id: &str) -> Result<Value, DomainError> {
        self.task_access(ctx)?;
        match self.tasks.task(id).await? {
            Some(task) if self.sees(ctx, &task) => Ok(task_view(&task)),
            _ => Err(DomainError::not_found(format!("Could not find task {id}"))),
        }
    }

    /// `DELETE /v2/tasks/{id}`: never allowed (tasks expire), after the access check.
    pub fn delete_task(&self, ctx: &RequestContext) -> Result<(), DomainError> {
        self.task_access(ctx)
    }

    /// `GET /v2/images/{id}/tasks`: the image's unexpired tasks, for whoever sees the image.
    pub async fn image_tasks(&self, ctx: &RequestContext, id: &str) -> Result<Value, DomainError> {
        let image = self.images.get(ctx, id).await?;
        self.tasks.expire_tasks(image::now()).await?;
        let owner = if ctx.is_admin {
            None
        } else {
            ctx.project_id.as_deref()
        };
        let tasks = self.tasks.image_tasks(image.id.as_str(), owner).await?;
        Ok(json!({ "tasks": tasks.iter().map(raw_view).collect::<Vec<_>>() }))
    }

    /// `GET /v2/tasks`.
    pub async fn list_tasks(
        &self,
        ctx: &RequestContext,
        pairs: &[(String, String)],
        page: crate::domain::listing::PageLimits,
    ) -> Result<Value, DomainError> {
        self.task_access(ctx)?;
        let mut query = TaskQuery {
            owner: (!ctx.is_admin).then(|| ctx.project_id.clone().unwrap_or_default()),
            status: None,
            task_type: None,
            sort_key: "created_at".to_owned(),
            ascending: false,
            limit: page.default,
            marker: None,
        };
        let mut marker_id = None;
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => {
                    let limit: i64 = value
                        .parse()
                        .map_err(|_| DomainError::bad_request("limit param must be an integer"))?;
                    if limit < 0 {
                        return Err(DomainError::bad_request("limit param must be positive"));
                    }
                    query.limit = u32::try_from(limit).unwrap_or(u32::MAX).min(page.max);
                }
                "marker" => {
                    if uuid::Uuid::parse_str(value).is_err() {
                        return Err(DomainError::bad_request("Invalid marker format"));
                    }
                    marker_id = Some(value.clone());
                }
                "sort_key" => {
                    if !TASK_SORT_KEYS.contains(&value.as_str()) {
                        return Err(DomainError::bad_request("Sort key supplied was not valid."));
                    }
                    query.sort_key = value.clone();
                }
                "sort_dir" => {
                    query.ascending = match value.as_str() {
                        "asc" => true,
                        "desc" => false,
                        _ => {
                            return Err(DomainError::bad_request(format!(
                                "Invalid sort direction: {value}"
                            )))
                        }
                    }
                }
                "status" => {
                    query.status = Some(TaskStatus::parse(value).ok_or_else(|| {
                        DomainError::bad_request(format!("Invalid status value: {value}"))
                    })?);
                }
                "type" => {
                    if value != "import" {
                        return Err(DomainError::bad_request(format!(
                            "Invalid type value: {value}"
                        )));
                    }
                    query.task_type = Some(value.clone());
                }
                // Glance ignores filters that name no task attribute.
                _ => {}
            }
        }
        self.tasks.expire_tasks(image::now()).await?;
        if let Some(id) = marker_id {
            let marker = self.tasks.task(&id).await?.ok_or_else(|| {
                DomainError::bad_request(format!("Task with the given id {id} was not found"))
            })?;
            if !self.sees(ctx, &marker) {
                return Err(DomainError::forbidden(format!(
                    "Forbidding request, task {id} is not visible"
                )));
            }
            query.marker = Some(marker);
        }
        let tasks = if query.limit == 0 {
            Vec::new()
        } else {
            self.tasks.tasks(&query).await?
        };
        let query_text = |marker: Option<&str>| {
            let mut serializer = form_urlencoded::Serializer::new(String::new());
            for (key, value) in pairs.iter().filter(|(k, _)| k != "marker") {
                serializer.append_pair(key, value);
            }
            if let Some(marker) = marker {
                serializer.append_pair("marker", marker);
            }
            let text = serializer.finish();
            if text.is_empty() {
                "/v2/tasks".to_owned()
            } else {
                format!("/v2/tasks?{text}")
            }
        };
        let mut answer = json!({
            "tasks": tasks.iter().map(stub_view).collect::<Vec<_>>(),
            "first": query_text(None),
            "schema": "/v2/schemas/tasks",
        });
        if let (Some(last), true) = (tasks.last(), tasks.len() as u32 == query.limit) {
            if let Some(object) = answer.as_object_mut() {
                object.insert("next".into(), json!(query_text(Some(&last.id))));
            }
        }
        Ok(answer)
    }
}

impl ImportService {
    /// `POST /v2/tasks`: the legacy `import` task — an image created from `image_properties`
    /// and its data fetched from `import_from` (http or https, through the same filter and
    /// job as web-download).
    pub async fn create_task(
        &self,
        ctx: &RequestContext,
        body: &Value,
    ) -> Result<Task, DomainError> {
        self.task_access(ctx)?;
        let task_type = body
            .get("type")
            .ok_or_else(|| DomainError::bad_request("Task 'type' is required"))?;
        let input = body
            .get("input")
            .ok_or_else(|| DomainError::bad_request("Task 'input' is required"))?;
        let Some(task_type) = task_type.as_str().filter(|t| TASK_TYPES.contains(t)) else {
            return Err(DomainError::bad_request(format!(
                "Provided object does not match schema 'task': {task_type} is not one of {TASK_TYPES:?}"
            )));
        };
        let Value::Object(input) = input else {
            return Err(DomainError::bad_request(format!(
                "Provided object does not match schema 'task': {input} is not of type 'object'"
            )));
        };
        if task_type != "import" {
            return Err(DomainError::bad_request(format!(
                "Provided type of task is unsupported: {task_type}"
            )));
        }
        let import_from = input
            .get("import_from")
            .and_then(Value::as_str)
            .unwrap_or("");
        let scheme = import_from
            .split("://")
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if import_from.is_empty() {
            return Err(DomainError::bad_request("Invalid location: None"));
        }
        if import_from.contains("://") && matches!(scheme.as_str(), "file" | "filesystem") {
            return Err(DomainError::bad_request(
                "File based imports are not allowed. Please use a non-local source of image data.",
            ));
        }
        if !import_from.contains("://") || !matches!(scheme.as_str(), "http" | "https") {
            return Err(DomainError::bad_request(
                "The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http']",
            ));
        }
        if self.filter.check(import_from).is_err() {
            return Err(DomainError::bad_request(format!(
                "URI for legacy import task does not pass filtering: {import_from}"
            )));
        }
        let properties = match input.get("image_properties") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(properties)) => properties.clone(),
            Some(_) => {
                return Err(DomainError::bad_request(
                    "Task input 'image_properties' must be an object.",
                ))
            }
        };
        let image = self.images.create(ctx, &properties).await?;
        let spec = super::ImportSpec {
            method: super::ImportMethod::WebDownload {
                uri: import_from.to_owned(),
            },
            stores: if self.data.stores().multi() {
                vec![Some(self.data.stores().default_entry().id.clone())]
            } else {
                vec![None]
            },
            all_stores_must_succeed: true,
        };
        self.begin(ctx, &image, spec, "import", Value::Object(input.clone()))
            .await
    }
}
