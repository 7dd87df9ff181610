//! DescribeQuorum: the quorum's state in kafka-metadata-quorum's vocabulary.
//!
//! Served by any controller from its own view. Only the leader knows each voter's
//! replication progress; followers report themselves and the leader they follow.

use crate::feed::Feed;
use crate::raft::network::Contacts;
use crate::raft::Raft;
use protocol::control::{QuorumStatus, ReplicaStatus};
use protocol::ids::NodeId;
use std::time::Instant;

fn ms_ago(at: Option<Instant>) -> Option<u64> {
    at.map(|t| t.elapsed().as_millis() as u64)
}

/// This node's view of the quorum.
pub fn describe(raft: &Raft, feed: &Feed, contacts: &Contacts, voter_ids: &[u64]) -> QuorumStatus {
    let m = raft.metrics().borrow().clone();
    let applied = m.last_applied.map_or(0, |l| l.index);
    let last_log = m.last_log_index.unwrap_or(0);
    let is_leader = m.current_leader == Some(m.id);
    let voters = voter_ids
        .iter()
        .map(|&id| {
            if id == m.id {
                return ReplicaStatus {
                    replica_id: id as i64,
                    log_end_offset: last_log,
                    last_fetch_ms_ago: Some(0),
                    last_caught_up_ms_ago: Some(0),
                };
            }
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .map(|l| l.index);
            let contact = if is_leader {
                ms_ago(contacts.last(id))
            } else {
                None
            };
            ReplicaStatus {
                replica_id: id as i64,
                log_end_offset: matched.unwrap_or(0),
                last_fetch_ms_ago: contact,
                last_caught_up_ms_ago: if matched == Some(last_log) {
                    contact
                } else {
                    None
                },
            }
        })
        .collect();
    let observers = feed
        .observers()
        .into_iter()
        .map(|(broker, offset, at)| ReplicaStatus {
            replica_id: i64::from(broker.0),
            log_end_offset: offset.0,
            last_fetch_ms_ago: ms_ago(Some(at)),
            last_caught_up_ms_ago: if offset.0 >= applied {
                ms_ago(Some(at))
            } else {
                None
            },
        })
        .collect();
    QuorumStatus {
        cluster_id: feed.with_image(|i| i.cluster_id.clone()),
        leader_id: m.current_leader.map(NodeId),
        leader_epoch: m.current_term,
        high_watermark: applied,
        voters,
        observers,
    }
}
