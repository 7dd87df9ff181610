//! Requests and responses of the internal control protocol.
//!
//! Brokers talk to controllers (registration, heartbeats, AlterPartition, forwarded admin
//! requests, the metadata feed) and controllers talk to each other (Raft RPCs). Where Kafka
//! defines the message (BrokerRegistration, BrokerHeartbeat, AlterPartition,
//! DescribeQuorum) the fields and their meaning mirror Kafka's.
//!
//! Errors are Kafka error codes (`kafka_protocol::ResponseError::code()`), so a forwarded
//! admin request can hand the controller's answer to the client unchanged.

use super::image::MetadataImage;
use super::records::{Endpoint, MetadataBatch, PartitionState, TopicConfigs};
use crate::ids::{
    BrokerEpoch, BrokerId, LeaderEpoch, MetadataOffset, NodeId, PartitionEpoch, PartitionIndex,
    TopicId,
};
use serde::{Deserialize, Serialize};

/// A Kafka error code; 0 is success.
pub type ErrorCode = i16;

/// Every request a control-protocol server accepts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControlRequest {
    BrokerRegistration(BrokerRegistrationRequest),
    BrokerHeartbeat(BrokerHeartbeatRequest),
    AlterPartition(AlterPartitionRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    CreatePartitions(CreatePartitionsRequest),
    AlterConfigs(AlterConfigsRequest),
    FetchMetadata(FetchMetadataRequest),
    DescribeQuorum,
    /// A Raft RPC between controllers. The payload is the controller's own encoding of
    /// openraft's request type; this crate does not know the Raft type configuration.
    Raft {
        kind: RaftRpcKind,
        payload: Vec<u8>,
    },
    /// A broker asks for a block of producer ids (Kafka's AllocateProducerIds, KIP-730).
    /// Last, so that the tags of the other variants stay what they were.
    AllocateProducerIds(AllocateProducerIdsRequest),
}

/// Every response, one variant per request kind plus a request-level error.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ControlResponse {
    BrokerRegistration(BrokerRegistrationResponse),
    BrokerHeartbeat(BrokerHeartbeatResponse),
    AlterPartition(AlterPartitionResponse),
    CreateTopics(Vec<TopicResult>),
    DeleteTopics(Vec<TopicResult>),
    CreatePartitions(Vec<TopicResult>),
    AlterConfigs(Vec<TopicResult>),
    FetchMetadata(FetchMetadataResponse),
    DescribeQuorum(QuorumStatus),
    Raft {
        payload: Vec<u8>,
    },
    /// The request as a whole failed: `NOT_CONTROLLER` (with the active controller, when
    /// known), a decode error, or a server error.
    Error(ControlError),
    /// Last, like its request.
    AllocateProducerIds(AllocateProducerIdsResponse),
}

/// A request-level failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlError {
    pub code: ErrorCode,
    pub message: String,
    /// The active controller, when this node knows it (on `NOT_CONTROLLER`).
    pub leader: Option<ControllerAddr>,
}

