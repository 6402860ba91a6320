//! Process-wide Prometheus metrics: a small registry of atomics, rendered in the text format
//! 0.0.4 by `/metrics`.
//!
//! The registry is a static (`global()`) because the data path and the import runner count
//! where no `AppState` reaches; one process serves one node, so one registry is its truth.
//! Label sets are looked up once per request or per transfer (a map under a mutex), and the
//! handle found is then bumped with atomics only: nothing is allocated per byte or per frame.
//! Every label value is bounded: `route` is the matched pattern (never the raw path),
//! `method` one of a fixed list, `store` an operator's configured store name.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

/// `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds (seconds) of the request duration buckets: API calls take milliseconds, the
/// data calls seconds; `+Inf` follows.
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The HTTP methods given their own label value; anything else a client sends is `other`,
/// so an invented method cannot create series.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process's registry.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge counted up and down by `InFlight` guards.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Counts one more until the guard is dropped (so an abandoned future still counts down).
    pub fn enter(&'static self) -> InFlight {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Moves the gauge by `n` (for counts kept by their owner, not by guards).
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// One unit of a `Gauge`, given back on drop.
#[derive(Debug)]
pub struct InFlight(&'static Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A histogram of durations over `DURATION_BUCKETS`: one counter per bucket (not cumulative;
/// rendering sums them), the sum in nanoseconds and the count.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        // Past the last bound the observation is only in `+Inf` (the count).
        if let Some(i) = DURATION_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The series of one route.
#[derive(Debug, Default)]
struct RouteSeries {
    /// By (method, status).
    requests: HashMap<(&'static str, u16), u64>,
    /// By method.
    durations: HashMap<&'static str, Arc<Histogram>>,
}

/// Everything Glint counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// By route pattern.
    http: Mutex<HashMap<String, RouteSeries>>,
    written: Mutex<HashMap<String, Arc<Counter>>>,
    read: Mutex<HashMap<String, Arc<Counter>>>,
    /// Uploads and stages receiving data.
    pub uploads_in_flight: Gauge,
    /// Import jobs this node runs.
    pub imports_running: Gauge,
    /// Notifications the broker confirmed.
    pub notifications_sent: Counter,
    /// Notifications lost: the queue was full, or the broker refused them.
    pub notifications_dropped: Counter,
    /// Notifications waiting for the broker.
    pub notifications_queued: Gauge,
    /// Whole or ranged downloads of active images the image cache answered: from a complete
    /// cached file, or following a fill another download started.
    pub cache_hits: Counter,
    /// Downloads of active images that read a store with the cache on (they start a fill, or
    /// the image cannot be cached: a range of an uncached image, no room).
    pub cache_misses: Counter,
    /// Bytes sent to clients from cache files.
    pub cache_bytes_served: Counter,
}

/// A poisoned lock only means another thread panicked mid-increment: the counts stay usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn handle(map: &Mutex<HashMap<String, Arc<Counter>>>, store: &str) -> Arc<Counter> {
    let mut map = lock(map);
    match map.get(store) {
        Some(counter) => counter.clone(),
        None => map.entry(store.to_owned()).or_default().clone(),
    }
}

impl Metrics {
    /// Counts one answered request. `route` is the matched pattern or `UNMATCHED`.
    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let method = METHODS
            .iter()
            .find(|m| **m == method)
            .copied()
            .unwrap_or("other");
        let histogram = {
            let mut http = lock(&self.http);
            // Looked up by `&str` first: only a route's first request allocates its key.
            let series = match http.get_mut(route) {
                Some(series) => series,
                None => http.entry(route.to_owned()).or_default(),
            };
            *series.requests.entry((method, status)).or_default() += 1;
            series.durations.entry(method).or_default().clone()
        };
        histogram.observe(elapsed);
    }

    /// The counter of bytes written to `store`, to keep for a transfer.
    pub fn store_written(&self, store: &str) -> Arc<Counter> {
        handle(&self.written, store)
    }

    /// The counter of bytes read from `store`, to keep for a transfer.
    pub fn store_read(&self, store: &str) -> Arc<Counter> {
        handle(&self.read, store)
    }

    /// The text exposition of every metric, with `pools` (the database pools' connection
    /// counts: pool, idle, in use) read by the caller.
    pub fn render(&self, pools: &[PoolConnections]) -> String {
        let mut out = String::with_capacity(4096);
        self.render_http(&mut out);
        for (name, help, map) in [
            (
                "glint_store_bytes_written_total",
                "Bytes handed to a store's writer (including writes later aborted).",
                &self.written,
            ),
            (
                "glint_store_bytes_read_total",
                "Bytes of image data read from a store and sent on (downloads, copies, imports).",
                &self.read,
            ),
        ] {
            header(&mut out, name, help, "counter");
            let mut stores: Vec<(String, u64)> = lock(map)
                .iter()
                .map(|(store, counter)| (store.clone(), counter.get()))
                .collect();
            stores.sort();
            for (store, value) in stores {
                sample(&mut out, name, &[("store", &store)], value);
            }
        }
        header(
            &mut out,
            "glint_uploads_in_flight",
            "Uploads and stages currently receiving data.",
            "gauge",
        );
        sample(
            &mut out,
            "glint_uploads_in_flight",
            &[],
            self.uploads_in_flight.get(),
        );
        header(
            &mut out,
            "glint_imports_running",
            "Import jobs this node is running.",
            "gauge",
        );
        sample(
            &mut out,
            "glint_imports_running",
            &[],
            self.imports_running.get(),
        );
        for (name, help, value) in [
            (
                "glint_notifications_sent_total",
                "Notifications the message broker confirmed.",
                self.notifications_sent.get(),
            ),
            (
                "glint_notifications_dropped_total",
                "Notifications lost: the queue waiting for the broker was full, or the broker refused them.",
                self.notifications_dropped.get(),
            ),
        ] {
            header(&mut out, name, help, "counter");
            sample(&mut out, name, &[], value);
        }
        header(
            &mut out,
            "glint_notifications_queued",
            "Notifications waiting to be sent to the message broker.",
            "gauge",
        );
        sample(
            &mut out,
            "glint_notifications_queued",
            &[],
            self.notifications_queued.get(),
        );
        for (name, help, counter) in [
            (
                "glint_image_cache_hits_total",
                "Downloads served by this node's image cache (complete file or a fill in progress).",
                &self.cache_hits,
            ),
            (
                "glint_image_cache_misses_total",
                "Downloads of active images that read a store while the image cache is on.",
                &self.cache_misses,
            ),
            (
                "glint_image_cache_bytes_served_total",
                "Bytes of image data sent to clients from the image cache.",
                &self.cache_bytes_served,
            ),
        ] {
            header(&mut out, name, help, "counter");
            sample(&mut out, name, &[], counter.get());
        }
        let name = "glint_db_pool_connections";
        header(
            &mut out,
            name,
            "Open metadata database connections by pool and state.",
            "gauge",
        );
        for pool in pools {
            sample(
                &mut out,
                name,
                &[("pool", pool.pool), ("state", "idle")],
                pool.idle,
            );
            sample(
                &mut out,
                name,
                &[("pool", pool.pool), ("state", "in_use")],
                pool.in_use,
            );
        }
        header(
            &mut out,
            "glint_build_info",
            "Glint's version; the value is always 1.",
            "gauge",
        );
        sample(
            &mut out,
            "glint_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );
        out
    }

    fn render_http(&self, out: &mut String) {
        // A snapshot first, so that rendering holds the lock only to copy numbers.
        let mut requests: Vec<(String, &'static str, u16, u64)> = Vec::new();
        let mut durations: Vec<(String, &'static str, Arc<Histogram>)> = Vec::new();
        for (route, series) in lock(&self.http).iter() {
            for ((method, status), n) in &series.requests {
                requests.push((route.clone(), method, *status, *n));
            }
            for (method, histogram) in &series.durations {
                durations.push((route.clone(), method, histogram.clone()));
            }
        }
        requests.sort();
        durations.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let name = "glint_http_requests_total";
        header(out, name, "HTTP requests answered.", "counter");
        for (route, method, status, n) in &requests {
            let status = status.to_string();
            sample(
                out,
                name,
                &[("route", route), ("method", method), ("status", &status)],
                *n,
            );
        }
        let name = "glint_http_request_duration_seconds";
        header(
            out,
            name,
            "Time from a request's arrival to its response head.",
            "histogram",
        );
        for (route, method, histogram) in &durations {
            histogram_samples(
                out,
                name,
                &[("route", route), ("method", method)],
                histogram,
            );
        }
    }
}

/// The connections of one database pool, for `glint_db_pool_connections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConnections {
    /// `read` or `write`.
    pub pool: &'static str,
    pub idle: usize,
    pub in_use: usize,
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One `name{labels} value` line.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_into(out, value);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// The `_bucket` (cumulative, ending with `+Inf` = count), `_sum` and `_count` lines.
fn histogram_samples(out: &mut String, name: &str, labels: &[(&str, &str)], h: &Histogram) {
    // The count is read first: buckets observed meanwhile can only make `+Inf` look behind,
    // so it is rendered as the count itself, keeping the buckets monotonic.
    let count = h.count.load(Ordering::Relaxed);
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0u64;
    for (bound, n) in DURATION_BUCKETS.iter().zip(&h.buckets) {
        cumulative = (cumulative + n.load(Ordering::Relaxed)).min(count);
        let le = bound.to_string();
        sample(out, &bucket, &with_le(labels, &le), cumulative);
    }
    sample(out, &bucket, &with_le(labels, "+Inf"), count);
    let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    sample(out, &format!("{name}_sum"), labels, sum);
    sample(out, &format!("{name}_count"), labels, count);
}

fn with_le<'a>(labels: &[(&'a str, &'a str)], le: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut all = labels.to_vec();
    all.push(("le", le));
    all
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("a", "x\\y\"z\nw"), ("b", "plain")], 3);
        assert_eq!(out, "m{a=\"x\\\\y\\\"z\\nw\",b=\"plain\"} 3\n");
        let mut out = String::new();
        sample(&mut out, "m", &[], 0);
        assert_eq!(out, "m 0\n");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_the_count() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3)); // ≤ 0.005
        h.observe(Duration::from_millis(30)); // ≤ 0.05
        h.observe(Duration::from_millis(40)); // ≤ 0.05
        h.observe(Duration::from_secs(20)); // only +Inf
        let mut out = String::new();
        histogram_samples(&mut out, "d", &[("route", "/x")], &h);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), DURATION_BUCKETS.len() + 3);
        assert_eq!(lines[0], "d_bucket{route=\"/x\",le=\"0.005\"} 1");
        assert_eq!(lines[1], "d_bucket{route=\"/x\",le=\"0.01\"} 1");
        assert_eq!(lines[3], "d_bucket{route=\"/x\",le=\"0.05\"} 3");
        assert_eq!(lines[11], "d_bucket{route=\"/x\",le=\"10\"} 3");
        assert_eq!(lines[12], "d_bucket{route=\"/x\",le=\"+Inf\"} 4");
        assert_eq!(lines[13], "d_sum{route=\"/x\"} 20.073");
        assert_eq!(lines[14], "d_count{route=\"/x\"} 4");
    }

    #[test]
    fn requests_are_counted_by_route_method_and_status() {
        let metrics = Metrics::default();
        metrics.record_request(
            "/v2/images/{image_id}",
            "GET",
            404,
            Duration::from_millis(1),
        );
        metrics.record_request(
            "/v2/images/{image_id}",
            "GET",
            404,
            Duration::from_millis(1),
        );
        metrics.record_request(UNMATCHED, "BREW", 405, Duration::from_millis(1));
        metrics.store_written("fast").add(7);
        let text = metrics.render(&[PoolConnections {
            pool: "write",
            idle: 2,
            in_use: 1,
        }]);
        for line in [
            "glint_http_requests_total{route=\"/v2/images/{image_id}\",method=\"GET\",status=\"404\"} 2",
            "glint_http_requests_total{route=\"unmatched\",method=\"other\",status=\"405\"} 1",
            "glint_http_request_duration_seconds_count{route=\"/v2/images/{image_id}\",method=\"GET\"} 2",
            "glint_store_bytes_written_total{store=\"fast\"} 7",
            "glint_db_pool_connections{pool=\"write\",state=\"idle\"} 2",
            "glint_db_pool_connections{pool=\"write\",state=\"in_use\"} 1",
            "# TYPE glint_http_request_duration_seconds histogram",
            "# TYPE glint_store_bytes_read_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(text.contains("glint_build_info{version=\""), "{text}");
    }

    #[test]
    fn a_gauge_counts_down_when_its_guard_is_dropped() {
        let gauge: &'static Gauge = Box::leak(Box::new(Gauge::default()));
        let one = gauge.enter();
        let two = gauge.enter();
        assert_eq!(gauge.get(), 2);
        drop(one);
        drop(two);
        assert_eq!(gauge.get(), 0);
    }
}
