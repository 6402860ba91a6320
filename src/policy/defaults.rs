//! Glance's default rules (2026.2, secure RBAC), by name: the check strings an operator's
//! policy file overrides one by one, the scopes they apply to, and the rule each replaced
//! (consulted only with `enforce_new_defaults = false`).

/// One built-in rule.
#[derive(Debug, Clone, Copy)]
pub struct Default {
    pub name: &'static str,
    pub check: &'static str,
    /// Token scopes the rule accepts (`enforce_scope`); empty for base rules, which apply to
    /// any.
    pub scopes: &'static [&'static str],
    /// The rule before secure RBAC, or-ed in when `enforce_new_defaults` is false.
    pub deprecated: Option<&'static str>,
    pub description: &'static str,
}

const PROJECT: &[&str] = &["project"];

const ADMIN: &str = "rule:context_is_admin";
const DEFAULT: &str = "rule:default";
const ADMIN_OR_MEMBER: &str = concat!(
    "rule:context_is_admin or (",
    "role:member and project_id:%(project_id)s",
    ")"
);
const ADMIN_OR_READER: &str = concat!(
    "rule:context_is_admin or (",
    "role:reader and project_id:%(project_id)s",
    ")"
);
const ADMIN_OR_READER_GET_IMAGE: &str = concat!(
    "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or ",
    "project_id:%(member_id)s or 'community':%(visibility)s or ",
    "'public':%(visibility)s or 'shared':%(visibility)s))"
);
/// Glance's `ADMIN_OR_PROJECT_READER_GET_NAMESPACE`: public namespaces are readable by any
/// reader, private ones by the owning project's.
const ADMIN_OR_READER_GET_NAMESPACE: &str = concat!(
    "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or ",
    "'public':%(visibility)s))"
);
const METADEF_ADMIN: &str = "rule:metadef_admin";
const METADEF_DEFAULT: &str = "rule:metadef_default";

const fn metadef_read(name: &'static str, description: &'static str) -> Default {
    image(
        name,
        ADMIN_OR_READER_GET_NAMESPACE,
        Some(METADEF_DEFAULT),
        description,
    )
}

const fn metadef_write(name: &'static str, description: &'static str) -> Default {
    image(name, METADEF_ADMIN, None, description)
}

const ADMIN_OR_MEMBER_DOWNLOAD: &str = concat!(
    "rule:context_is_admin or (role:member and (project_id:%(project_id)s or ",
    "project_id:%(member_id)s or 'community':%(visibility)s or ",
    "'public':%(visibility)s or 'shared':%(visibility)s))"
);
const ADMIN_OR_MEMBER_CREATE: &str = concat!(
    "rule:context_is_admin or (",
    "role:member and project_id:%(project_id)s",
    " and project_id:%(owner)s)"
);
const ADMIN_OR_SHARED_MEMBER: &str =
    "rule:context_is_admin or (role:member and project_id:%(member_id)s)";
const ADMIN_OR_READER_OR_SHARED_MEMBER: &str = concat!(
    "rule:context_is_admin or role:reader and (project_id:%(project_id)s or ",
    "project_id:%(member_id)s)"
);
const SERVICE: &str = "rule:service_api";
const SERVICE_OR_MEMBER: &str = concat!(
    "rule:service_api or (",
    "role:member and project_id:%(project_id)s",
    " and project_id:%(owner)s)"
);
const ADMIN_OR_SERVICE: &str = "rule:context_is_admin or rule:service_api";

const fn image(
    name: &'static str,
    check: &'static str,
    deprecated: Option<&'static str>,
    description: &'static str,
) -> Default {
    Default {
        name,
        check,
        scopes: PROJECT,
        deprecated,
        description,
    }
}

