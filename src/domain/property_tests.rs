//! Property tests of the two parsers that read raw client input: the list query and JSON-patch.
//! Inputs come from a seeded generator biased towards the characters and shapes those parsers
//! treat specially; whatever it produces, parsing must not panic, must refuse with a 400, and
//! what it accepts must respect the limits. `GLINT_PROPERTY_CASES` runs more cases (CI runs
//! the default, a few seconds' worth).

use serde_json::{json, Map, Value};

use super::context::RequestContext;
use super::error::Refusal;
use super::image::{Image, ImageId};
use super::image_rules::apply_change;
use super::listing::{ListQuery, PageLimits, MAX_FILTER_VALUES, MAX_SUBQUERY_FILTERS};
use super::patch::{parse_patch, PatchDialect};

fn cases() -> usize {
    std::env::var("GLINT_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// xorshift64*: deterministic, so a failure names the seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Text built from fragments the parsers give meaning to, and some they must not choke on.
    fn text(&mut self) -> String {
        const PIECES: [&str; 28] = [
            "",
            "a",
            "Z",
            "0",
            "9",
            "-1",
            "18446744073709551616",
            ",",
            "\"",
            ":",
            "in:",
            "eq:",
            "gte:",
            "lt:",
            "neq:",
            "asc",
            "desc",
            "name",
            "2026-01-01T00:00:00Z",
            " ",
            "%",
            "\0",
            "\n",
            "é",
            "🦀",
            "\\",
            "/",
            "~1",
        ];
        (0..self.below(6)).map(|_| self.pick(&PIECES)).collect()
    }

    fn json(&mut self, depth: usize) -> Value {
        match self.below(if depth > 2 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.next() as i64),
            3 => json!(self.next()),
            4 => json!(self.text()),
            5 => Value::Array((0..self.below(4)).map(|_| self.json(depth + 1)).collect()),
            _ => {
                let mut map = Map::new();
                for _ in 0..self.below(4) {
                    map.insert(self.text(), self.json(depth + 1));
                }
                Value::Object(map)
            }
        }
    }
}

const KEYS: [&str; 24] = [
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "sort",
    "visibility",
    "member_status",
    "os_hidden",
    "protected",
    "tag",
    "changes-since",
    "created_at",
    "updated_at",
    "name",
    "status",
    "container_format",
    "disk_format",
    "size_min",
    "size_max",
    "min_ram",
    "min_disk",
    "id",
    "os_distro",
    "checksum",
];

#[test]
fn list_queries_parse_or_are_refused_with_400() {
    let limits = PageLimits {
        default: 25,
        max: 1000,
    };
    for seed in 1..=cases() as u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let count = if rng.below(50) == 0 {
            rng.below(200)
        } else {
            rng.below(8)
        };
        let params: Vec<(String, String)> = (0..count)
            .map(|_| {
                let key = if rng.below(4) == 0 {
                    rng.text()
                } else {
                    rng.pick(&KEYS).to_owned()
                };
                (key, rng.text())
            })
            .collect();
        match ListQuery::parse(&params, limits) {
            Ok(query) => {
                assert!(query.limit <= limits.max, "seed {seed}: {params:?}");
                let last: Vec<_> = query.sort.iter().rev().take(2).collect();
                assert!(
                    last.len() == 2,
                    "seed {seed}: sort must end with created_at, id"
                );
                let subqueries = query
                    .filters
                    .iter()
                    .filter(|f| {
                        matches!(
                            f,
                            super::listing::Filter::Tag(_)
                                | super::listing::Filter::Property { .. }
                        )
                    })
                    .count();
                assert!(subqueries <= MAX_SUBQUERY_FILTERS, "seed {seed}");
                assert!(query.filters.len() <= MAX_FILTER_VALUES, "seed {seed}");
                let nul = params
                    .iter()
                    .any(|(k, v)| k.contains('\0') || v.contains('\0'));
                assert!(!nul, "seed {seed}: NUL accepted in {params:?}");
            }
            Err(e) => assert_eq!(
                e.kind(),
                Some(Refusal::BadRequest),
                "seed {seed}: {params:?} → {e}"
            ),
        }
    }
}

#[test]
fn json_patches_parse_and_apply_or_are_refused() {
    let ctx = RequestContext::unauthenticated_admin("req-property".to_owned());
    const OPS: [&str; 6] = ["add", "replace", "remove", "move", "test", ""];
    const PATHS: [&str; 12] = [
        "/name",
        "/min_ram",
        "/tags",
        "/os_distro",
        "/visibility",
        "/protected",
        "/",
        "",
        "/a/b",
        "/~1x",
        "/disk_format",
        "/owner",
    ];
    for seed in 1..=cases() as u64 {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
        let dialect = if rng.below(2) == 0 {
            PatchDialect::V2_1
        } else {
            PatchDialect::V2_0
        };
        let body = if rng.below(10) == 0 {
            rng.json(0)
        } else {
            let ops = (0..rng.below(4))
                .map(|_| {
                    let op = rng.pick(&OPS);
                    let path = if rng.below(5) == 0 {
                        rng.text()
                    } else {
                        rng.pick(&PATHS).to_owned()
                    };
                    let value = rng.json(1);
                    match dialect {
                        PatchDialect::V2_1 => json!({"op": op, "path": path, "value": value}),
                        PatchDialect::V2_0 => json!({op: path, "value": value}),
                    }
                })
                .collect();
            Value::Array(ops)
        };
        match parse_patch(&body, dialect) {
            Ok(changes) => {
                let mut image = Image::new(ImageId::generate(), None, super::image::now());
                for change in &changes {
                    if change.path.len() != 1 {
                        continue;
                    }
                    // Applying an unvalidated change may refuse, never panic.
                    let _ = apply_change(&ctx, &mut image, dialect, change);
                }
            }
            Err(e) => assert_eq!(
                e.kind(),
                Some(Refusal::BadRequest),
                "seed {seed}: {body} → {e}"
            ),
        }
    }
}
