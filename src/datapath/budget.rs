//! A process-wide cap on the image bytes held in memory by all uploads together.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::DataError;

/// One permit per byte (up to 4 GiB in all), so small frames are not over-counted.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    total: u32,
}

impl ByteBudget {
    pub fn new(bytes: u64) -> ByteBudget {
        let total = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX);
        ByteBudget {
            semaphore: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    fn permits(&self, bytes: usize) -> u32 {
        u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.total)
    }

    /// The permit for `bytes` if they fit now.
    pub fn try_acquire(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        self.semaphore
            .clone()
            .try_acquire_many_owned(self.permits(bytes))
            .ok()
    }

    /// Waits until `bytes` fit in the budget; the permit gives them back when dropped. A
    /// request larger than the whole budget waits for all of it.
    pub async fn acquire(&self, bytes: usize) -> Result<OwnedSemaphorePermit, DataError> {
        self.semaphore
            .clone()
            .acquire_many_owned(self.permits(bytes))
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
        assert!(budget.try_acquire(2 << 20).is_none());
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            budget.acquire(2 << 20),
        )
        .await;
        assert!(waiting.is_err(), "the second acquirer waits");
        drop(first);
        let second = budget.acquire(2 << 20).await.expect("fits once released");
        drop(second);
        // A request larger than the whole budget still proceeds, alone.
        let _all = budget
            .acquire(64 << 20)
            .await
            .expect("clamped to the budget");
        assert!(budget.try_acquire(1).is_none());
    }
}
