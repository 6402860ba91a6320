//! Glance's property protections (`glance/common/property_utils.py`): which callers may
//! create, read, update and delete which extra properties, by rules that an operator writes
//! as regular expressions over property names. This module owns the rules and the decision;
//! reading the file is `config::protections`, applying the decision is `ImageService`.
//! Core attributes (`name`, `visibility` …) are never subject to these rules.

use std::collections::BTreeMap;

use regex_lite::Regex;

use super::context::RequestContext;
use super::error::{DomainError, DomainResult, Refusal};
use super::image::Image;
use super::image_rules::is_schema_property;
use super::patch::{Change, Op, PatchDialect};
use super::ImageService;

/// The four operations a protection rule lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Read,
    Update,
    Delete,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::Create,
        Operation::Read,
        Operation::Update,
        Operation::Delete,
    ];

    /// The option name in the protection file.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// `property_protection_rule_format`: how an operation's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleFormat {
    /// A comma-separated list of role names.
    #[default]
    Roles,
    /// The name of one rule of the policy engine.
    Policies,
}

/// Who may perform one operation on the properties a section matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Permission {
    /// `@`.
    Everyone,
    /// `!`, or an empty value (Glance logs a warning and lets no one).
    NoOne,
    /// Any of these roles, lower-cased (the context's roles are lower-cased too).
    Roles(Vec<String>),
    /// Policy rule `name` allows the caller.
    Policy(String),
}

/// One section of the file: a pattern and a permission per operation.
#[derive(Debug, Clone)]
struct Section {
    pattern: Regex,
    permissions: [Permission; 4],
}

/// The rules in force, in file order (the first section whose pattern matches decides).
#[derive(Debug, Clone)]
pub struct PropertyProtections {
    sections: Vec<Section>,
}

/// One section as read from the file: its name and its options (lower-cased names).
pub type RawSection = (String, Vec<(String, String)>);

/// Glance injects this section first so that its own `os_glance_*` properties stay usable
/// whatever the operator's rules say (Glance bug #2085321), and drops the operator's own
/// `os_glance…` sections.
const OS_GLANCE_SECTION: &str = "os_glance.*";

impl PropertyProtections {
    /// Builds the rules from the file's sections, refusing what Glance refuses at start-up:
    /// an invalid pattern, a missing operation, `@` with `!`, several policies in one value.
    pub fn from_sections(
        sections: &[RawSection],
        format: RuleFormat,
    ) -> Result<PropertyProtections, String> {
        let mut built = vec![Section {
            pattern: Regex::new(OS_GLANCE_SECTION).map_err(|e| e.to_string())?,
            permissions: [
                Permission::Everyone,
                Permission::Everyone,
                Permission::Everyone,
                Permission::Everyone,
            ],
        }];
        for (name, options) in sections {
            if name.starts_with("os_glance") {
                continue;
            }
            let pattern = Regex::new(name)
                .map_err(|e| format!("malformed property protection rule [{name}]: {e}"))?;
            let mut permissions = Vec::with_capacity(4);
            for op in Operation::ALL {
                let value = options
                    .iter()
                    .find(|(k, _)| k == op.as_str())
                    .map(|(_, v)| v.as_str())
                    .ok_or_else(|| format!("section [{name}] has no '{}' option", op.as_str()))?;
                permissions.push(permission(name, op, value, format)?);
            }
            let permissions: [Permission; 4] = permissions
                .try_into()
                .map_err(|_| format!("section [{name}]: wrong number of operations"))?;
            built.push(Section {
                pattern,
                permissions,
            });
        }
        Ok(PropertyProtections { sections: built })
    }

    /// Whether a caller holding `roles` may perform `op` on `property`. `policy_allows`
    /// evaluates a policy rule by name for the same caller (policies format only).
    /// A property that no section matches is refused to everyone, as in Glance; nobody is
    /// exempt, administrators included.
    pub fn allows(
        &self,
        property: &str,
        op: Operation,
        roles: &[String],
        policy_allows: &dyn Fn(&str) -> bool,
    ) -> bool {
        let Some(section) = self.sections.iter().find(|s| s.pattern.is_match(property)) else {
            return false;
        };
        match &section.permissions[op.index()] {
            Permission::Everyone => true,
            Permission::NoOne => false,
            Permission::Roles(allowed) => roles
                .iter()
                .any(|r| allowed.iter().any(|a| a == &r.to_lowercase())),
            Permission::Policy(rule) => policy_allows(rule),
        }
    }
}

