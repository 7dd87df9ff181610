//! Waiting requests: fetches waiting for `min_bytes` and acks=all produces waiting for the
//! high watermark, each with its timeout.
//!
//! Every log-end or high-watermark change bumps one broker-wide version counter; a waiter
//! re-checks its condition whenever the counter moves, until the condition holds or its
//! deadline passes. The number of waiters is bounded: when the bound is reached a request
//! does not wait and is answered with what it has.

use std::sync::Arc;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

/// The broker's waiting room.
#[derive(Debug)]
pub struct Purgatory {
    changed: watch::Sender<u64>,
    slots: Arc<Semaphore>,
}

impl Purgatory {
    /// A purgatory holding at most `max_waiters` waiting requests.
    pub fn new(max_waiters: usize) -> Self {
        Self {
            changed: watch::Sender::new(0),
            slots: Arc::new(Semaphore::new(max_waiters)),
        }
    }

    /// Wakes every waiter to re-check its condition (a log end or high watermark moved).
    pub fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Waits until `ready()` is true or `deadline` passes; returns the last `ready()`.
    /// Without a free waiter slot it returns at once.
    pub async fn wait_until(&self, deadline: Instant, mut ready: impl FnMut() -> bool) -> bool {
        let mut rx = self.changed.subscribe();
        if ready() {
            return true;
        }
        let Ok(_permit) = self.slots.clone().try_acquire_owned() else {
            return false;
        };
        loop {
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {
                    if ready() {
                        return true;
                    }
                }
                Ok(Err(_)) | Err(_) => return ready(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn waiter_wakes_on_notify_or_times_out() {
        let p = Arc::new(Purgatory::new(1));
        let flag = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + Duration::from_secs(5);
        let (p2, f2) = (p.clone(), flag.clone());
        let waiter =
            tokio::spawn(
                async move { p2.wait_until(deadline, || f2.load(Ordering::SeqCst)).await },
            );
        tokio::task::yield_now().await;
        flag.store(true, Ordering::SeqCst);
        p.notify();
        assert!(waiter.await.unwrap());
        let never = p
            .wait_until(Instant::now() + Duration::from_millis(100), || false)
            .await;
        assert!(!never);
    }

    #[tokio::test(start_paused = true)]
    async fn no_free_slot_means_no_wait() {
        let p = Arc::new(Purgatory::new(1));
        let p2 = p.clone();
        let _hold = tokio::spawn(async move {
            p2.wait_until(Instant::now() + Duration::from_secs(60), || false)
                .await
        });
        tokio::task::yield_now().await;
        let start = Instant::now();
        assert!(
            !p.wait_until(Instant::now() + Duration::from_secs(60), || false)
                .await
        );
        assert_eq!(start, Instant::now());
    }
}
