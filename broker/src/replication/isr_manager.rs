//! The leader's ISR manager: proposes ISR shrinks (followers lagging longer than
//! `replica.lag.time.max`) and expansions (caught-up followers) with AlterPartition, one
//! request in flight at a time, and applies the state the controller committed.

use crate::broker::{now_ms, Broker};
use controller::client::ControllerSet;
use protocol::control::{
    AlterPartitionItem, AlterPartitionRequest, ControlRequest, ControlResponse,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often the leaders' ISRs are checked.
const CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// The longest one AlterPartition may take.
const CALL_LIMIT: Duration = Duration::from_secs(5);

/// Checks every led partition each interval until `stop` turns true.
pub async fn run(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut controllers = ControllerSet::new(&broker.config.controllers);
    let lag_max_ms = broker.config.replica_lag_time_max.as_millis() as i64;
    let mut interval = tokio::time::interval(CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stop.borrow() {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => break,
        }
        let Some(broker_epoch) = broker.session.borrow().epoch else {
            continue;
        };
        let now = now_ms();
        let mut items = Vec::new();
        let mut parts = Vec::new();
        for p in broker.partitions.all() {
            if let Some(change) = p.isr_change(now, lag_max_ms) {
                tracing::info!(
                    "{}: proposing ISR {:?} (partition epoch {})",
                    p.tp,
                    change.new_isr.iter().map(|b| b.0).collect::<Vec<_>>(),
                    change.partition_epoch
                );
                items.push(AlterPartitionItem {
                    topic_id: p.topic_id,
                    partition: p.tp.partition,
                    leader_epoch: change.leader_epoch,
                    partition_epoch: change.partition_epoch,
                    new_isr: change.new_isr,
                });
                parts.push(p);
            }
        }
        if items.is_empty() {
            continue;
        }
        let req = ControlRequest::AlterPartition(AlterPartitionRequest {
            broker_id: broker.config.node_id,
            broker_epoch,
            partitions: items,
        });
        let result = tokio::select! {
            r = controllers.call_active(&req, Instant::now() + CALL_LIMIT) => r,
            _ = stop.changed() => break,
        };
        match result {
            Ok(ControlResponse::AlterPartition(resp)) => {
                for r in resp.partitions {
                    let Some(p) = parts
                        .iter()
                        .find(|p| p.topic_id == r.topic_id && p.tp.partition == r.partition)
                    else {
                        continue;
                    };
                    if r.error != 0 {
                        tracing::info!("{}: AlterPartition refused with code {}", p.tp, r.error);
                    }
                    if let Some(state) = &r.state {
                        p.apply_committed(state);
                    }
                }
                broker.purgatory.notify();
            }
            Ok(other) => tracing::warn!("AlterPartition answered {other:?}"),
            Err(e) => tracing::warn!("AlterPartition failed: {e}"),
        }
    }
}
