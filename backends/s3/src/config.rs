//! The S3 store's options, named as Glance names them (`s3_store_*`), in `[glance_store]` or
//! a multi-store backend's own section.

use std::path::PathBuf;

pub use glint_store::Secret;

/// How buckets are addressed: `path` (`host/bucket/key`), `virtual` (`bucket.host/key`), or
/// `auto` (virtual unless the bucket name cannot be a host name label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlFormat {
    Auto,
    Path,
    Virtual,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// The operator's name for the store.
    pub name: String,
    /// `s3_store_host`: `host[:port]` (http), or a URL `http(s)://host[:port][/path]`.
    pub host: String,
    /// `s3_store_region_name` (empty: us-east-1, which S3-compatible servers accept).
    pub region: Option<String>,
    pub access_key: String,
    pub secret_key: Secret,
    /// `s3_store_bucket`: where images go; must exist unless `create_bucket_on_put`.
    pub bucket: String,
    pub create_bucket_on_put: bool,
    pub url_format: UrlFormat,
    /// `s3_store_large_object_size` (MiB → bytes; 100 MiB): images of an announced size below
    /// this go in one PUT.
    pub large_object_size: u64,
    /// `s3_store_large_object_chunk_size` (MiB → bytes; 10 MiB, at least 5): the smallest part.
    pub large_object_chunk_size: u64,
    /// `s3_store_thread_pools` (10): parts in flight per upload.
    pub thread_pools: usize,
    /// `s3_store_cacert`: CA bundle for https endpoints (empty: the system's).
    pub cacert: Option<PathBuf>,
}

impl S3Config {
    /// Whether the endpoint is https (`s3_store_host = https://…`).
    pub fn is_https(&self) -> bool {
        self.host
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    }

    /// The endpoint URL: `s3_store_host` with `http://` added when it has no scheme.
    pub fn endpoint(&self) -> String {
        let host = self.host.trim_end_matches('/');
        if host.contains("://") {
            host.to_owned()
        } else {
            format!("http://{host}")
        }
    }

    /// The host part Glance writes into locations: the endpoint without its scheme.
    pub fn location_host(&self) -> String {
        let endpoint = self.endpoint();
        endpoint
            .split_once("://")
            .map_or(endpoint.clone(), |(_, rest)| rest.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str) -> S3Config {
        S3Config {
            name: "s3".into(),
            host: host.into(),
            region: None,
            access_key: "AK".into(),
            secret_key: Secret("very-secret".into()),
            bucket: "images".into(),
            create_bucket_on_put: false,
            url_format: UrlFormat::Auto,
            large_object_size: 100 << 20,
            large_object_chunk_size: 10 << 20,
            thread_pools: 10,
            cacert: None,
        }
    }

    #[test]
    fn endpoints_and_location_hosts() {
        let plain = config("127.0.0.1:7480");
        assert_eq!(plain.endpoint(), "http://127.0.0.1:7480");
        assert!(!plain.is_https());
        assert_eq!(plain.location_host(), "127.0.0.1:7480");
        let tls = config("https://s3.example.com/prefix/");
        assert!(tls.is_https());
        assert_eq!(tls.endpoint(), "https://s3.example.com/prefix");
        assert_eq!(tls.location_host(), "s3.example.com/prefix");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        assert!(!format!("{:?}", config("h")).contains("very-secret"));
    }
}
