//! The active controller's decisions, as pure functions of the committed image.
//!
//! No I/O and no clocks here: time comes in as logical milliseconds, and every function
//! returns the records to write (a [`MetadataBatch`]) plus the answer to give once they
//! commit. The tokio side ([`crate::active`]) serializes calls and writes the batches.
//!
//! - [`partition`] — leader and ISR change rules for one partition.
//! - [`sessions`] — broker heartbeat deadlines.
//! - [`brokers`] — registration, heartbeats, fencing, unfencing, controlled shutdown,
//!   preferred-leader election.
//! - [`placement`] — replica placement for new partitions.
//! - [`configs`] — topic config validation.
//! - [`topics`] — CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs.
//! - [`alter_partition`] — AlterPartition validation.
//! - [`producer_ids`] — AllocateProducerIds: blocks of producer ids for brokers.

pub mod alter_partition;
pub mod brokers;
pub mod configs;
#[cfg(test)]
mod invariants;
pub mod partition;
pub mod placement;
pub mod producer_ids;
pub mod sessions;
pub mod topics;

use protocol::control::{ErrorCode, MetadataImage};
use protocol::ids::BrokerId;
use protocol::kafka::ResponseError;

/// The Kafka code of `e`.
pub fn code(e: ResponseError) -> ErrorCode {
    e.code()
}

/// A broker may lead and join ISRs: registered, unfenced and not shutting down.
pub fn usable(image: &MetadataImage, broker: BrokerId) -> bool {
    image
        .brokers
        .get(&broker)
        .is_some_and(|b| !b.fenced && !b.shutting_down)
}

#[cfg(test)]
pub(crate) mod testutil {
    use protocol::control::{MetadataImage, MetadataRecord, PartitionState};
    use protocol::ids::*;

    /// An image with brokers `ids` registered and unfenced (epoch = 1).
    pub fn image_with_brokers(ids: &[i32]) -> MetadataImage {
        let mut img = MetadataImage::new("c1");
        for &id in ids {
            img.apply_batch(
                MetadataOffset(1),
                &[
                    MetadataRecord::RegisterBroker {
                        broker_id: BrokerId(id),
                        incarnation_id: uuid::Uuid::nil(),
                        listeners: vec![],
                        rack: None,
                    },
                    MetadataRecord::UnfenceBroker {
                        broker_id: BrokerId(id),
                        epoch: BrokerEpoch(1),
                    },
                ],
            );
        }
        img
    }

    pub fn apply(img: &mut MetadataImage, batch: &[MetadataRecord]) {
        let next = MetadataOffset(img.offset.0 + 1);
        img.apply_batch(next, batch);
    }

    /// Adds topic `name` with one partition per entry of `replicas` (ISR = replicas, leader = first).
    pub fn add_topic(img: &mut MetadataImage, name: &str, replicas: &[&[i32]]) -> TopicId {
        let id = TopicId::random();
        let mut batch = vec![MetadataRecord::Topic {
            name: name.into(),
            topic_id: id,
        }];
        for (p, r) in replicas.iter().enumerate() {
            let r: Vec<BrokerId> = r.iter().map(|&b| BrokerId(b)).collect();
            batch.push(MetadataRecord::Partition(PartitionState {
                topic_id: id,
                partition: PartitionIndex(p as i32),
                leader: r.first().copied(),
                isr: r.clone(),
                replicas: r,
                leader_epoch: LeaderEpoch(0),
                partition_epoch: PartitionEpoch(0),
            }));
        }
        apply(img, &batch);
        id
    }
}
