//! One file per Kafka API of the coordinator. Each adds a `handle_*` method to
//! [`GroupStateMachine`](crate::state::GroupStateMachine) (FindCoordinator is a free
//! function: it needs the broker's metadata, not group state).

pub mod delete_groups;
pub mod describe_groups;
pub mod find_coordinator;
pub mod heartbeat;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod offset_commit;
pub mod offset_fetch;
pub mod sync_group;

use kafka_protocol::protocol::StrBytes;

/// Who sent a request (from the request header and the connection).
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub client_id: String,
    /// Kafka shows it as `/ip`.
    pub client_host: String,
}

pub(crate) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub(crate) fn opt_str(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.to_string())
}
