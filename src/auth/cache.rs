//! Validation results kept for `token_cache_time`, bounded in size, keyed by a digest of the
//! token (tokens themselves are not kept). Concurrent requests with the same new token share
//! one validation: Keystone is asked once, not once per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};

/// A validation, running or done; `Err` (Keystone unavailable) is never kept.
pub(super) type Pending<T> = Shared<BoxFuture<'static, Result<T, String>>>;

/// Results kept at most: a node serving more distinct tokens than this within
/// `token_cache_time` validates the oldest again.
const CAPACITY: usize = 16_384;

#[derive(Debug)]
pub(super) struct TokenCache<T: Clone> {
    ttl: Option<Duration>,
    entries: Mutex<HashMap<[u8; 32], Entry<T>>>,
}

struct Entry<T: Clone> {
    pending: Pending<T>,
    created: Instant,
}

impl<T: Clone> std::fmt::Debug for Entry<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("created", &self.created)
            .finish()
    }
}

impl<T: Clone + Send + Sync + 'static> TokenCache<T> {
    /// `ttl` None: nothing is kept beyond the validations in flight.
    pub(super) fn new(ttl: Option<Duration>) -> TokenCache<T> {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The result for `key`: kept, in flight, or started now with `validate`.
    pub(super) async fn get_or_validate(
        &self,
        key: &str,
        validate: impl FnOnce() -> BoxFuture<'static, Result<T, String>>,
    ) -> Result<T, String> {
        let digest = openssl::sha::sha256(key.as_bytes());
        let pending = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let fresh = |entry: &Entry<T>| {
                entry.pending.peek().is_none()
                    || self
                        .ttl
                        .is_some_and(|ttl| now.duration_since(entry.created) < ttl)
            };
            match entries.get(&digest) {
                Some(entry) if fresh(entry) => entry.pending.clone(),
                _ => {
                    if entries.len() >= CAPACITY {
                        entries.retain(|_, entry| fresh(entry));
                        evict_oldest(&mut entries);
                    }
                    let pending = validate().shared();
                    entries.insert(
                        digest,
                        Entry {
                            pending: pending.clone(),
                            created: now,
                        },
                    );
                    pending
                }
            }
        };
        let result = pending.clone().await;
        // Failures and, without caching, every result leave with the validation.
        if result.is_err() || self.ttl.is_none() {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries
                .get(&digest)
                .is_some_and(|entry| entry.pending.ptr_eq(&pending))
            {
                entries.remove(&digest);
            }
        }
        result
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Makes room for one more entry by dropping the oldest quarter when still full.
fn evict_oldest<T: Clone>(entries: &mut HashMap<[u8; 32], Entry<T>>) {
    if entries.len() < CAPACITY {
        return;
    }
    let mut ages: Vec<Instant> = entries.values().map(|e| e.created).collect();
    ages.sort_unstable();
    let cutoff = ages[CAPACITY / 4];
    entries.retain(|_, entry| entry.created > cutoff);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    fn counting(
        calls: &Arc<AtomicUsize>,
        answer: Result<u32, String>,
    ) -> impl FnOnce() -> BoxFuture<'static, Result<u32, String>> {
        let calls = calls.clone();
        move || {
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                answer
            }
            .boxed()
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_validation_and_reuse_it() {
        let cache = Arc::new(TokenCache::new(Some(Duration::from_secs(60))));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let cache = cache.clone();
            let validate = counting(&calls, Ok(7));
            tasks.push(tokio::spawn(async move {
                cache.get_or_validate("tok", validate).await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("joins"), Ok(7));
        }
        assert_eq!(
            cache.get_or_validate("tok", counting(&calls, Ok(8))).await,
            Ok(7)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failures_are_not_kept_and_nothing_is_kept_without_a_ttl() {
        let cache = TokenCache::new(Some(Duration::from_secs(60)));
        let calls = Arc::new(AtomicUsize::new(0));
        let down = cache
            .get_or_validate("tok", counting(&calls, Err("down".into())))
            .await;
        assert_eq!(down, Err("down".into()));
        assert_eq!(
            cache.get_or_validate("tok", counting(&calls, Ok(1))).await,
            Ok(1)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let uncached = TokenCache::new(None);
        assert_eq!(
            uncached
                .get_or_validate("tok", counting(&calls, Ok(1)))
                .await,
            Ok(1)
        );
        assert_eq!(
            uncached
                .get_or_validate("tok", counting(&calls, Ok(2)))
                .await,
            Ok(2)
        );
        assert_eq!(uncached.len(), 0);
    }

    #[tokio::test]
    async fn results_expire_after_the_ttl() {
        let cache = TokenCache::new(Some(Duration::from_millis(50)));
        let calls = Arc::new(AtomicUsize::new(0));
        assert_eq!(
            cache.get_or_validate("tok", counting(&calls, Ok(1))).await,
            Ok(1)
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(
            cache.get_or_validate("tok", counting(&calls, Ok(2))).await,
            Ok(2)
        );
    }
}
