//! `/metrics`: the Prometheus exposition. The registry is process-wide, so every check
//! compares two scrapes (deltas), never absolute values.

use std::collections::{BTreeMap, HashMap};

use axum::body::Body;
use axum::http::Method;

use crate::all_databases;
use crate::helpers::TestApp;

/// A sample's labels, in order.
type Labels = Vec<(String, String)>;

/// One sample line: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// `{a="x",b="y"}` → labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest.split_once("=\"").ok_or("no =\"")?;
        if !is_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) => return Err("raw newline in a label value".into()),
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Parses the whole document under the text format's line grammar and checks that every
/// sample's family has `# HELP` and `# TYPE` first, and that every histogram's buckets are
/// cumulative and end with `+Inf` equal to `_count`.
fn parse_strict(text: &str) -> Vec<Sample> {
    let mut help: HashMap<String, String> = HashMap::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "the document ends with a newline");
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name, rest) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("comment without a name: {line}"));
            assert!(is_name(name), "{line}");
            match kind {
                Some("HELP") => {
                    assert!(
                        help.insert(name.to_owned(), rest.unwrap_or("").to_owned())
                            .is_none(),
                        "two HELP: {line}"
                    );
                }
                Some("TYPE") => {
                    let kind = rest.unwrap_or_default();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{line}"
                    );
                    assert!(help.contains_key(name), "TYPE before HELP: {line}");
                    assert!(
                        types.insert(name.to_owned(), kind.to_owned()).is_none(),
                        "two TYPE: {line}"
                    );
                }
                _ => panic!("unknown comment {line}"),
            }
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.trim().is_empty(),
            "stray line {line:?}"
        );
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name = &line[..name_end];
        assert!(is_name(name), "bad name: {line}");
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).unwrap_or_else(|e| panic!("{e}: {line}"))
        } else {
            (Vec::new(), &line[name_end..])
        };
        let value = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no space before the value: {line}"));
        assert!(!value.contains(' '), "timestamps are not written: {line}");
        let value = parse_value(value).unwrap_or_else(|e| panic!("{e}: {line}"));
        // The family: a histogram's series carry a suffix.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its # TYPE: {line}"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    // Histograms: per label set (without `le`), buckets in order, cumulative, +Inf == count.
    for (family, _) in types.iter().filter(|(_, t)| *t == "histogram") {
        let mut buckets: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        let bucket_name = format!("{family}_bucket");
        for s in samples.iter().filter(|s| s.name == bucket_name) {
            let le = parse_value(s.label("le").expect("bucket without le")).expect("le");
            let key: Vec<_> = s
                .labels
                .iter()
                .filter(|(n, _)| n != "le")
                .cloned()
                .collect();
            buckets.entry(key).or_default().push((le, s.value));
        }
        for (key, series) in &buckets {
            assert!(
                series
                    .windows(2)
                    .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{family}{key:?}: {series:?}"
            );
            let last = series.last().expect("buckets");
            assert!(last.0.is_infinite(), "{family}{key:?} ends with +Inf");
            let count = samples
                .iter()
                .find(|s| s.name == format!("{family}_count") && s.labels == *key)
                .unwrap_or_else(|| panic!("{family}{key:?} has a _count"));
            assert_eq!(last.1, count.value, "{family}{key:?}: +Inf equals _count");
            assert!(samples
                .iter()
                .any(|s| s.name == format!("{family}_sum") && s.labels == *key));
        }
    }
    samples
}

async fn scrape(app: &TestApp) -> Vec<Sample> {
    // No token: the endpoint is open like /healthcheck.
    let response = app
        .request(Method::GET, "/metrics", &[], Body::empty())
        .await;
    response.assert_status(200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_strict(&response.text())
}

/// The value of the sample `name` with exactly `labels` (0 when absent).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(n, v)| s.label(n) == Some(v))
        })
        .map_or(0.0, |s| s.value)
}

fn requests(samples: &[Sample], route: &str, method: &str, status: &str) -> f64 {
    value(
        samples,
        "glint_http_requests_total",
        &[("route", route), ("method", method), ("status", status)],
    )
}

/// By store, what moved between two scrapes.
fn store_deltas(before: &[Sample], after: &[Sample], name: &str) -> Vec<(String, f64)> {
    after
        .iter()
        .filter(|s| s.name == name)
        .filter_map(|s| {
            let store = s.label("store")?;
            let delta = s.value - value(before, name, &[("store", store)]);
            (delta != 0.0).then(|| (store.to_owned(), delta))
        })
        .collect()
}

