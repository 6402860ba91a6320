//! `/healthcheck`'s oslo.middleware options that depend on the connection itself, against the
//! built server on loopback: `allowed_source_ranges` and `ignore_proxied_requests`. A request
//! the check does not take is answered as any path outside the API (300, the versions
//! document), as Glance's pipeline passes it on.

mod served;

use served::{configure, get, run, serve, stop};

fn status(answer: &str) -> &str {
    answer.split(' ').nth(1).unwrap_or_default()
}

#[test]
fn only_allowed_sources_get_the_health_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, port) = serve(
        dir.path(),
        "[healthcheck]\nallowed_source_ranges = 10.0.0.0/8, 127.0.0.0/8\n",
    );
    let answer = get(port, "/healthcheck", "");
    assert_eq!(status(&answer), "200", "{answer}");
    assert!(answer.ends_with("\r\n\r\nOK"), "{answer}");
    stop(child);

    let dir = tempfile::tempdir().expect("tempdir");
    let (child, port) = serve(
        dir.path(),
        "[healthcheck]\nallowed_source_ranges = 10.0.0.0/8, ::1/128\n",
    );
    let answer = get(port, "/healthcheck", "");
    assert_eq!(status(&answer), "300", "{answer}");
    assert!(answer.contains("\"versions\""), "{answer}");
    stop(child);
}

#[test]
fn proxied_requests_are_passed_on_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, port) = serve(
        dir.path(),
        "[healthcheck]\nignore_proxied_requests = true\n",
    );
    assert_eq!(status(&get(port, "/healthcheck", "")), "200");
    let proxied = get(port, "/healthcheck", "X-Forwarded-For: 192.0.2.7\r\n");
    assert_eq!(status(&proxied), "300", "{proxied}");
    let proto = get(port, "/healthcheck", "X-Forwarded-Proto: https\r\n");
    assert_eq!(status(&proto), "300", "{proto}");
    // Other headers leave the check in place.
    assert_eq!(status(&get(port, "/healthcheck", "Via: 1.1 lb\r\n")), "200");
    stop(child);

    // Off by default: a balancer behind a proxy still gets its answer.
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, port) = serve(dir.path(), "");
    assert_eq!(
        status(&get(port, "/healthcheck", "X-Forwarded-For: 192.0.2.7\r\n")),
        "200"
    );
    stop(child);
}

#[test]
fn html_is_served_to_browsers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, port) = serve(dir.path(), "");
    let answer = get(port, "/healthcheck", "Accept: text/html\r\n");
    assert_eq!(status(&answer), "200", "{answer}");
    assert!(
        answer.contains("content-type: text/html; charset=UTF-8"),
        "{answer}"
    );
    assert!(answer.contains("<H2>Result of 1 checks:</H2>"), "{answer}");
    assert!(answer.contains("<TD>OK</TD>"), "{answer}");
    stop(child);
}

#[test]
fn a_bad_range_stops_the_start_naming_the_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, _) = configure(
        dir.path(),
        "[healthcheck]\nallowed_source_ranges = 10.0.0.1/8\n",
    );
    let output = run(&config, &["serve"]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        log.contains("[healthcheck] allowed_source_ranges: \"10.0.0.1/8\" has host bits set"),
        "{log}"
    );
}
