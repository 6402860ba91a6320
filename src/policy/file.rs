//! The operator's policy file (`[oslo_policy] policy_file`): YAML, or JSON (which YAML reads
//! too), a map from rule name to check string, or to the old list-of-lists form.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::rule::Rule;

/// The rules the file defines, in file order; `Err` names the file and the first problem.
pub(super) fn read(path: &Path) -> Result<Vec<(String, Rule)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read policy_file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("policy_file {}: {e}", path.display()))
}

fn parse(text: &str) -> Result<Vec<(String, Rule)>, String> {
    let documents = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    let Some(document) = documents.first() else {
        return Ok(Vec::new());
    };
    let map = match document {
        Yaml::Hash(map) => map,
        // A file of comments only.
        Yaml::Null => return Ok(Vec::new()),
        _ => return Err("not a map of rule names to rules".to_owned()),
    };
    let mut rules = Vec::new();
    for (name, value) in map {
        let name = name
            .as_str()
            .ok_or_else(|| format!("rule name {name:?} is not a string"))?;
        let rule = match value {
            Yaml::String(check) => Rule::parse(check),
            Yaml::Null => Ok(Rule::Always),
            Yaml::Array(lists) => lists
                .iter()
                .map(|list| match list {
                    Yaml::Array(checks) => checks
                        .iter()
                        .map(|c| {
                            c.as_str()
                                .map(str::to_owned)
                                .ok_or("a check is not a string")
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(str::to_owned),
                    _ => Err("the list form needs lists of checks".to_owned()),
                })
                .collect::<Result<Vec<_>, _>>()
                .and_then(|lists| Rule::from_lists(&lists)),
            other => Err(format!("{other:?} is not a rule")),
        }
        .map_err(|e| format!("rule {name}: {e}"))?;
        rules.push((name.to_owned(), rule));
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_files_read_alike() {
        let yaml = "# a comment\n\"get_images\": \"role:admin\"\nadd_image: role:member\n\
                    publicize_image: ''\n";
        let json =
            r#"{"get_images": "role:admin", "add_image": "role:member", "publicize_image": ""}"#;
        assert_eq!(parse(yaml), parse(json));
        let rules = parse(yaml).expect("parses");
        assert_eq!(
            rules[0],
            ("get_images".to_owned(), Rule::Role("admin".into()))
        );
        assert_eq!(rules[2].1, Rule::Always);
        assert_eq!(parse("# nothing\n"), Ok(Vec::new()));
        assert_eq!(parse(""), Ok(Vec::new()));
    }

    #[test]
    fn the_old_list_form_is_read() {
        let rules = parse(
            r#"{"get_image": [["role:admin"], ["role:reader", "project_id:%(project_id)s"]]}"#,
        )
        .expect("parses");
        assert!(matches!(&rules[0].1, Rule::Or(alternatives) if alternatives.len() == 2));
    }

    #[test]
    fn bad_files_say_where() {
        let err = parse("get_image: \"role:a and\"\n").expect_err("bad rule");
        assert!(err.contains("get_image"), "{err}");
        assert!(parse("- a\n- b\n").is_err());
        assert!(parse("get_image: [1, 2]\n").is_err());
        assert!(parse("a: b: c: [\n").is_err());
    }
}
