//! Waiting requests: fetches waiting for `min_bytes` and acks=all produces waiting for the
//! high watermark, each with its timeout.
//!
//! There are two broker-wide version counters: one bumped when a log end moves (what
//! follower fetches wait for), one when a high watermark moves (what acks=all produces,
//! consumer fetches and the group coordinator wait for). A waiter re-checks its condition
//! whenever its counter moves, until the condition holds or its deadline passes, so an
//! append does not wake the produces waiting for replication and a follower's fetch that
//! moved nothing wakes nobody. Role and ISR changes bump both. The number of waiters is
//! bounded: when the bound is reached a request does not wait and is answered with what
//! it has.

use std::sync::Arc;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

/// What a waiter waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// A log end moved (follower fetches).
    LogEnd,
    /// A high watermark moved (acks=all produces, consumer fetches).
    HighWatermark,
}

/// The broker's waiting room.
#[derive(Debug)]
pub struct Purgatory {
    log_end: watch::Sender<u64>,
    high_watermark: watch::Sender<u64>,
    slots: Arc<Semaphore>,
}

fn bump(tx: &watch::Sender<u64>) {
    tx.send_modify(|v| *v = v.wrapping_add(1));
}

impl Purgatory {
    /// A purgatory holding at most `max_waiters` waiting requests.
    pub fn new(max_waiters: usize) -> Self {
        Self {
            log_end: watch::Sender::new(0),
            high_watermark: watch::Sender::new(0),
            slots: Arc::new(Semaphore::new(max_waiters)),
        }
    }

    /// Wakes every waiter to re-check its condition (roles, ISRs or metadata changed).
    pub fn notify(&self) {
        bump(&self.log_end);
        bump(&self.high_watermark);
    }

    /// Wakes the waiters for `what`.
    pub fn notify_of(&self, what: Watch) {
        match what {
            Watch::LogEnd => bump(&self.log_end),
            Watch::HighWatermark => bump(&self.high_watermark),
        }
    }

    /// Waits until `ready()` is true or `deadline` passes, re-checking whenever `what`
    /// is notified; returns the last `ready()`. Without a free waiter slot it returns at
    /// once.
    pub async fn wait_until(
        &self,
        what: Watch,
        deadline: Instant,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        let mut rx = match what {
            Watch::LogEnd => self.log_end.subscribe(),
            Watch::HighWatermark => self.high_watermark.subscribe(),
        };
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
        let waiter = tokio::spawn(async move {
            p2.wait_until(Watch::HighWatermark, deadline, || f2.load(Ordering::SeqCst))
                .await
        });
        tokio::task::yield_now().await;
        flag.store(true, Ordering::SeqCst);
        p.notify();
        assert!(waiter.await.unwrap());
        let never = p
            .wait_until(
                Watch::LogEnd,
                Instant::now() + Duration::from_millis(100),
                || false,
            )
            .await;
        assert!(!never);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_wakes_only_for_what_it_watches() {
        let p = Arc::new(Purgatory::new(4));
        let checks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (p2, c2) = (p.clone(), checks.clone());
        let deadline = Instant::now() + Duration::from_secs(5);
        let waiter = tokio::spawn(async move {
            p2.wait_until(Watch::HighWatermark, deadline, || {
                c2.fetch_add(1, Ordering::SeqCst) >= 1
            })
            .await
        });
        tokio::task::yield_now().await;
        assert_eq!(checks.load(Ordering::SeqCst), 1, "checked once on entry");
        p.notify_of(Watch::LogEnd);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            checks.load(Ordering::SeqCst),
            1,
            "a log-end move is not its business"
        );
        p.notify_of(Watch::HighWatermark);
        assert!(waiter.await.unwrap());
        assert_eq!(checks.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn no_free_slot_means_no_wait() {
        let p = Arc::new(Purgatory::new(1));
        let p2 = p.clone();
        let _hold = tokio::spawn(async move {
            p2.wait_until(
                Watch::LogEnd,
                Instant::now() + Duration::from_secs(60),
                || false,
            )
            .await
        });
        tokio::task::yield_now().await;
        let start = Instant::now();
        assert!(
            !p.wait_until(
                Watch::HighWatermark,
                Instant::now() + Duration::from_secs(60),
                || false
            )
            .await
        );
        assert_eq!(start, Instant::now());
    }
}