fn permission(
    section: &str,
    op: Operation,
    value: &str,
    format: RuleFormat,
) -> Result<Permission, String> {
    let value = value.trim();
    if value.is_empty() {
        tracing::warn!(rule = %section, operation = op.as_str(),
            "property protection has no value for this operation: no one may perform it");
        return Ok(Permission::NoOne);
    }
    match format {
        RuleFormat::Policies => {
            if value.contains(',') {
                return Err(format!(
                    "[{section}] {}={value}: multiple policies are not allowed for one \
                     operation (combine them in the policy file)",
                    op.as_str()
                ));
            }
            Ok(match value {
                "!" => Permission::NoOne,
                "@" => Permission::Everyone,
                rule => Permission::Policy(rule.to_owned()),
            })
        }
        RuleFormat::Roles => {
            let roles: Vec<&str> = value.split(',').map(str::trim).collect();
            let (everyone, no_one) = (roles.contains(&"@"), roles.contains(&"!"));
            if everyone && no_one {
                return Err(format!(
                    "[{section}] {}={value}: '@' and '!' are mutually exclusive",
                    op.as_str()
                ));
            }
            // Glance looks for `!` before `@`, and for either before any role.
            Ok(if no_one {
                Permission::NoOne
            } else if everyone {
                Permission::Everyone
            } else {
                Permission::Roles(roles.iter().map(|r| r.to_lowercase()).collect())
            })
        }
    }
}

/// How the image service applies the rules (`glance/api/property_protections.py`): to extra
/// properties only, on create, on every image it shows, and on each JSON-patch change.
impl ImageService {
    /// Whether `ctx` may perform `op` on extra property `property`; everything is allowed
    /// when no protection file is configured.
    fn property_allowed(&self, ctx: &RequestContext, property: &str, op: Operation) -> bool {
        let Some(rules) = self.protections() else {
            return true;
        };
        // Glance adds the service token's roles to the caller's for this check.
        let roles: Vec<String> = ctx
            .roles
            .iter()
            .chain(&ctx.service_roles)
            .cloned()
            .collect();
        rules.allows(property, op, &roles, &|rule| {
            self.policy().allows_rule(ctx, rule)
        })
    }

    /// `POST /v2/images`: every extra property must be creatable by the caller (403).
    pub(super) fn check_create_protections<'a>(
        &self,
        ctx: &RequestContext,
        mut properties: impl Iterator<Item = &'a String>,
    ) -> DomainResult<()> {
        match properties.find(|key| !self.property_allowed(ctx, key, Operation::Create)) {
            Some(key) => Err(reserved(key)),
            None => Ok(()),
        }
    }

    /// `image` without the extra properties the caller may not read (Glance omits them from
    /// every image it returns).
    pub(super) fn readable(&self, ctx: &RequestContext, mut image: Image) -> Image {
        self.take_unreadable(ctx, &mut image);
        image
    }

    /// Removes from `image` the extra properties the caller may not read, and returns them.
    pub(super) fn take_unreadable(
        &self,
        ctx: &RequestContext,
        image: &mut Image,
    ) -> BTreeMap<String, String> {
        if self.protections().is_none() {
            return BTreeMap::new();
        }
        let (readable, hidden) = std::mem::take(&mut image.properties)
            .into_iter()
            .partition(|(key, _)| self.property_allowed(ctx, key, Operation::Read));
        image.properties = readable;
        hidden
    }

    /// The permission one JSON-patch change needs on `image` (as the caller sees it, before
    /// the change). Changes that `apply_change` refuses anyway (replacing or removing a
    /// property the caller cannot see: 409; a v2.0 `add` of an existing one: 409) are left
    /// to it, so the status is Glance's.
    pub(super) fn check_change_protection(
        &self,
        ctx: &RequestContext,
        image: &Image,
        dialect: PatchDialect,
        change: &Change,
    ) -> DomainResult<()> {
        let Some(key) = change.path.first().filter(|k| !is_schema_property(k)) else {
            return Ok(());
        };
        let exists = image.properties.contains_key(key);
        let op = match (change.op, exists) {
            (Op::Add, false) => Operation::Create,
            (Op::Add, true) if dialect == PatchDialect::V2_0 => return Ok(()),
            (Op::Add | Op::Replace, true) => Operation::Update,
            (Op::Remove, true) => Operation::Delete,
            (Op::Replace | Op::Remove, false) => return Ok(()),
        };
        if self.property_allowed(ctx, key, op) {
            Ok(())
        } else {
            Err(reserved(key))
        }
    }
}

