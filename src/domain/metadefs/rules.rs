//! Glance's metadef rules that are not SQL: who sees a namespace, which policy answers are
//! 404 rather than 403, and the messages clients match on.

use chrono::{DateTime, Utc};

use crate::domain::error::{DomainError, Refusal};

/// The policy rules of the metadefs API, by Glance's names.
pub(super) mod rule {
    pub const GET_NAMESPACE: &str = "get_metadef_namespace";
    pub const GET_NAMESPACES: &str = "get_metadef_namespaces";
    pub const ADD_NAMESPACE: &str = "add_metadef_namespace";
    pub const MODIFY_NAMESPACE: &str = "modify_metadef_namespace";
    pub const DELETE_NAMESPACE: &str = "delete_metadef_namespace";
    pub const GET_OBJECT: &str = "get_metadef_object";
    pub const GET_OBJECTS: &str = "get_metadef_objects";
    pub const ADD_OBJECT: &str = "add_metadef_object";
    pub const MODIFY_OBJECT: &str = "modify_metadef_object";
    pub const DELETE_OBJECT: &str = "delete_metadef_object";
    pub const LIST_RESOURCE_TYPES: &str = "list_metadef_resource_types";
    pub const GET_RESOURCE_TYPE: &str = "get_metadef_resource_type";
    pub const ADD_ASSOCIATION: &str = "add_metadef_resource_type_association";
    pub const REMOVE_ASSOCIATION: &str = "remove_metadef_resource_type_association";
    pub const GET_PROPERTY: &str = "get_metadef_property";
    pub const GET_PROPERTIES: &str = "get_metadef_properties";
    pub const ADD_PROPERTY: &str = "add_metadef_property";
    pub const MODIFY_PROPERTY: &str = "modify_metadef_property";
    pub const REMOVE_PROPERTY: &str = "remove_metadef_property";
    pub const GET_TAG: &str = "get_metadef_tag";
    pub const GET_TAGS: &str = "get_metadef_tags";
    pub const ADD_TAG: &str = "add_metadef_tag";
    pub const ADD_TAGS: &str = "add_metadef_tags";
    pub const MODIFY_TAG: &str = "modify_metadef_tag";
    pub const DELETE_TAG: &str = "delete_metadef_tag";
    pub const DELETE_TAGS: &str = "delete_metadef_tags";
}

/// oslo.utils' `isotime`: whole seconds, `Z`.
pub fn isotime(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// How a request words a namespace it cannot find (Glance's controllers differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Miss {
    /// "Namespace X not found", whether missing or not visible.
    Short,
    /// The database's words when missing, the short form when not visible (objects).
    Database,
    /// The database's words when missing, webob's bare 404 when not visible (show).
    Show,
}

impl Miss {
    pub(super) fn missing(self, name: &str) -> DomainError {
        match self {
            Miss::Short => namespace_not_found(name),
            Miss::Database | Miss::Show => DomainError::not_found(format!(
                "Metadata definition namespace={name} was not found."
            )),
        }
    }

    pub(super) fn hidden(self, name: &str) -> DomainError {
        match self {
            Miss::Short | Miss::Database => namespace_not_found(name),
            Miss::Show => DomainError::plain(Refusal::NotFound),
        }
    }
}

pub(super) fn namespace_not_found(name: &str) -> DomainError {
    DomainError::not_found(format!("Namespace {name} not found"))
}

pub(super) fn protected(kind: &str, name: &str) -> DomainError {
    DomainError::forbidden(format!(
        "Metadata definition {kind} {name} is protected and cannot be deleted."
    ))
}

pub(super) fn duplicate_namespace(name: &str) -> DomainError {
    DomainError::conflict(format!(
        "The metadata definition namespace={name} already exists."
    ))
}

pub(super) fn duplicate_object(name: &str, namespace: &str) -> DomainError {
    DomainError::conflict(format!(
        "A metadata definition object with name={name} already exists in namespace={namespace}."
    ))
}

pub(super) fn duplicate_property(name: &str, namespace: &str) -> DomainError {
    DomainError::conflict(format!(
        "A metadata definition property with name={name} already exists in \
         namespace={namespace}."
    ))
}

pub(super) fn duplicate_tag(name: &str, namespace: &str) -> DomainError {
    DomainError::conflict(format!(
        "A metadata tag with name={name} already exists in namespace={namespace}. (Please \
         note that metadata tag names are case insensitive)."
    ))
}

pub(super) fn duplicate_association(resource_type: &str, namespace: &str) -> DomainError {
    DomainError::conflict(format!(
        "The metadata definition resource-type association of resource-type={resource_type} \
         to namespace={namespace} already exists."
    ))
}

/// A replace that would give the thing the name of another in the namespace.
pub(super) fn duplicate_on_update(kind: &str, name: &str, namespace: &str) -> DomainError {
    DomainError::conflict(format!(
        "Invalid update. It would result in a duplicate metadata definition {kind} with the \
         same name={name} in namespace={namespace}."
    ))
}

/// The first name that appears twice, if any.
pub(super) fn first_repeated<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().find(|name| !seen.insert(*name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_are_found() {
        assert_eq!(first_repeated(["a", "b", "a"]), Some("a"));
        assert_eq!(first_repeated(["a", "b"]), None);
    }

    #[test]
    fn isotime_has_whole_seconds() {
        let at = DateTime::parse_from_rfc3339("2026-12-07T02:40:01.5+00:00")
            .map(|t| t.with_timezone(&Utc));
        assert_eq!(
            at.map(isotime).ok().as_deref(),
            Some("2026-12-07T02:40:01Z")
        );
    }
}