all_databases!(fn requests_and_store_bytes_are_counted_by_route_pattern(app) {
    let before = scrape(&app).await;
    let id = app.create_raw_image().await;
    app.get(&format!("/v2/images/{id}")).await.assert_status(200);
    app.get("/v2/images/00000000-0000-0000-0000-000000000000").await.assert_status(404);
    app.get("/v2/nothing-here").await.assert_status(404);
    app.request(Method::PUT, &format!("/v2/images/{id}"), &[], Body::empty()).await.assert_status(405);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    app.upload(&id, data.clone()).await.assert_status(204);
    let download = app.request(Method::GET, &format!("/v2/images/{id}/file"), &[], Body::empty()).await;
    download.assert_status(200);
    assert_eq!(download.body.len(), data.len());
    let after = scrape(&app).await;

    let moved = |route: &str, method: &str, status: &str| {
        requests(&after, route, method, status) - requests(&before, route, method, status)
    };
    assert_eq!(moved("/v2/images", "POST", "201"), 1.0);
    assert_eq!(moved("/v2/images/{image_id}", "GET", "200"), 1.0);
    assert_eq!(moved("/v2/images/{image_id}", "GET", "404"), 1.0);
    assert_eq!(moved("unmatched", "GET", "404"), 1.0);
    // A method the path does not serve still names the path's pattern.
    assert_eq!(moved("/v2/images/{image_id}", "PUT", "405"), 1.0);
    assert_eq!(moved("/v2/images/{image_id}/file", "PUT", "204"), 1.0);
    assert_eq!(moved("/v2/images/{image_id}/file", "GET", "200"), 1.0);
    // The first scrape itself is counted under its own route.
    assert!(requests(&after, "/metrics", "GET", "200") >= 1.0);
    // Routes are patterns: no image id, no unknown path ever becomes a label.
    for sample in after.iter().filter(|s| s.name.starts_with("glint_http_")) {
        let route = sample.label("route").expect("route label");
        assert!(!route.contains(&id) && !route.contains("nothing-here"), "{route}");
        assert!(route == "unmatched" || route.starts_with('/'), "{route}");
    }
    let durations = |samples: &[Sample]| {
        value(samples, "glint_http_request_duration_seconds_count", &[("route", "/v2/images/{image_id}"), ("method", "GET")])
    };
    assert_eq!(durations(&after) - durations(&before), 2.0);

    // The upload wrote its bytes to one store and the download read them back from it.
    let written = store_deltas(&before, &after, "glint_store_bytes_written_total");
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].1, data.len() as f64);
    let read = store_deltas(&before, &after, "glint_store_bytes_read_total");
    assert_eq!(read, [(written[0].0.clone(), data.len() as f64)]);

    assert_eq!(value(&after, "glint_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    for name in ["glint_uploads_in_flight", "glint_imports_running"] {
        assert!(after.iter().any(|s| s.name == name), "{name}");
    }
    let pools: Vec<&Sample> = after.iter().filter(|s| s.name == "glint_db_pool_connections").collect();
    assert!(pools.iter().any(|s| s.label("pool") == Some("write") && s.label("state") == Some("idle")), "{pools:?}");
    assert!(pools.iter().all(|s| s.value >= 0.0));
});

all_databases!(fn metrics_can_be_switched_off(app, "[DEFAULT]\nmetrics_enabled = false\n") {
    app.request(Method::GET, "/metrics", &[], Body::empty()).await.assert_status(404);
    app.request(Method::GET, "/healthcheck", &[], Body::empty()).await.assert_status(200);
});

#[test]
fn the_strict_parser_refuses_what_prometheus_would() {
    let ok = "# HELP a x\n# TYPE a counter\na{l=\"q\\\"\\\\\\n\"} 1\n";
    assert_eq!(parse_strict(ok)[0].label("l"), Some("q\"\\\n"));
    for bad in [
        "a 1\n",                                       // no TYPE
        "# HELP a x\n# TYPE a counter\na{l=\"x} 1\n",  // unterminated
        "# HELP a x\n# TYPE a counter\na{l=\"\\x\"} 1\n", // bad escape
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
    ] {
        assert!(std::panic::catch_unwind(|| parse_strict(bad)).is_err(), "{bad}");
    }
}
