//! The policy engine: oslo.policy's rule language (`rule.rs`), Glance's default rules
//! (`defaults.rs`) and the operator's policy file (`file.rs`), deciding every API operation
//! through `domain::policy::Policy`. Rules are parsed once at start-up; a decision is a walk
//! over a few checks.

mod defaults;
mod file;
mod rule;

use std::collections::HashMap;

use crate::config::PolicyConfig;
use crate::domain::image::Visibility;
use crate::domain::policy::{Action, Policy, Target};
use crate::domain::RequestContext;

pub use defaults::DEFAULTS;
use rule::{Evaluation, Facts, Rule, Value};

/// The rules in force.
#[derive(Debug)]
pub struct Enforcer {
    rules: HashMap<String, Rule>,
    /// The scopes each built-in rule accepts.
    scopes: HashMap<&'static str, &'static [&'static str]>,
    enforce_scope: bool,
}

impl Enforcer {
    /// Glance's defaults, each replaced by the policy file's rule of the same name.
    pub fn new(config: &PolicyConfig) -> Result<Enforcer, String> {
        let mut rules = HashMap::new();
        let mut scopes = HashMap::new();
        for default in DEFAULTS {
            let mut rule = Rule::parse(default.check)
                .map_err(|e| format!("built-in rule {}: {e}", default.name))?;
            if let (false, Some(old)) = (config.enforce_new_defaults, default.deprecated) {
                let old =
                    Rule::parse(old).map_err(|e| format!("built-in rule {}: {e}", default.name))?;
                rule = Rule::Or(vec![rule, old]);
            }
            rules.insert(default.name.to_owned(), rule);
            scopes.insert(default.name, default.scopes);
        }
        if let Some(path) = &config.policy_file {
            for (name, rule) in file::read(path)? {
                if !scopes.contains_key(name.as_str()) {
                    tracing::warn!(policy_file = %path.display(), rule = %name,
                        "the policy file defines a rule Glint does not use (it can still be named by rule:)");
                }
                rules.insert(name, rule);
            }
        }
        let mut named = Vec::new();
        rules.values().for_each(|r| r.named(&mut named));
        for missing in named.iter().filter(|n| !rules.contains_key(n.as_str())) {
            tracing::warn!(rule = %missing, "a policy rule names a rule that is not defined: that check denies");
        }
        Ok(Enforcer {
            rules,
            scopes,
            enforce_scope: config.enforce_scope,
        })
    }

    /// Whether rule `name` allows `ctx` on `target`. A name with no rule falls back to
    /// `default`, as oslo.policy does; with `enforce_scope`, a token whose scope the rule does
    /// not accept is refused whatever the rule says.
    pub fn enforce(&self, name: &str, ctx: &RequestContext, target: &Facts) -> bool {
        if is_unauthenticated_admin(ctx) {
            return true;
        }
        if self.enforce_scope {
            if let Some(scopes) = self.scopes.get(name).filter(|s| !s.is_empty()) {
                if !scopes.contains(&scope_of(ctx)) {
                    return false;
                }
            }
        }
        let Some(rule) = self.rules.get(name).or_else(|| self.rules.get("default")) else {
            return false;
        };
        let credentials = credentials(ctx);
        let lookup = |name: &str| self.rules.get(name);
        rule.allows(&Evaluation {
            credentials: &credentials,
            target,
            rules: &lookup,
        })
    }
}

impl Policy for Enforcer {
    fn allows(&self, ctx: &RequestContext, action: Action, target: &Target<'_>) -> bool {
        self.enforce(action.rule_name(), ctx, &image_facts(target))
    }

    /// `context_is_admin`, for project-scoped identities only (every image rule is
    /// project-scoped; a system administrator is no image administrator).
    fn is_admin(&self, ctx: &RequestContext) -> bool {
        is_unauthenticated_admin(ctx) || (ctx.project_id.is_some() && self.context_is_admin(ctx))
    }

    fn allows_named(&self, ctx: &RequestContext, rule: &str, target: &Target<'_>) -> bool {
        self.enforce(rule, ctx, &image_facts(target))
    }

    fn context_is_admin(&self, ctx: &RequestContext) -> bool {
        self.enforce("context_is_admin", ctx, &Facts::new())
    }

    // Not `enforce`: Glance checks `rule:<name>` as an unregistered rule, so there is no
    // fallback to `default`, no scope check and no bypass for the unauthenticated admin.
    fn allows_rule(&self, ctx: &RequestContext, rule: &str) -> bool {
        let Some(rule) = self.rules.get(rule) else {
            return false;
        };
        let credentials = credentials(ctx);
        let lookup = |name: &str| self.rules.get(name);
        rule.allows(&Evaluation {
            credentials: &credentials,
            target: &Facts::new(),
            rules: &lookup,
        })
    }
}

/// Glance with no authentication: every request an administrator with no scope at all.
fn is_unauthenticated_admin(ctx: &RequestContext) -> bool {
    ctx.is_admin
        && ctx.auth_token.is_none()
        && ctx.project_id.is_none()
        && ctx.system_scope.is_none()
        && ctx.domain_id.is_none()
}

fn scope_of(ctx: &RequestContext) -> &'static str {
    if ctx.system_scope.is_some() {
        "system"
    } else if ctx.domain_id.is_some() {
        "domain"
    } else if ctx.project_id.is_some() {
        "project"
    } else {
        "none"
    }
}

/// oslo.context's policy values.
fn credentials(ctx: &RequestContext) -> Facts {
    let text = |v: &Option<String>| v.clone().map_or(Value::None, Value::Text);
    Facts::from([
        ("user_id".to_owned(), text(&ctx.user_id)),
        ("project_id".to_owned(), text(&ctx.project_id)),
        ("domain_id".to_owned(), text(&ctx.domain_id)),
        ("system_scope".to_owned(), text(&ctx.system_scope)),
        ("roles".to_owned(), Value::List(ctx.roles.clone())),
        ("is_admin".to_owned(), Value::Bool(ctx.is_admin)),
    ])
}

/// Glance's image target: `project_id` is the owner, `member_id` the caller's project when
/// it sees a shared image as a member.
fn image_facts(target: &Target<'_>) -> Facts {
    let text = |v: Option<&str>| v.map_or(Value::None, |v| Value::Text(v.to_owned()));
    let visibility = target.visibility.unwrap_or(Visibility::Private);
    Facts::from([
        ("project_id".to_owned(), text(target.owner)),
        ("owner".to_owned(), text(target.owner)),
        ("member_id".to_owned(), text(target.member)),
        ("member".to_owned(), text(target.member)),
        (
            "visibility".to_owned(),
            Value::Text(visibility.as_str().to_owned()),
        ),
    ])
}

/// The defaults as a policy file an operator can edit: every rule commented out, with what
/// it guards and the scopes it accepts.
pub fn defaults_as_yaml() -> String {
    let mut out = String::from(
        "# Glint's built-in policy rules (Glance's defaults). Uncomment and change a rule to\n\
         # override it; rules not in the file keep their default.\n",
    );
    for default in DEFAULTS {
        out.push('\n');
        out.push_str(&format!("# {}\n", default.description));
        if !default.scopes.is_empty() {
            out.push_str(&format!("# Scope types: {}\n", default.scopes.join(", ")));
        }
        out.push_str(&format!(
            "#\"{}\": \"{}\"\n",
            default.name,
            default.check.replace('\\', "\\\\").replace('"', "\\\"")
        ));
    }
    out
}

#[cfg(test)]
mod tests;
