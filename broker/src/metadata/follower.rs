//! The metadata follower: a long-poll `FetchMetadata` loop against any controller.
//!
//! Batches after the image's offset are applied in order; a `snapshot` replaces the image.
//! Each new image is published to the connections and reconciled with the partitions.

use crate::broker::{now_ms, Broker};
use controller::client::ControlClient;
use protocol::control::{ControlRequest, ControlResponse, FetchMetadataRequest, MetadataImage};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const FETCH_MAX_WAIT_MS: u32 = 500;
const FETCH_MAX_BYTES: u32 = 8 << 20;

/// Follows the metadata log until `stop` turns true.
pub async fn run(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut clients: Vec<ControlClient> = broker
        .config
        .controllers
        .iter()
        .map(ControlClient::new)
        .collect();
    let mut idx = 0usize;
    let mut backoff = Duration::from_millis(50);
    while !*stop.borrow() {
        let image = broker.image();
        let req = ControlRequest::FetchMetadata(FetchMetadataRequest {
            broker_id: Some(broker.config.node_id),
            after: image.offset,
            max_wait_ms: FETCH_MAX_WAIT_MS,
            max_bytes: FETCH_MAX_BYTES,
        });
        let limit = Duration::from_millis(FETCH_MAX_WAIT_MS as u64) + Duration::from_secs(2);
        let result = tokio::select! {
            r = clients[idx].call(&req, limit) => r,
            _ = stop.changed() => break,
        };
        match result {
            Ok(ControlResponse::FetchMetadata(resp)) => {
                backoff = Duration::from_millis(50);
                let committed = i64::try_from(resp.committed.0).unwrap_or(i64::MAX);
                broker.metrics.metadata_committed.set_max(committed);
                if resp.snapshot.is_none() && resp.batches.is_empty() {
                    continue;
                }
                let mut next: MetadataImage = match resp.snapshot {
                    Some(s) => {
                        tracing::info!(
                            "metadata snapshot at offset {} replaces the image",
                            s.offset
                        );
                        s
                    }
                    None => (*image).clone(),
                };
                for (offset, batch) in &resp.batches {
                    if *offset > next.offset {
                        next.apply_batch(*offset, batch);
                    }
                }
                let next = Arc::new(next);
                log_broker_changes(&broker, &image, &next);
                broker
                    .metrics
                    .count_isr_changes(broker.config.node_id, &image, &next);
                broker.publish_image(next.clone());
                let b = broker.clone();
                // Only an image at the committed offset may explain every directory on disk.
                let caught_up = next.offset >= resp.committed;
                let applied = tokio::task::spawn_blocking(move || {
                    b.partitions.apply_image(&next, now_ms(), caught_up)
                })
                .await;
                if let Err(e) = applied {
                    tracing::error!("applying metadata to the partitions failed: {e}");
                }
                broker.purgatory.notify();
            }
            Ok(other) => {
                tracing::debug!(
                    "metadata fetch from {} answered {other:?}",
                    clients[idx].addr()
                );
                idx = (idx + 1) % clients.len();
                sleep_or_stop(&mut stop, &mut backoff).await;
            }
            Err(e) => {
                tracing::debug!("metadata fetch failed: {e}");
                idx = (idx + 1) % clients.len();
                sleep_or_stop(&mut stop, &mut backoff).await;
            }
        }
    }
}

async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, backoff: &mut Duration) {
    tokio::select! {
        _ = tokio::time::sleep(*backoff) => {}
        _ = stop.changed() => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(1));
}

/// One log line per fencing change of this broker seen in the metadata.
fn log_broker_changes(broker: &Broker, old: &MetadataImage, new: &MetadataImage) {
    let id = broker.config.node_id;
    let before = old.brokers.get(&id).map(|b| (b.epoch, b.fenced));
    let after = new.brokers.get(&id).map(|b| (b.epoch, b.fenced));
    if before != after {
        if let Some((epoch, fenced)) = after {
            tracing::info!(
                "metadata at offset {}: broker {id} epoch {epoch} is {}",
                new.offset,
                if fenced { "fenced" } else { "unfenced" }
            );
        }
    }
}
