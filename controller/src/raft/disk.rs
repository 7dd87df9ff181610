//! Disk calls (fsyncs) made from openraft's async storage methods.
//!
//! openraft awaits its storage inline, and a blocking `fsync` inside an async method holds
//! the runtime thread it runs on. Under a busy disk an fsync takes hundreds of
//! milliseconds, and a controller has only as many runtime threads as cores, so the
//! brokers' heartbeats, the Raft RPCs and the timers would wait behind it. [`blocking`]
//! runs the call with `block_in_place`: the thread hands its other tasks to the rest of
//! the runtime first. openraft still waits for the call (that is the durability it needs);
//! nothing else does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, RuntimeFlavor};

/// A disk call slower than this is logged: elections need votes on disk well within the
/// election timeout (400 ms by default).
const SLOW: Duration = Duration::from_millis(150);
/// At most one such warning this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Runs `f` (`what` it writes, for the log), which may block on the disk, without holding
/// up the runtime's other tasks. On a current-thread runtime (some tests) there is no other
/// thread, and `f` just runs. A slow call is logged, at most once per [`WARN_EVERY`].
pub fn blocking<R>(what: &'static str, f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let r = match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    };
    let took = start.elapsed();
    if took >= SLOW && warning_due(start) {
        tracing::warn!(
            "writing the Raft {what} to disk took {} ms; elections need writes well under \
             --raft-election-timeout-ms (see docs/operations.md, controllers on a slow disk)",
            took.as_millis()
        );
    }
    r
}

/// Whether a warning may be logged at `now` (and, if so, records it).
fn warning_due(now: Instant) -> bool {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // Milliseconds after EPOCH of the last warning, plus one (0: none yet).
    static LAST: AtomicU64 = AtomicU64::new(0);
    let epoch = *EPOCH.get_or_init(|| now);
    let at = now.saturating_duration_since(epoch).as_millis() as u64 + 1;
    let last = LAST.load(Ordering::Relaxed);
    let due = last == 0 || at >= last + WARN_EVERY.as_millis() as u64;
    due && LAST
        .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn other_tasks_run_while_a_call_blocks() {
        let (tx, rx) = std::sync::mpsc::channel();
        // On the runtime's only worker: queue a task, then block until it has run.
        let blocker = tokio::spawn(async move {
            tokio::spawn(async move { tx.send(()).unwrap() });
            blocking("test", || rx.recv_timeout(Duration::from_secs(10)).is_ok())
        });
        assert!(
            blocker.await.unwrap(),
            "the queued task did not run while the call blocked"
        );
    }

    #[tokio::test]
    async fn a_current_thread_runtime_just_runs_it() {
        assert_eq!(blocking("test", || 7), 7);
    }

    #[test]
    fn slow_writes_are_logged_at_most_once_per_interval() {
        let t0 = Instant::now();
        assert!(warning_due(t0));
        assert!(!warning_due(t0 + Duration::from_secs(1)));
        assert!(warning_due(t0 + WARN_EVERY + Duration::from_secs(1)));
        assert!(!warning_due(t0 + WARN_EVERY + Duration::from_secs(2)));
    }
}