/// A controller's id and control-protocol address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerAddr {
    pub node_id: NodeId,
    /// `host:port`
    pub addr: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftRpcKind {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistrationRequest {
    pub broker_id: BrokerId,
    pub cluster_id: String,
    /// Random per process start; a new incarnation replaces the old registration.
    pub incarnation_id: uuid::Uuid,
    pub listeners: Vec<Endpoint>,
    pub rack: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistrationResponse {
    pub error: ErrorCode,
    pub message: Option<String>,
    pub broker_epoch: BrokerEpoch,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeatRequest {
    pub broker_id: BrokerId,
    pub broker_epoch: BrokerEpoch,
    /// The highest metadata offset the broker has applied.
    pub current_metadata_offset: MetadataOffset,
    pub want_fence: bool,
    pub want_shutdown: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerHeartbeatResponse {
    pub error: ErrorCode,
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub should_shutdown: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    /// The partition leader asking for the change.
    pub broker_id: BrokerId,
    pub broker_epoch: BrokerEpoch,
    pub partitions: Vec<AlterPartitionItem>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionItem {
    pub topic_id: TopicId,
    pub partition: PartitionIndex,
    pub leader_epoch: LeaderEpoch,
    /// The partition epoch the leader's view is based on; a mismatch is refused.
    pub partition_epoch: PartitionEpoch,
    pub new_isr: Vec<BrokerId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionResponse {
    pub partitions: Vec<AlterPartitionResult>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionResult {
    pub topic_id: TopicId,
    pub partition: PartitionIndex,
    pub error: ErrorCode,
    /// The committed state after the change (or the current one, on error when known).
    pub state: Option<PartitionState>,
}

/// The number of producer ids in one block (Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateProducerIdsRequest {
    pub broker_id: BrokerId,
    /// The epoch of the broker's current registration; another one is STALE_BROKER_EPOCH.
    pub broker_epoch: BrokerEpoch,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateProducerIdsResponse {
    pub error: ErrorCode,
    /// The first id of the block (-1 on error).
    pub producer_id_start: i64,
    /// The number of ids in the block, `[start, start + len)` (0 on error).
    pub producer_id_len: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicsRequest {
    pub topics: Vec<NewTopic>,
    pub validate_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    pub name: String,
    /// -1 for the controller's default.
    pub num_partitions: i32,
    /// -1 for the controller's default.
    pub replication_factor: i16,
    /// Explicit replica assignment per partition, instead of placement.
    pub assignments: Option<Vec<Vec<BrokerId>>>,
    pub configs: TopicConfigs,
}

/// The outcome for one topic of an admin request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicResult {
    pub name: String,
    pub topic_id: Option<TopicId>,
    pub error: ErrorCode,
    pub message: Option<String>,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteTopicsRequest {
    /// Topics by name.
    pub names: Vec<String>,
    /// Topics by id (Kafka DeleteTopics v6+).
    pub ids: Vec<TopicId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitionsRequest {
    pub topics: Vec<PartitionsIncrease>,
    pub validate_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionsIncrease {
    pub name: String,
    /// The new total number of partitions.
    pub count: i32,
    pub assignments: Option<Vec<Vec<BrokerId>>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterConfigsRequest {
    pub topics: Vec<TopicConfigChange>,
    pub validate_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfigChange {
    pub topic: String,
    /// Legacy AlterConfigs: the given set replaces every config of the topic.
    pub replace_all: bool,
    pub ops: Vec<ConfigOp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigOp {
    Set { key: String, value: String },
    Delete { key: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchMetadataRequest {
    /// The fetching broker, if a broker (used for quorum observer status).
    pub broker_id: Option<BrokerId>,
    /// Return batches with offset greater than this.
    pub after: MetadataOffset,
    /// Wait up to this long for a new committed batch when none is available.
    pub max_wait_ms: u32,
    /// Stop adding batches past this many encoded bytes (at least one is returned).
    pub max_bytes: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchMetadataResponse {
    /// When `after` is older than the oldest batch this node keeps: the whole image at
    /// `snapshot.offset`, to replace the broker's image; `batches` then continue from it.
    pub snapshot: Option<MetadataImage>,
    /// Committed batches in offset order.
    pub batches: Vec<(MetadataOffset, MetadataBatch)>,
    /// The highest committed offset this node knows of.
    pub committed: MetadataOffset,
}

/// Quorum state, with kafka-metadata-quorum's vocabulary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumStatus {
    pub cluster_id: String,
    pub leader_id: Option<NodeId>,
    /// The Raft term.
    pub leader_epoch: u64,
    pub high_watermark: u64,
    pub voters: Vec<ReplicaStatus>,
    pub observers: Vec<ReplicaStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// A controller's node id, or a broker id for an observer.
    pub replica_id: i64,
    pub log_end_offset: u64,
    /// Milliseconds since the leader last heard from it (`None`: never).
    pub last_fetch_ms_ago: Option<u64>,
    pub last_caught_up_ms_ago: Option<u64>,
}
