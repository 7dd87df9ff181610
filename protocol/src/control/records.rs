//! Metadata records: the only way the metadata image changes.
//!
//! One Raft log entry carries a [`MetadataBatch`]: records that must apply together
//! (fencing a broker and moving the leadership of every partition it led is one batch).
//! All records of a batch share the batch's metadata offset, which is its Raft log index.
//! A broker's epoch is the offset of the batch holding its `RegisterBroker` record.

use crate::ids::{BrokerEpoch, BrokerId, LeaderEpoch, PartitionEpoch, PartitionIndex, TopicId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One listener a broker advertises: `name://host:port`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Listener name, e.g. `INTERNAL` or `EXTERNAL`.
    pub listener: String,
    pub host: String,
    pub port: u16,
}

/// The full state of one partition. Every change writes the whole state (Kafka's
/// PartitionChangeRecord carries only the changed fields; full state keeps apply trivial).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub topic_id: TopicId,
    pub partition: PartitionIndex,
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// In-sync replicas (a subset of `replicas`).
    pub isr: Vec<BrokerId>,
    /// `None` when the partition is offline (no eligible leader).
    pub leader: Option<BrokerId>,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
}

/// A metadata record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A broker registered (or re-registered with a new incarnation). Starts fenced.
    RegisterBroker {
        broker_id: BrokerId,
        incarnation_id: uuid::Uuid,
        listeners: Vec<Endpoint>,
        rack: Option<String>,
    },
    /// A broker lost its session (or asked to be fenced).
    FenceBroker {
        broker_id: BrokerId,
        epoch: BrokerEpoch,
    },
    /// A broker caught up with the metadata log and may lead and follow partitions.
    UnfenceBroker {
        broker_id: BrokerId,
        epoch: BrokerEpoch,
    },
    /// A broker asked for a controlled shutdown.
    BrokerShuttingDown {
        broker_id: BrokerId,
        epoch: BrokerEpoch,
    },
    /// A topic was created.
    Topic { name: String, topic_id: TopicId },
    /// A partition was created or changed (leader, ISR, replicas).
    Partition(PartitionState),
    /// A topic and all its partitions and configs were removed.
    RemoveTopic { topic_id: TopicId },
    /// A topic config was set (`Some`) or removed (`None`).
    TopicConfig {
        topic: String,
        key: String,
        value: Option<String>,
    },
    /// Written by a newly active controller to commit its term; changes nothing.
    NoOp,
    /// The active controller handed a block of producer ids to a broker (Kafka's
    /// ProducerIdsRecord, KIP-730). `next_producer_id` is the first id not yet handed out:
    /// the block was `[next_producer_id - block size, next_producer_id)`. Appended last so
    /// that Raft logs written before it still decode (bincode tags variants by index).
    ProducerIds {
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
        next_producer_id: i64,
    },
}

/// The records of one Raft log entry.
pub type MetadataBatch = Vec<MetadataRecord>;

/// Topic configs as set by users (absent keys take the broker default).
pub type TopicConfigs = BTreeMap<String, String>;