/// Glance's `ReservedProperty`, which its API answers with 403.
fn reserved(key: &str) -> DomainError {
    DomainError::with_detail(
        Refusal::Forbidden,
        format!("Attribute '{key}' is reserved."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(name: &str, c: &str, r: &str, u: &str, d: &str) -> RawSection {
        let options = [("create", c), ("read", r), ("update", u), ("delete", d)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        (name.to_owned(), options)
    }

    fn roles(names: &[&str]) -> Vec<String> {
        names.iter().map(|r| (*r).to_owned()).collect()
    }

    fn no_policy(_: &str) -> bool {
        panic!("the roles format evaluates no policy")
    }

    fn glance_like() -> PropertyProtections {
        PropertyProtections::from_sections(
            &[
                section(
                    "^x_owner_.*",
                    "admin,member",
                    "admin,member",
                    "admin",
                    "admin",
                ),
                section("x_all", "@", "@", "@", "@"),
                section("x_none", "!", "!", "!", "!"),
                section("x_empty", "", "admin", "admin", "admin"),
                section("x_case", "Admin, SPL", "admin", "admin", "admin"),
                section(".*", "admin", "admin", "admin", "admin"),
            ],
            RuleFormat::Roles,
        )
        .expect("valid rules")
    }

    #[test]
    fn roles_grant_only_the_listed_operations() {
        let rules = glance_like();
        let member = roles(&["member"]);
        assert!(rules.allows("x_owner_foo", Operation::Create, &member, &no_policy));
        assert!(rules.allows("x_owner_foo", Operation::Read, &member, &no_policy));
        assert!(!rules.allows("x_owner_foo", Operation::Update, &member, &no_policy));
        assert!(!rules.allows("x_owner_foo", Operation::Delete, &member, &no_policy));
    }

    #[test]
    fn at_allows_everyone_and_bang_allows_no_one_not_even_admin() {
        let rules = glance_like();
        let admin = roles(&["admin"]);
        assert!(rules.allows("x_all", Operation::Delete, &[], &no_policy));
        assert!(!rules.allows("x_none", Operation::Read, &admin, &no_policy));
        assert!(!rules.allows("x_empty", Operation::Create, &admin, &no_policy));
    }

    #[test]
    fn the_first_matching_section_wins_with_search_semantics() {
        let rules = glance_like();
        let member = roles(&["member"]);
        // `x_all` matches anywhere in the name (re.search), before the catch-all `.*`.
        assert!(rules.allows("pre_x_all_post", Operation::Create, &member, &no_policy));
        // `^x_owner_` is anchored: this falls through to `.*`, admin only.
        assert!(!rules.allows("my_x_owner_foo", Operation::Create, &member, &no_policy));
        assert!(rules.allows(
            "my_x_owner_foo",
            Operation::Create,
            &roles(&["admin"]),
            &no_policy
        ));
    }

    #[test]
    fn rule_roles_are_compared_case_insensitively() {
        let rules = glance_like();
        assert!(rules.allows("x_case", Operation::Create, &roles(&["spl"]), &no_policy));
        assert!(rules.allows("x_case", Operation::Create, &roles(&["ADMIN"]), &no_policy));
    }

    #[test]
    fn a_property_no_section_matches_is_refused_to_everyone() {
        let rules = PropertyProtections::from_sections(
            &[section("^x_", "@", "@", "@", "@")],
            RuleFormat::Roles,
        )
        .expect("valid rules");
        assert!(!rules.allows("os_distro", Operation::Read, &roles(&["admin"]), &no_policy));
        // Glance's own properties stay usable.
        assert!(rules.allows("os_glance_import_task", Operation::Update, &[], &no_policy));
    }

    #[test]
    fn operator_os_glance_sections_are_ignored() {
        let rules = PropertyProtections::from_sections(
            &[section("os_glance_x", "!", "!", "!", "!")],
            RuleFormat::Roles,
        )
        .expect("valid rules");
        assert!(rules.allows("os_glance_x", Operation::Read, &[], &no_policy));
    }

    #[test]
    fn policies_name_a_rule_evaluated_for_the_caller() {
        let rules = PropertyProtections::from_sections(
            &[section("^spl_", "creator", "@", "!", "creator")],
            RuleFormat::Policies,
        )
        .expect("valid rules");
        let asked = std::cell::RefCell::new(Vec::new());
        let yes = |rule: &str| {
            asked.borrow_mut().push(rule.to_owned());
            true
        };
        assert!(rules.allows("spl_a", Operation::Create, &[], &yes));
        assert!(rules.allows("spl_a", Operation::Read, &[], &|_| false));
        assert!(!rules.allows("spl_a", Operation::Update, &[], &yes));
        assert!(!rules.allows("spl_a", Operation::Delete, &[], &|_| false));
        assert_eq!(asked.into_inner(), vec!["creator".to_owned()]);
    }

    #[test]
    fn invalid_rules_are_refused_as_glance_refuses_them() {
        let refuse = |s: RawSection, format| {
            PropertyProtections::from_sections(&[s], format).expect_err("refused")
        };
        assert!(
            refuse(section("x", "@,!", "@", "@", "@"), RuleFormat::Roles)
                .contains("mutually exclusive")
        );
        assert!(refuse(section("x(", "@", "@", "@", "@"), RuleFormat::Roles).contains("malformed"));
        assert!(
            refuse(section("x", "a,b", "@", "@", "@"), RuleFormat::Policies)
                .contains("multiple policies")
        );
        let missing = ("x".to_owned(), vec![("create".to_owned(), "@".to_owned())]);
        assert!(refuse(missing, RuleFormat::Roles).contains("no 'read' option"));
    }
}
