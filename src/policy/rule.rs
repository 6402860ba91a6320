//! oslo.policy's rule language: checks (`role:admin`, `rule:name`, `project_id:%(owner)s`,
//! `'public':%(visibility)s`, `is_admin:True`, `@`, `!`) joined by `and`, `or`, `not` and
//! parentheses, `not` binding tightest and `or` loosest; the empty rule allows everything.

use std::collections::HashMap;

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `@`, or the empty rule.
    Always,
    /// `!`.
    Never,
    /// `rule:name`: another rule, by name.
    Named(String),
    /// `role:name` (compared without case; `%(key)s` in it comes from the target).
    Role(String),
    /// `kind:match`: `match` (after `%(key)s` is replaced from the target) against a literal
    /// (`'public'`, `True`, `42`) or the credential `kind`.
    Generic {
        kind: String,
        matched: String,
    },
    Not(Box<Rule>),
    And(Vec<Rule>),
    Or(Vec<Rule>),
}

/// A value a check compares: credentials and targets hold strings, lists of strings and
/// booleans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    List(Vec<String>),
    Bool(bool),
    None,
}

impl Value {
    /// Python's `str()` of the value, as oslo.policy compares them.
    fn as_text(&self) -> String {
        match self {
            Value::Text(t) => t.clone(),
            Value::Bool(true) => "True".to_owned(),
            Value::Bool(false) => "False".to_owned(),
            Value::None => "None".to_owned(),
            Value::List(items) => format!("{items:?}"),
        }
    }
}

pub type Facts = HashMap<String, Value>;

/// What a rule is evaluated against: the caller's credentials, the target, and the rules
/// `rule:` checks may name.
pub struct Evaluation<'a> {
    pub credentials: &'a Facts,
    pub target: &'a Facts,
    pub rules: &'a dyn Fn(&str) -> Option<&'a Rule>,
}

impl Rule {
    /// Parses a check string; `Err` says what is wrong with it.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let tokens = tokenize(text);
        if tokens.is_empty() {
            return Ok(Rule::Always);
        }
        let mut parser = Parser {
            tokens: &tokens,
            at: 0,
        };
        let rule = parser.or()?;
        match parser.tokens.get(parser.at) {
            None => Ok(rule),
            Some(token) => Err(format!("unexpected {token:?} in {text:?}")),
        }
    }

    /// The old list form of policy.json: a list of lists of checks, the inner lists joined
    /// by `and`, the outer by `or` (an empty list allows everything).
    pub fn from_lists(lists: &[Vec<String>]) -> Result<Rule, String> {
        if lists.is_empty() {
            return Ok(Rule::Always);
        }
        let alternatives = lists
            .iter()
            .map(|all| {
                all.iter()
                    .map(|check| parse_check(check))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Rule::And)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rule::Or(alternatives))
    }

    /// Whether the rule allows. `depth` stops rules that name each other in a loop.
    pub fn allows(&self, eval: &Evaluation<'_>) -> bool {
        self.check(eval, 0)
    }

    fn check(&self, eval: &Evaluation<'_>, depth: usize) -> bool {
        match self {
            Rule::Always => true,
            Rule::Never => false,
            Rule::Named(name) => {
                depth < 32 && (eval.rules)(name).is_some_and(|rule| rule.check(eval, depth + 1))
            }
            Rule::Role(role) => match substitute(role, eval.target) {
                Some(role) => match eval.credentials.get("roles") {
                    Some(Value::List(roles)) => roles.iter().any(|r| r.eq_ignore_ascii_case(&role)),
                    _ => false,
                },
                None => false,
            },
            Rule::Generic { kind, matched } => {
                let Some(matched) = substitute(matched, eval.target) else {
                    return false;
                };
                if let Some(literal) = literal(kind) {
                    return literal == matched;
                }
                match eval.credentials.get(kind) {
                    Some(Value::List(items)) => items.contains(&matched),
                    Some(value) => value.as_text() == matched,
                    None => false,
                }
            }
            Rule::Not(rule) => !rule.check(eval, depth),
            Rule::And(rules) => rules.iter().all(|r| r.check(eval, depth)),
            Rule::Or(rules) => rules.iter().any(|r| r.check(eval, depth)),
        }
    }

    /// The rules this one names (for the warning about names no rule has).
    pub fn named(&self, into: &mut Vec<String>) {
        match self {
            Rule::Named(name) => into.push(name.clone()),
            Rule::Not(rule) => rule.named(into),
            Rule::And(rules) | Rule::Or(rules) => rules.iter().for_each(|r| r.named(into)),
            _ => {}
        }
    }
}

/// Splits on whitespace, with parentheses as tokens of their own (oslo.policy peels them off
/// the ends of words, so `(role:a` and `b)` work).
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for word in text.split_whitespace() {
        let mut word = word;
        while let Some(rest) = word.strip_prefix('(') {
            tokens.push("(".to_owned());
            word = rest;
        }
        let mut closing = 0;
        while let Some(rest) = word.strip_suffix(')') {
            closing += 1;
            word = rest;
        }
        if !word.is_empty() {
            tokens.push(word.to_owned());
        }
        tokens.extend(std::iter::repeat_n(")".to_owned(), closing));
    }
    tokens
}

struct Parser<'a> {
    tokens: &'a [String],
    at: usize,
}

