//! Replication on this broker: the follower side (fetchers and truncation) and the
//! leader's ISR management.
//!
//! ```text
//!  partition roles ──(every TICK)──> run(): group followed partitions by leader
//!                                        │                         │
//!                       fetcher.rs (one task per source broker)   isr.rs decisions ──>
//!                       truncation.rs (where to cut a new follower)  AlterPartition
//! ```
//!
//! - [`client`]: a minimal Kafka client connection for inter-broker requests.
//! - [`fetcher`]: the replica fetcher task.
//! - [`truncation`]: the truncation-point decision (pure).
//! - [`isr`]: the ISR shrink/expand decision (pure); [`isr_manager`] sends it.

pub mod client;
pub mod fetcher;
pub mod isr;
pub mod isr_manager;
pub mod truncation;

#[cfg(test)]
mod follower_tests;

use crate::broker::Broker;
use crate::partition::Partition;
use protocol::ids::BrokerId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often fetcher assignments are reconciled with the partition roles.
const TICK: Duration = Duration::from_millis(50);

struct FetcherHandle {
    assigned: watch::Sender<Vec<Arc<Partition>>>,
    task: JoinHandle<()>,
}

/// Runs the fetchers and the ISR manager until `stop` turns true.
pub async fn run(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let isr = tokio::spawn(isr_manager::run(broker.clone(), stop.clone()));
    let mut fetchers: HashMap<BrokerId, FetcherHandle> = HashMap::new();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stop.borrow() {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => break,
        }
        let mut wanted: HashMap<BrokerId, Vec<Arc<Partition>>> = HashMap::new();
        for p in broker.partitions.all() {
            if let Some(leader) = p.follower_view().and_then(|v| v.leader) {
                if leader != broker.config.node_id {
                    wanted.entry(leader).or_default().push(p);
                }
            }
        }
        fetchers.retain(|source, f| {
            let keep = wanted.contains_key(source) && !f.task.is_finished();
            if !keep {
                f.task.abort();
            }
            keep
        });
        for (source, mut parts) in wanted {
            parts.sort_by(|a, b| a.tp.cmp(&b.tp));
            match fetchers.get(&source) {
                Some(f) => {
                    f.assigned.send_if_modified(|cur| {
                        let same = cur.len() == parts.len()
                            && cur.iter().zip(&parts).all(|(a, b)| Arc::ptr_eq(a, b));
                        if !same {
                            *cur = parts;
                        }
                        !same
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(parts);
                    let task = tokio::spawn(fetcher::run(broker.clone(), source, rx));
                    fetchers.insert(source, FetcherHandle { assigned: tx, task });
                }
            }
        }
    }
    for (_, f) in fetchers {
        drop(f.assigned);
        f.task.abort();
    }
    let _ = isr.await;
}
