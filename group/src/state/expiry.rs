//! Logical time: member and pending-member expiry, rebalance and sync deadlines, offset
//! retention, and cleanup after topic deletion.

use std::collections::BTreeMap;

use bytes::Bytes;
use tracing::debug;

use super::{GroupStateMachine, WriteKind};
use crate::codec::{self, RecordKey};
use crate::group::{Group, GroupState};

impl GroupStateMachine {
    // ---- time ----------------------------------------------------------------------------

    /// Advances logical time: expires members and MEMBER_ID_REQUIRED ids whose session
    /// ran out, completes rebalances whose deadline passed, and expires offsets of empty
    /// groups after `offsets_retention_ms`.
    pub fn tick(&mut self, now_ms: i64) {
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            let Some(mut g) = self.groups.remove(&id) else {
                continue;
            };
            self.tick_group(&mut g, now_ms);
            if self.expire_offsets(&mut g, now_ms) {
                continue; // group is gone
            }
            self.groups.insert(id, g);
        }
    }

    fn tick_group(&mut self, g: &mut Group, now_ms: i64) {
        let before = g.pending_members.len();
        g.pending_members.retain(|_, deadline| *deadline > now_ms);
        if g.pending_members.len() != before {
            self.maybe_complete_join(g, now_ms);
        }
        let expired: Vec<String> = g
            .members
            .values()
            .filter(|m| {
                m.session_deadline_ms <= now_ms
                    && m.join_waiter.is_none()
                    && m.sync_waiter.is_none()
            })
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            debug!(group = g.id, member = id, "session expired");
            self.remove_member(g, &id, now_ms);
        }
        if g.state == GroupState::PreparingRebalance && now_ms >= g.rebalance_deadline_ms {
            self.complete_join(g, now_ms);
        }
        if g.state == GroupState::CompletingRebalance
            && !g.sync_in_flight
            && now_ms >= g.rebalance_deadline_ms
        {
            let silent: Vec<String> = g
                .members
                .values()
                .filter(|m| m.sync_waiter.is_none())
                .map(|m| m.id.clone())
                .collect();
            for id in silent {
                debug!(
                    group = g.id,
                    member = id,
                    "no SyncGroup within the rebalance timeout"
                );
                self.remove_member(g, &id, now_ms);
            }
        }
    }

    /// Expires old offsets of an empty group; returns true (and writes tombstones) when
    /// the whole group is gone.
    fn expire_offsets(&mut self, g: &mut Group, now_ms: i64) -> bool {
        if g.state != GroupState::Empty || !g.members.is_empty() || g.commit_waiters > 0 {
            return false;
        }
        if g.persisted.is_none()
            && g.offsets.is_empty()
            && g.pending_members.is_empty()
            && g.initial_join_start_ms.is_none()
        {
            // Never stored (e.g. only MEMBER_ID_REQUIRED ids that did not come back):
            // nothing to tombstone.
            return true;
        }
        let retention = self.config.offsets_retention_ms;
        let expired: Vec<(String, i32)> = if g.protocol_type.is_some() {
            // A consumer group keeps its offsets while it has members; once empty, all go
            // together after the retention (KIP-211).
            if g.state_timestamp_ms.saturating_add(retention) <= now_ms {
                g.offsets.keys().cloned().collect()
            } else {
                Vec::new()
            }
        } else {
            g.offsets
                .iter()
                .filter(|(_, v)| v.commit_timestamp_ms.saturating_add(retention) <= now_ms)
                .map(|(k, _)| k.clone())
                .collect()
        };
        let mut records = Vec::new();
        for (topic, partition) in expired {
            g.offsets.remove(&(topic.clone(), partition));
            let key = RecordKey::Offset {
                group: g.id.clone(),
                topic,
                partition,
            };
            records.push((codec::encode_key(&key), None));
        }
        let gone = g.offsets.is_empty() && g.state_timestamp_ms.saturating_add(retention) <= now_ms;
        if gone {
            g.set_state(GroupState::Dead, now_ms);
            records.push((
                codec::encode_key(&RecordKey::Group {
                    group: g.id.clone(),
                }),
                None,
            ));
        }
        if !records.is_empty() {
            debug!(
                group = g.id,
                records = records.len(),
                gone,
                "expiring offsets"
            );
            self.emit_write(g.partition, records, WriteKind::Background);
        }
        gone
    }

    /// A topic was deleted: drop its committed offsets everywhere (with tombstones).
    pub fn topic_deleted(&mut self, topic: &str) {
        let mut writes: BTreeMap<i32, Vec<(Bytes, Option<Bytes>)>> = BTreeMap::new();
        for g in self.groups.values_mut() {
            let keys: Vec<(String, i32)> = g
                .offsets
                .keys()
                .filter(|(t, _)| t == topic)
                .cloned()
                .collect();
            for (t, p) in keys {
                g.offsets.remove(&(t.clone(), p));
                let key = RecordKey::Offset {
                    group: g.id.clone(),
                    topic: t,
                    partition: p,
                };
                writes
                    .entry(g.partition)
                    .or_default()
                    .push((codec::encode_key(&key), None));
            }
        }
        for (partition, records) in writes {
            self.emit_write(partition, records, WriteKind::Background);
        }
    }
}
