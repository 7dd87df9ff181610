//! The openraft side of the controller: type configuration, durable log and vote,
//! the metadata-image state machine with snapshots, and the TCP network.
//!
//! ```text
//!   client_write(batch) ─► openraft core ─► LogStore (raft.log, vote: fsync'd frames)
//!                                   │
//!                                   └──► StateMachine ─► Feed (image + recent batches)
//!   peers ◄── Network (ControlRequest::Raft over framed TCP) ──► server::handle_raft
//! ```

pub mod disk;
pub mod frame_file;
pub mod log_store;
pub mod network;
pub mod state_machine;
pub mod vote_file;

use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// The response to an applied entry: the metadata offset (log index) it was applied at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub offset: u64,
}

openraft::declare_raft_types!(
    /// Gregor's Raft type configuration: entries carry one metadata batch.
    pub TypeConfig:
        D = protocol::control::MetadataBatch,
        R = Applied,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A running Raft node of this type configuration.
pub type Raft = openraft::Raft<TypeConfig>;
/// Storage errors of this configuration.
pub type StorageError = openraft::StorageError<u64>;
/// A log id of this configuration.
pub type LogId = openraft::LogId<u64>;
