//! FindCoordinator (key 10, v0-4): the coordinator of a group is the leader of its
//! `__consumer_offsets` partition. v0-3 carry one key; v4 a batch of keys. Transaction
//! coordinators (key type 1) are not served.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::sb;
use crate::hash::partition_for;

/// The broker that leads a `__consumer_offsets` partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorAddress {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

fn locate_key(
    key: &str,
    key_type: i8,
    offsets_partitions: i32,
    leader_of: &dyn Fn(i32) -> Option<CoordinatorAddress>,
) -> Result<CoordinatorAddress, i16> {
    if key_type != 0 {
        return Err(ResponseError::InvalidRequest.code());
    }
    if key.is_empty() {
        return Err(ResponseError::InvalidGroupId.code());
    }
    leader_of(partition_for(key, offsets_partitions))
        .ok_or(ResponseError::CoordinatorNotAvailable.code())
}

/// Handles FindCoordinator. `leader_of(partition)` gives the leader of a
/// `__consumer_offsets` partition as seen by the listener the request came in on, or
/// `None` when the topic or its leader is missing.
pub fn handle_find_coordinator(
    version: i16,
    req: &FindCoordinatorRequest,
    offsets_partitions: i32,
    leader_of: &dyn Fn(i32) -> Option<CoordinatorAddress>,
) -> FindCoordinatorResponse {
    let mut r = FindCoordinatorResponse::default();
    if version >= 4 {
        for key in &req.coordinator_keys {
            let mut c = Coordinator::default();
            c.key = key.clone();
            match locate_key(key.as_str(), req.key_type, offsets_partitions, leader_of) {
                Ok(a) => {
                    c.node_id = BrokerId(a.node_id);
                    c.host = sb(&a.host);
                    c.port = a.port;
                }
                Err(code) => {
                    c.error_code = code;
                    c.node_id = BrokerId(-1);
                    c.port = -1;
                }
            }
            r.coordinators.push(c);
        }
        return r;
    }
    match locate_key(
        req.key.as_str(),
        req.key_type,
        offsets_partitions,
        leader_of,
    ) {
        Ok(a) => {
            r.node_id = BrokerId(a.node_id);
            r.host = sb(&a.host);
            r.port = a.port;
        }
        Err(code) => {
            r.error_code = code;
            r.node_id = BrokerId(-1);
            r.host = StrBytes::new();
            r.port = -1;
        }
    }
    r
}
