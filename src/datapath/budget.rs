//! A process-wide cap on the image bytes held in memory by all uploads together.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::DataError;

/// Counted in KiB so that one semaphore covers gigabytes.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    kib: u32,
}

impl ByteBudget {
    pub fn new(bytes: u64) -> ByteBudget {
        let kib = u32::try_from((bytes / 1024).max(1))
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32);
        ByteBudget {
            semaphore: Arc::new(Semaphore::new(kib as usize)),
            kib,
        }
    }

    /// Waits until `bytes` fit in the budget; the permit gives them back when dropped.
    pub async fn acquire(&self, bytes: usize) -> Result<OwnedSemaphorePermit, DataError> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.kib);
        self.semaphore
            .clone()
            .acquire_many_owned(kib)
            .await
            .map_err(|_| DataError::Internal("the upload memory budget was closed".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_back_acquirers_beyond_the_budget() {
        let budget = ByteBudget::new(4 << 20);
        let first = budget.acquire(3 << 20).await.expect("fits");
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            budget.acquire(2 << 20),
        )
        .await;
        assert!(waiting.is_err(), "the second acquirer waits");
        drop(first);
        let _second = budget.acquire(2 << 20).await.expect("fits once released");
        // A request larger than the whole budget still proceeds, alone.
        drop(_second);
        let _all = budget
            .acquire(64 << 20)
            .await
            .expect("clamped to the budget");
    }
}
