//! The server's log lines as an operator's collector reads them: the built binary serving on
//! loopback, stderr captured. Client input in an error never forges a line, in either format.

mod served;

use served::{get, serve, stop};

/// A request whose error message carries a newline and a forged JSON-looking line.
const FORGING_PATH: &str = "/v2/images/x%0A%7B%22forged%22%3Atrue%7D";

#[test]
fn json_lines_hold_the_error_as_plain_text_and_nothing_forges_a_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, port) = serve(dir.path(), "use_json = true");
    assert!(get(port, FORGING_PATH, "").starts_with("HTTP/1.1 404 "));
    let log = stop(child);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let request = lines
        .iter()
        .find(|line| line["fields"]["status"] == 404)
        .unwrap_or_else(|| panic!("no request line in {log}"));
    // The message itself, once: JSON's escaping keeps the newline inside the string.
    assert_eq!(
        request["fields"]["error"],
        "No image found with ID x\n{\"forged\":true}"
    );
    assert!(request["span"]["request_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("req-")));
    assert!(!lines.iter().any(|line| line.get("forged").is_some()));
}

#[test]
fn text_lines_quote_and_escape_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, port) = serve(dir.path(), "");
    assert!(get(port, FORGING_PATH, "").starts_with("HTTP/1.1 404 "));
    let log = stop(child);
    let request = log
        .lines()
        .find(|line| line.contains("status=404"))
        .unwrap_or_else(|| panic!("no request line in {log}"));
    assert!(
        request.contains(r#"error="No image found with ID x\n{\"forged\":true}""#),
        "{request}"
    );
    assert!(
        !log.lines().any(|line| line.starts_with("{\"forged\"")),
        "{log}"
    );
}