/// Every built-in rule, base rules first.
pub const DEFAULTS: &[Default] = &[
    Default {
        name: "default",
        check: "",
        scopes: &[],
        deprecated: Some(ADMIN),
        description: "Rules named by nothing else fall back to this one.",
    },
    Default {
        name: "context_is_admin",
        check: "role:admin",
        scopes: &[],
        deprecated: None,
        description: "Who is an administrator (is_admin:True).",
    },
    Default {
        name: "service_api",
        check: "role:service or role:admin",
        scopes: &[],
        deprecated: None,
        description: "Service-to-service calls (Nova, Cinder).",
    },
    image(
        "add_image",
        ADMIN_OR_MEMBER_CREATE,
        Some(DEFAULT),
        "Create an image: POST /v2/images",
    ),
    image(
        "delete_image",
        ADMIN_OR_MEMBER,
        Some(DEFAULT),
        "Delete an image: DELETE /v2/images/{image_id}",
    ),
    image(
        "get_image",
        ADMIN_OR_READER_GET_IMAGE,
        Some(DEFAULT),
        "Show an image: GET /v2/images/{image_id}",
    ),
    image(
        "get_images",
        ADMIN_OR_READER,
        Some(DEFAULT),
        "List images: GET /v2/images",
    ),
    image(
        "modify_image",
        ADMIN_OR_MEMBER,
        Some(DEFAULT),
        "Update an image: PATCH /v2/images/{image_id}",
    ),
    image("publicize_image", ADMIN, None, "Make an image public"),
    image(
        "communitize_image",
        ADMIN_OR_MEMBER,
        Some(DEFAULT),
        "Make an image community",
    ),
    image(
        "download_image",
        ADMIN_OR_MEMBER_DOWNLOAD,
        Some(DEFAULT),
        "Download image data: GET /v2/images/{image_id}/file",
    ),
    image(
        "download_from_store",
        ADMIN_OR_MEMBER_DOWNLOAD,
        None,
        "Download image data from one store",
    ),
    image(
        "upload_image",
        ADMIN_OR_MEMBER,
        Some(DEFAULT),
        "Upload image data: PUT /v2/images/{image_id}/file",
    ),
    image(
        "delete_image_location",
        ADMIN,
        Some(DEFAULT),
        "Remove a location, or one store's copy: DELETE /v2/stores/{store_id}/{image_id}",
    ),
    image(
        "get_image_location",
        ADMIN_OR_READER,
        Some(DEFAULT),
        "See an image's locations",
    ),
    image(
        "set_image_location",
        ADMIN_OR_MEMBER,
        Some(DEFAULT),
        "Set an image's locations",
    ),
    image(
        "add_image_location",
        SERVICE_OR_MEMBER,
        None,
        "Add a location: POST /v2/images/{image_id}/locations",
    ),
    image(
        "fetch_image_location",
        SERVICE,
        None,
        "List locations: GET /v2/images/{image_id}/locations",
    ),
    image(
        "add_member",
        ADMIN_OR_MEMBER,
        Some(DEFAULT),
        "Share an image: POST /v2/images/{image_id}/members",
    ),
    image(
        "delete_member",
        ADMIN_OR_MEMBER,
        Some(DEFAULT),
        "Stop sharing an image: DELETE /v2/images/{image_id}/members/{member_id}",
    ),
    image(
        "get_member",
        ADMIN_OR_READER_OR_SHARED_MEMBER,
        Some(DEFAULT),
        "Show a member: GET /v2/images/{image_id}/members/{member_id}",
    ),
    image(
        "get_members",
        ADMIN_OR_READER_OR_SHARED_MEMBER,
        Some(DEFAULT),
        "List members: GET /v2/images/{image_id}/members",
    ),
    image(
        "modify_member",
        ADMIN_OR_SHARED_MEMBER,
        Some(DEFAULT),
        "Accept or reject a share: PUT /v2/images/{image_id}/members/{member_id}",
    ),
    image(
        "manage_image_cache",
        ADMIN,
        Some(DEFAULT),
        "Manage the image cache",
    ),
    image(
        "deactivate",
        ADMIN_OR_MEMBER,
        Some(DEFAULT),
        "Deactivate an image: POST /v2/images/{image_id}/actions/deactivate",
    ),
    image(
        "reactivate",
        ADMIN_OR_MEMBER,
        Some(DEFAULT),
        "Reactivate an image: POST /v2/images/{image_id}/actions/reactivate",
    ),
    image(
        "copy_image",
        ADMIN,
        None,
        "Copy an image between stores (import method copy-image)",
    ),
    image(
        "list_cached_nodes",
        ADMIN,
        None,
        "List the nodes caching an image",
    ),
    image(
        "stores_info_detail",
        ADMIN_OR_SERVICE,
        Some(ADMIN),
        "Show stores in detail: GET /v2/info/stores/detail",
    ),
    image(
        "cache_image",
        ADMIN,
        Some("rule:manage_image_cache"),
        "Queue an image for caching",
    ),
    image(
        "cache_list",
        ADMIN,
        Some("rule:manage_image_cache"),
        "List the image cache",
    ),
    image(
        "cache_delete",
        ADMIN,
        Some("rule:manage_image_cache"),
        "Remove an image from the cache",
    ),
    image("cache_clean", ADMIN, None, "Empty the image cache"),
    image("cache_prune", ADMIN, None, "Prune the image cache"),
    image("get_task", DEFAULT, Some(DEFAULT), "Show a task"),
    image("get_tasks", DEFAULT, Some(DEFAULT), "List tasks"),
    image("add_task", DEFAULT, Some(DEFAULT), "Create a task"),
    image("modify_task", DEFAULT, None, "Update a task"),
    image("tasks_api_access", ADMIN, None, "Use the tasks API"),
    Default {
        name: "metadef_default",
        check: "",
        scopes: &[],
        deprecated: None,
        description: "The metadefs API's rules before secure RBAC.",
    },
    Default {
        name: "metadef_admin",
        check: ADMIN,
        scopes: &[],
        deprecated: None,
        description: "Who may change metadata definitions.",
    },
    metadef_read(
        "get_metadef_namespace",
        "Show a namespace: GET /v2/metadefs/namespaces/{namespace_name}",
    ),
    image(
        "get_metadef_namespaces",
        ADMIN_OR_READER,
        Some(METADEF_DEFAULT),
        "List namespaces: GET /v2/metadefs/namespaces",
    ),
    metadef_write(
        "modify_metadef_namespace",
        "Replace a namespace: PUT /v2/metadefs/namespaces/{namespace_name}",
    ),
    metadef_write(
        "add_metadef_namespace",
        "Create a namespace: POST /v2/metadefs/namespaces",
    ),
    metadef_write(
        "delete_metadef_namespace",
        "Delete a namespace, or all its objects, properties or tags: \
         DELETE /v2/metadefs/namespaces/{namespace_name}[/objects|/properties|/tags]",
    ),
    metadef_read(
        "get_metadef_object",
        "Show an object: GET /v2/metadefs/namespaces/{namespace_name}/objects/{object_name}",
    ),
    metadef_read(
        "get_metadef_objects",
        "List objects: GET /v2/metadefs/namespaces/{namespace_name}/objects",
    ),
    metadef_write(
        "modify_metadef_object",
        "Replace an object: PUT /v2/metadefs/namespaces/{namespace_name}/objects/{object_name}",
    ),
    metadef_write(
        "add_metadef_object",
        "Create an object: POST /v2/metadefs/namespaces/{namespace_name}/objects",
    ),
    metadef_write(
        "delete_metadef_object",
        "Delete an object: DELETE /v2/metadefs/namespaces/{namespace_name}/objects/{object_name}",
    ),
    metadef_read(
        "list_metadef_resource_types",
        "List resource types: GET /v2/metadefs/resource_types",
    ),
    metadef_read(
        "get_metadef_resource_type",
        "List a namespace's resource type associations: \
         GET /v2/metadefs/namespaces/{namespace_name}/resource_types",
    ),
    metadef_write(
        "add_metadef_resource_type_association",
        "Associate a resource type: POST /v2/metadefs/namespaces/{namespace_name}/resource_types",
    ),
    metadef_write(
        "remove_metadef_resource_type_association",
        "Dissociate a resource type: \
         DELETE /v2/metadefs/namespaces/{namespace_name}/resource_types/{name}",
    ),
    metadef_read(
        "get_metadef_property",
        "Show a property: GET /v2/metadefs/namespaces/{namespace_name}/properties/{property_name}",
    ),
    metadef_read(
        "get_metadef_properties",
        "List properties: GET /v2/metadefs/namespaces/{namespace_name}/properties",
    ),
    metadef_write(
        "modify_metadef_property",
        "Replace a property: \
         PUT /v2/metadefs/namespaces/{namespace_name}/properties/{property_name}",
    ),
    metadef_write(
        "add_metadef_property",
        "Create a property: POST /v2/metadefs/namespaces/{namespace_name}/properties",
    ),
    metadef_write(
        "remove_metadef_property",
        "Delete a property: \
         DELETE /v2/metadefs/namespaces/{namespace_name}/properties/{property_name}",
    ),
    metadef_read(
        "get_metadef_tag",
        "Show a tag: GET /v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}",
    ),
    metadef_read(
        "get_metadef_tags",
        "List tags: GET /v2/metadefs/namespaces/{namespace_name}/tags",
    ),
    metadef_write(
        "modify_metadef_tag",
        "Rename a tag: PUT /v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}",
    ),
    metadef_write(
        "add_metadef_tag",
        "Create a tag: POST /v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}",
    ),
    metadef_write(
        "add_metadef_tags",
        "Create tags: POST /v2/metadefs/namespaces/{namespace_name}/tags",
    ),
    metadef_write(
        "delete_metadef_tag",
        "Delete a tag: DELETE /v2/metadefs/namespaces/{namespace_name}/tags/{tag_name}",
    ),
    metadef_write(
        "delete_metadef_tags",
        "Delete all tags: DELETE /v2/metadefs/namespaces/{namespace_name}/tags",
    ),
];
