//! Error bodies as webob writes them: the reason phrase, the default explanations, the choice
//! between JSON, HTML and plain text by `Accept`, and the templates, byte for byte.

use axum::http::{header, HeaderMap, StatusCode};

use crate::domain::error::Message;

/// webob's title for a status (the reason phrase it uses).
pub fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        413 => "Request Entity Too Large",
        416 => "Request Range Not Satisfiable",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

/// webob's default explanation, for errors raised without one (404 from routing, 405).
pub fn default_explanation(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The server could not comply with the request since it is either malformed or otherwise incorrect.",
        401 => "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.",
        403 => "Access was denied to this resource.",
        404 => "The resource could not be found.",
        409 => "There was a conflict when trying to complete your request.",
        410 => "This resource is no longer available. No forwarding address is given.",
        413 => "The body of your request was too large for this server.",
        416 => "The Range requested is not available.",
        500 => "The server has either erred or is incapable of performing the requested operation.",
        503 => "The server is currently unavailable. Please try again at a later time.",
        _ => "",
    }
}

/// The three body forms webob chooses between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyForm {
    Json,
    Html,
    Plain,
}

/// The quality `accept` (an `Accept` header's value) gives media type `offer`: that of its
/// most specific matching range (`type/subtype` over `type/*` over `*/*`), 0 when none
/// matches.
pub fn accept_quality(accept: &str, offer: &str) -> f32 {
    let (kind, _) = offer.split_once('/').unwrap_or((offer, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let specificity = if media == offer {
            3
        } else if media == format!("{kind}/*") {
            2
        } else if media == "*/*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map(|(_, q)| q).unwrap_or(0.0)
}

/// webob's choice: the best of `text/html` and `application/json` by `Accept` quality (HTML
/// first on ties, so `*/*` gets HTML), else plain text; no `Accept` header means plain text.
pub fn body_form(headers: &HeaderMap) -> BodyForm {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return BodyForm::Plain;
    };
    let quality = |offer: &str| accept_quality(accept, offer);
    let html = quality("text/html");
    let json = quality("application/json");
    if html > 0.0 && html >= json {
        BodyForm::Html
    } else if json > 0.0 {
        BodyForm::Json
    } else {
        BodyForm::Plain
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// webob's `strip_tags`: newlines become spaces, `<br />` becomes a newline, other tags go.
fn strip_tags(text: &str) -> String {
    let text = text.replace('\n', " ").replace('\r', "");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let tag = &rest[start..start + end + 1];
        if tag.to_ascii_lowercase().starts_with("<br") {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// What of the request the body templates mention.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub method: String,
    pub content_type: String,
}

/// Fills webob's body template for `status`: `explanation<br /><br />\ndetail\n\n`, or
/// the 405/415 templates that name the request's method or media type.
fn fill_template(
    status: StatusCode,
    message: &Message,
    facts: &RequestFacts,
    escape: fn(&str) -> String,
) -> String {
    let detail = match message {
        Message::Detail(detail) => escape(detail),
        _ => String::new(),
    };
    match status.as_u16() {
        405 => format!(
            "The method {} is not allowed for this resource. <br /><br />\n{detail}",
            escape(&facts.method)
        ),
        415 => format!(
            "The request media type {} is not supported by this server.\n<br /><br />\n{detail}",
            escape(&facts.content_type)
        ),
        _ => {
            let explanation = match message {
                Message::Explanation(text) => escape(text),
                _ => escape(default_explanation(status)),
            };
            format!("{explanation}<br /><br />\n{detail}\n\n")
        }
    }
}

/// Renders the body and its content type, as webob's `WSGIHTTPException` does.
pub fn render_body(
    status: StatusCode,
    message: &Message,
    facts: &RequestFacts,
    form: BodyForm,
) -> (&'static str, String) {
    let code = format!("{} {}", status.as_u16(), title(status));
    match form {
        BodyForm::Json => {
            let body = serde_json::json!({
                "message": fill_template(status, message, facts, str::to_owned),
                "code": code,
                "title": title(status),
            });
            ("application/json", body.to_string())
        }
        BodyForm::Html => (
            "text/html; charset=UTF-8",
            format!(
                "<html>\n <head>\n  <title>{code}</title>\n </head>\n <body>\n  <h1>{code}</h1>\n  {}\n </body>\n</html>",
                fill_template(status, message, facts, escape_html)
            ),
        ),
        BodyForm::Plain => (
            "text/plain; charset=UTF-8",
            format!("{code}\n\n{}", strip_tags(&fill_template(status, message, facts, str::to_owned))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn form(accept: Option<&str>) -> BodyForm {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(
                header::ACCEPT,
                HeaderValue::from_str(a).expect("valid header"),
            );
        }
        body_form(&headers)
    }

    #[test]
    fn accept_selects_the_body_form_like_webob() {
        assert_eq!(form(None), BodyForm::Plain);
        assert_eq!(form(Some("*/*")), BodyForm::Html);
        assert_eq!(form(Some("application/json")), BodyForm::Json);
        assert_eq!(form(Some("application/json, */*;q=0.5")), BodyForm::Json);
        assert_eq!(form(Some("text/plain")), BodyForm::Plain);
        assert_eq!(form(Some("text/html;q=0, application/*")), BodyForm::Json);
    }

    fn render(status: StatusCode, message: Message, form: BodyForm) -> String {
        let facts = RequestFacts {
            method: "PUT".into(),
            content_type: "application/json".into(),
        };
        render_body(status, &message, &facts, form).1
    }

    #[test]
    fn bodies_match_webob_byte_for_byte() {
        let json: serde_json::Value = serde_json::from_str(&render(
            StatusCode::CONFLICT,
            Message::Explanation("Nope".into()),
            BodyForm::Json,
        ))
        .expect("json");
        assert_eq!(json["message"], "Nope<br /><br />\n\n\n");
        assert_eq!(json["code"], "409 Conflict");
        assert_eq!(json["title"], "Conflict");
        assert_eq!(
            render(
                StatusCode::NOT_FOUND,
                Message::Explanation("No image found with ID abc".into()),
                BodyForm::Plain
            ),
            "404 Not Found\n\nNo image found with ID abc\n\n   "
        );
        assert_eq!(
            render(StatusCode::FORBIDDEN, Message::Detail("Property foo may not be removed.".into()), BodyForm::Plain),
            "403 Forbidden\n\nAccess was denied to this resource.\n\n Property foo may not be removed.  "
        );
        let json: serde_json::Value = serde_json::from_str(&render(
            StatusCode::METHOD_NOT_ALLOWED,
            Message::Default,
            BodyForm::Json,
        ))
        .expect("json");
        assert_eq!(
            json["message"],
            "The method PUT is not allowed for this resource. <br /><br />\n"
        );
        assert_eq!(
            render(
                StatusCode::METHOD_NOT_ALLOWED,
                Message::Default,
                BodyForm::Plain
            ),
            "405 Method Not Allowed\n\nThe method PUT is not allowed for this resource. \n\n "
        );
        let json: serde_json::Value = serde_json::from_str(&render(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Message::Detail("Use X.".into()),
            BodyForm::Json,
        ))
        .expect("json");
        assert_eq!(
            json["message"],
            "The request media type application/json is not supported by this server.\n<br /><br />\nUse X."
        );
        assert!(render(
            StatusCode::FORBIDDEN,
            Message::Explanation("it's <b>".into()),
            BodyForm::Html
        )
        .contains("<h1>403 Forbidden</h1>\n  it&#x27;s &lt;b&gt;<br /><br />"));
    }
}
