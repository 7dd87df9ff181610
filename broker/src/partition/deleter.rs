//! The thread that deletes retired log directories (Kafka defers the same work to its
//! scheduler, after `file.delete.delay.ms`).
//!
//! Deleting a partition's gigabytes takes seconds when done gently (see
//! [`storage::RetiredDir`]); the metadata thread only renames the directory and hands it
//! here, so role changes and new topics do not wait for the disk. The queue holds at most
//! one entry per replica this broker ever held, as each is retired once. Directories still
//! queued when the broker stops are found by name and removed at the next start.

use std::sync::mpsc::{channel, Sender};
use storage::RetiredDir;

/// Hands retired directories to a background thread that removes them one by one.
#[derive(Debug)]
pub struct Deleter {
    queue: Option<Sender<RetiredDir>>,
}

impl Deleter {
    /// Starts the thread; without one (the system refused it) directories are removed by
    /// the caller.
    pub fn start() -> Self {
        let (tx, rx) = channel::<RetiredDir>();
        let spawned = std::thread::Builder::new()
            .name("gregor-deleter".into())
            .spawn(move || {
                for dir in rx {
                    remove(dir);
                }
            });
        let queue = match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!("cannot start the log deleter thread ({e}); deleting inline");
                None
            }
        };
        Self { queue }
    }

    /// Queues `dir` for removal (or removes it now, if the thread is gone).
    pub fn delete(&self, dir: RetiredDir) {
        let unsent = match &self.queue {
            Some(tx) => tx.send(dir).err().map(|e| e.0),
            None => Some(dir),
        };
        if let Some(dir) = unsent {
            remove(dir);
        }
    }
}

fn remove(dir: RetiredDir) {
    let path = dir.path().display().to_string();
    match dir.remove() {
        Ok(()) => tracing::info!("deleted {path}"),
        Err(e) => tracing::warn!("cannot delete {path}: {e}"),
    }
}
