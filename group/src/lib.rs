//! `gregor-group`: the consumer group coordinator (Kafka's classic group protocol), with
//! group metadata and committed offsets stored in the replicated `__consumer_offsets` topic.
//!
//! Layout:
//! - [`state`]: the pure state machine ([`GroupStateMachine`]). Logical time (`now_ms`
//!   arguments and [`GroupStateMachine::tick`]); requests that must wait return
//!   [`Reply::Later`] and are answered later through [`Effects::completions`]; writes to
//!   `__consumer_offsets` go out as [`Effects::writes`] and come back through
//!   [`GroupStateMachine::write_completed`]. Split into `state/rebalance.rs`,
//!   `state/expiry.rs` (tick-driven) and `state/load.rs` (partition load/resign).
//! - [`group`]: one group's data (members, generation, protocol, offsets) and queries.
//! - [`api`]: one file per Kafka API (`join_group.rs`, `sync_group.rs`, ...), each adding a
//!   `handle_*` to the state machine; FindCoordinator is a free function.
//! - [`codec`]: the record layouts of `__consumer_offsets` (Kafka's own
//!   `OffsetCommitKey/Value`, `GroupMetadataKey/Value`).
//! - [`hash`]: group id -> partition, with Java's `String.hashCode`.
//! - [`log`]: the [`OffsetsLog`] trait the broker implements over its partition logs;
//!   [`records`] turns its records into Kafka v2 batches and back.
//! - [`coordinator`]: the async [`Coordinator`] (mutex + oneshot per waiter + tick task).
//! - [`versions`]: the supported version range of every API ([`GROUP_APIS`]).
//! - [`config`]: the settings ([`GroupConfig`]).
//!
//! Coordinator ownership: a group belongs to partition
//! `abs(java_hash(group_id)) % offsets_partitions`; the leader of that partition is its
//! coordinator. [`Coordinator::become_leader`] loads a partition (latest value per key
//! wins, tombstones delete) and [`Coordinator::resign`] drops it.
//!
//! Compaction: `__consumer_offsets` is keyed, so only the latest record of each key
//! matters. To bound a partition's log, the broker (when the log passes a size threshold)
//! reads the log end offset `L`, calls [`Coordinator::write_compaction_snapshot`] (which
//! appends the latest value of every live key, writes in flight included, under the
//! coordinator's lock) and, once that resolves, deletes every record below `L` (moves the
//! log start offset; whole segments go). Every record below `L` is superseded by the
//! snapshot or by later writes, and tombstoned keys vanish together with their values,
//! so a reload from the new log start yields the same groups and offsets.
//! [`Coordinator::compaction_snapshot`] exposes the live set itself.

pub mod api;
pub mod codec;
pub mod config;
pub mod coordinator;
pub mod group;
pub mod hash;
pub mod log;
pub mod records;
pub mod state;
pub mod versions;

#[cfg(test)]
mod tests;

pub use api::find_coordinator::CoordinatorAddress;
pub use api::ClientInfo;
pub use config::GroupConfig;
pub use coordinator::Coordinator;
pub use group::{GroupState, WaiterId};
pub use hash::partition_for;
pub use log::{BoxFuture, OffsetsLog, OffsetsRecord};
pub use state::{Completion, Effects, GroupStateMachine, Reply, WriteRequest, WriteToken};
pub use versions::{ApiRange, GROUP_APIS};
