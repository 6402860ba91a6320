//! object_store's errors as `StoreError` outcomes. Messages name the store, never a
//! credential (object_store's errors carry paths and status texts, not keys).

use glint_store::StoreError;

pub(crate) fn store_error(store: &str, location: &str, error: object_store::Error) -> StoreError {
    use object_store::Error as E;
    match error {
        E::NotFound { .. } => StoreError::NotFound(location.to_owned()),
        E::AlreadyExists { .. } | E::Precondition { .. } => {
            StoreError::AlreadyExists(location.to_owned())
        }
        // The store's own keys refused, or the bucket is not theirs: an operator's fix.
        E::PermissionDenied { source, .. } | E::Unauthenticated { source, .. } => {
            StoreError::Misconfigured {
                store: store.to_owned(),
                why: format!("the S3 server refused the store's credentials: {source}"),
            }
        }
        E::Generic { source, .. } if untrusted_certificate(source.as_ref()) => {
            StoreError::Misconfigured {
                store: store.to_owned(),
                why: "the S3 server's TLS certificate is not trusted (see s3_store_cacert)"
                    .to_owned(),
            }
        }
        E::Generic { source, .. } if is_transport(source.as_ref()) => StoreError::Unavailable {
            store: store.to_owned(),
            retryable: true,
            source,
        },
        E::Generic { source, .. } => StoreError::Backend {
            store: store.to_owned(),
            source,
        },
        other => StoreError::Backend {
            store: store.to_owned(),
            source: Box::new(other),
        },
    }
}

/// A request that got no answer, from its error text: an untrusted certificate is the
/// operator's to fix, anything else an outage.
pub(crate) fn unanswered(store: &str, text: String) -> StoreError {
    if text.contains("certificate verify failed") {
        return StoreError::Misconfigured {
            store: store.to_owned(),
            why: "the S3 server's TLS certificate is not trusted (see s3_store_cacert)".to_owned(),
        };
    }
    StoreError::Unavailable {
        store: store.to_owned(),
        retryable: true,
        source: text.into(),
    }
}

/// Whether the TLS handshake failed on the server's certificate (OpenSSL's verify error,
/// somewhere in the chain): a configuration to fix, not an outage to wait out.
fn untrusted_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if e.to_string().contains("certificate verify failed") {
            return true;
        }
        current = e.source();
    }
    false
}

/// Whether the server could not be reached or answered 5xx (after object_store's retries).
fn is_transport(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
            return matches!(
                http.kind(),
                object_store::client::HttpErrorKind::Connect
                    | object_store::client::HttpErrorKind::Timeout
                    | object_store::client::HttpErrorKind::Interrupted
                    | object_store::client::HttpErrorKind::Request
            );
        }
        current = e.source();
    }
    // A 5xx after the retries shows only in the text (object_store keeps its error types
    // private): "Server returned non-2xx status code: 503 …".
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if e.to_string().contains("non-2xx status code: 5") {
            return true;
        }
        current = e.source();
    }
    false
}
