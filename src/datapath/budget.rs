//! A process-wide cap on the image bytes held in memory by all uploads together.
//!
//! Frames take permits as they arrive and give them back when every consumer is done with
//! them. A writer that buffers (an object store filling parts) would hold permits while it
//! waits for more, and several such writers could hold the whole budget between them, each
//! waiting for the others; so an upload through such a writer first reserves its writer's
//! buffer plus a pipeline's worth, all at once, and then draws only on that reservation.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::DataError;

/// One permit per byte (up to 4 GiB in all), so small frames are not over-counted.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    total: u32,
    /// For a reservation: its share of the budget it was carved from, returned when the last
    /// clone goes.
    _reserved: Option<Arc<OwnedSemaphorePermit>>,
}

impl ByteBudget {
    pub fn new(bytes: u64) -> ByteBudget {
        let total = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX);
        ByteBudget {
            semaphore: Arc::new(Semaphore::new(total as usize)),
            total,
            _reserved: None,
        }
    }

    /// The whole budget, in bytes.
    pub fn total(&self) -> u64 {
        u64::from(self.total)
    }

    /// Takes `bytes` (at most the whole budget) out of this budget at once, waiting in line
    /// while holding nothing, and returns them as a budget of their own. Because a reservation
    /// is taken whole, reservations can never wait on each other.
    pub async fn reserve(&self, bytes: u64) -> Result<ByteBudget, DataError> {
        let permits = u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.total);
        let reserved = self.acquire(permits as usize).await?;
        Ok(ByteBudget {
            semaphore: Arc::new(Semaphore::new(permits as usize)),
            total: permits,
            _reserved: Some(Arc::new(reserved)),
        })
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

    #[tokio::test]
    async fn a_reservation_is_carved_out_whole_and_given_back() {
        let budget = ByteBudget::new(10 << 20);
        let reserved = budget.reserve(6 << 20).await.expect("fits");
        assert_eq!(reserved.total(), 6 << 20);
        assert!(
            budget.try_acquire(5 << 20).is_none(),
            "6 of 10 MiB are taken"
        );
        let inner = reserved
            .acquire(6 << 20)
            .await
            .expect("the reservation is usable");
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            budget.reserve(6 << 20),
        )
        .await;
        assert!(waiting.is_err(), "a second reservation waits");
        drop(inner);
        drop(reserved);
        let _again = budget.reserve(6 << 20).await.expect("given back");
    }
}