impl Parser<'_> {
    fn peek_keyword(&self, keyword: &str) -> bool {
        self.tokens
            .get(self.at)
            .is_some_and(|t| t.eq_ignore_ascii_case(keyword))
    }

    fn or(&mut self) -> Result<Rule, String> {
        let mut alternatives = vec![self.and()?];
        while self.peek_keyword("or") {
            self.at += 1;
            alternatives.push(self.and()?);
        }
        Ok(if alternatives.len() == 1 {
            alternatives.remove(0)
        } else {
            Rule::Or(alternatives)
        })
    }

    fn and(&mut self) -> Result<Rule, String> {
        let mut all = vec![self.not()?];
        while self.peek_keyword("and") {
            self.at += 1;
            all.push(self.not()?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Rule::And(all)
        })
    }

    fn not(&mut self) -> Result<Rule, String> {
        if self.peek_keyword("not") {
            self.at += 1;
            return Ok(Rule::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Rule, String> {
        let Some(token) = self.tokens.get(self.at) else {
            return Err("the rule ends where a check was expected".to_owned());
        };
        self.at += 1;
        match token.as_str() {
            "(" => {
                let inner = self.or()?;
                match self.tokens.get(self.at).map(String::as_str) {
                    Some(")") => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => Err("a parenthesis is not closed".to_owned()),
                }
            }
            ")" => Err("a parenthesis closes nothing".to_owned()),
            word if ["and", "or"].iter().any(|k| word.eq_ignore_ascii_case(k)) => {
                Err(format!("{word:?} where a check was expected"))
            }
            check => parse_check(check),
        }
    }
}

/// One check: `@`, `!`, `rule:x`, `role:x` or a generic `kind:match`.
fn parse_check(check: &str) -> Result<Rule, String> {
    match check {
        "@" => return Ok(Rule::Always),
        "!" => return Ok(Rule::Never),
        _ => {}
    }
    let Some((kind, matched)) = check.split_once(':') else {
        return Err(format!("{check:?} is not a check (kind:match)"));
    };
    Ok(match kind {
        "rule" => Rule::Named(matched.to_owned()),
        "role" => Rule::Role(matched.to_owned()),
        "http" | "https" => {
            return Err(format!("{kind}: checks (remote policy) are not supported"))
        }
        _ => Rule::Generic {
            kind: kind.to_owned(),
            matched: matched.to_owned(),
        },
    })
}

/// `text` with each `%(key)s` replaced by the target's value; `None` when a key is missing
/// (the check then fails, as oslo.policy's does on a KeyError).
fn substitute(text: &str, target: &Facts) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("%(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find(")s")?;
        out.push_str(&target.get(&after[..end])?.as_text());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

/// A check's left side read as a Python literal: a quoted string, True, False or a number.
fn literal(kind: &str) -> Option<String> {
    let quoted = |q: char| {
        kind.strip_prefix(q)
            .and_then(|k| k.strip_suffix(q))
            .map(str::to_owned)
    };
    if let Some(text) = quoted('\'').or_else(|| quoted('"')) {
        return Some(text);
    }
    match kind {
        "True" | "False" | "None" => Some(kind.to_owned()),
        number if number.parse::<i64>().is_ok() => Some(number.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pairs: &[(&str, Value)]) -> Facts {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn allows(rule: &str, credentials: &Facts, target: &Facts) -> bool {
        let named: HashMap<String, Rule> =
            [("context_is_admin", "role:admin"), ("loop", "rule:loop")]
                .iter()
                .map(|(n, r)| (n.to_string(), Rule::parse(r).expect("parses")))
                .collect();
        let rules = |name: &str| named.get(name);
        Rule::parse(rule).expect("parses").allows(&Evaluation {
            credentials,
            target,
            rules: &rules,
        })
    }

    fn member_of(project: &str) -> Facts {
        facts(&[
            ("project_id", Value::Text(project.into())),
            ("roles", Value::List(vec!["member".into(), "reader".into()])),
            ("is_admin", Value::Bool(false)),
        ])
    }

    #[test]
    fn glances_get_image_rule_reads_as_glance_reads_it() {
        let rule = "rule:context_is_admin or (role:reader and (project_id:%(project_id)s or \
                    project_id:%(member_id)s or 'community':%(visibility)s or \
                    'public':%(visibility)s or 'shared':%(visibility)s))";
        let image = |owner: &str, visibility: &str| {
            facts(&[
                ("project_id", Value::Text(owner.into())),
                ("member_id", Value::None),
                ("visibility", Value::Text(visibility.into())),
            ])
        };
        assert!(allows(rule, &member_of("p1"), &image("p1", "private")));
        assert!(!allows(rule, &member_of("p2"), &image("p1", "private")));
        assert!(allows(rule, &member_of("p2"), &image("p1", "public")));
        let admin = facts(&[("roles", Value::List(vec!["Admin".into()]))]);
        assert!(allows(rule, &admin, &image("p1", "private")));
        let nobody = facts(&[("roles", Value::List(vec![]))]);
        assert!(!allows(rule, &nobody, &image("p1", "public")));
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let creds = member_of("p1");
        let none = Facts::new();
        assert!(allows("@ or ! and !", &creds, &none));
        assert!(!allows("(@ or !) and !", &creds, &none));
        assert!(allows("not ! and @", &creds, &none));
        assert!(allows("NOT role:admin", &creds, &none));
        assert!(allows("", &creds, &none));
        assert!(allows("is_admin:False", &creds, &none));
        assert!(!allows("is_admin:True", &creds, &none));
    }

    #[test]
    fn missing_targets_and_rules_and_loops_deny() {
        let creds = member_of("p1");
        assert!(!allows("project_id:%(owner)s", &creds, &Facts::new()));
        assert!(!allows("rule:nonexistent", &creds, &Facts::new()));
        assert!(!allows("rule:loop", &creds, &Facts::new()));
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in [
            "(role:a",
            "role:a)",
            "role:a and",
            "or role:a",
            "nocolon",
            "http:x",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Rule::from_lists(&[vec!["role:a".into()], vec![]]),
            Ok(Rule::Or(vec![
                Rule::And(vec![Rule::Role("a".into())]),
                Rule::And(vec![])
            ]))
        );
    }
}
