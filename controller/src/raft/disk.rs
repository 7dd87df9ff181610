//! Disk calls (fsyncs) made from openraft's async storage methods.
//!
//! openraft awaits its storage inline, and a blocking `fsync` inside an async method holds
//! the runtime thread it runs on. Under a busy disk an fsync takes hundreds of
//! milliseconds, and a controller has only as many runtime threads as cores, so the
//! brokers' heartbeats, the Raft RPCs and the timers would wait behind it. [`blocking`]
//! runs the call with `block_in_place`: the thread hands its other tasks to the rest of
//! the runtime first. openraft still waits for the call (that is the durability it needs);
//! nothing else does.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `f`, which may block on the disk, without holding up the runtime's other tasks.
/// On a current-thread runtime (some tests) there is no other thread, and `f` just runs.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn other_tasks_run_while_a_call_blocks() {
        let (tx, rx) = std::sync::mpsc::channel();
        // On the runtime's only worker: queue a task, then block until it has run.
        let blocker = tokio::spawn(async move {
            tokio::spawn(async move { tx.send(()).unwrap() });
            blocking(|| rx.recv_timeout(Duration::from_secs(10)).is_ok())
        });
        assert!(
            blocker.await.unwrap(),
            "the queued task did not run while the call blocked"
        );
    }

    #[tokio::test]
    async fn a_current_thread_runtime_just_runs_it() {
        assert_eq!(blocking(|| 7), 7);
    }
}
