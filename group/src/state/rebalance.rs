//! The rebalance steps shared by the APIs and the tick: prepare, complete the join,
//! remove members.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tracing::debug;

use super::{Completion, GroupStateMachine, WriteKind};
use crate::codec::{self, RecordKey};
use crate::group::{Group, GroupState};

impl GroupStateMachine {
    // ---- rebalance ---------------------------------------------------------------------

    /// Moves `g` to PreparingRebalance (Kafka's `prepareRebalance`).
    pub(crate) fn prepare_rebalance(&mut self, g: &mut Group, now_ms: i64) {
        if g.state == GroupState::CompletingRebalance {
            let code = ResponseError::RebalanceInProgress.code();
            let ids: Vec<String> = g.members.keys().cloned().collect();
            for id in ids {
                if let Some(m) = g.members.get_mut(&id) {
                    m.assignment = Bytes::new();
                    if let Some(w) = m.sync_waiter.take() {
                        self.complete(
                            w,
                            Completion::Sync(crate::api::sync_group::error_response(code)),
                        );
                    }
                }
            }
        }
        g.sync_in_flight = false;
        if g.state == GroupState::Empty {
            g.initial_join_start_ms = Some(now_ms);
            g.rebalance_deadline_ms = now_ms + self.config.initial_rebalance_delay_ms;
        } else {
            g.initial_join_start_ms = None;
            g.rebalance_deadline_ms = now_ms + g.rebalance_timeout_ms();
        }
        g.set_state(GroupState::PreparingRebalance, now_ms);
    }

    /// A member joined during the initial delay: wait one more delay, up to the
    /// rebalance timeout (Kafka's `InitialDelayedJoin`).
    pub(crate) fn extend_initial_delay(&self, g: &mut Group, now_ms: i64) {
        if let Some(start) = g.initial_join_start_ms {
            let cap = start
                + g.rebalance_timeout_ms()
                    .max(self.config.initial_rebalance_delay_ms);
            let next = (now_ms + self.config.initial_rebalance_delay_ms).min(cap);
            g.rebalance_deadline_ms = g.rebalance_deadline_ms.max(next);
        }
    }

    /// Completes the join phase if every member is back (not during the initial delay).
    pub(crate) fn maybe_complete_join(&mut self, g: &mut Group, now_ms: i64) {
        if g.state == GroupState::PreparingRebalance
            && g.initial_join_start_ms.is_none()
            && g.all_joined()
        {
            self.complete_join(g, now_ms);
        }
    }

    /// Ends PreparingRebalance: drops members that did not rejoin, starts the next
    /// generation and answers every waiting JoinGroup (Kafka's `onCompleteJoin`).
    pub(crate) fn complete_join(&mut self, g: &mut Group, now_ms: i64) {
        let gone: Vec<String> = g
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            debug!(group = g.id, member = id, "member did not rejoin; removed");
            self.remove_member_only(g, &id);
        }
        g.pending_members.clear();
        g.initial_join_start_ms = None;
        g.generation = g.generation.wrapping_add(1);
        if g.members.is_empty() {
            g.protocol = None;
            g.leader = None;
            g.set_state(GroupState::Empty, now_ms);
            self.write_group_record(g, WriteKind::Background);
            return;
        }
        g.protocol = g.select_protocol();
        if g.leader.as_ref().is_none_or(|l| !g.members.contains_key(l)) {
            g.leader = g.members.keys().next().cloned();
        }
        g.set_state(GroupState::CompletingRebalance, now_ms);
        // Members get one rebalance timeout to send SyncGroup (Kafka's pending-sync timer).
        g.rebalance_deadline_ms = now_ms + g.rebalance_timeout_ms();
        let mut done = Vec::new();
        for m in g.members.values_mut() {
            m.assignment = Bytes::new();
            m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
            if let Some(w) = m.join_waiter.take() {
                done.push((w, m.id.clone()));
            }
        }
        for (w, member_id) in done {
            let is_leader = g.leader.as_deref() == Some(member_id.as_str());
            let r = crate::api::join_group::ok_response(g, &member_id, w.version, is_leader);
            self.complete(w.id, Completion::Join(r));
        }
    }

    /// Removes a member without any state transition.
    pub(crate) fn remove_member_only(&mut self, g: &mut Group, member_id: &str) {
        self.fail_member_waiters(g, member_id, ResponseError::UnknownMemberId.code());
        if let Some(m) = g.members.remove(member_id) {
            if let Some(i) = m.instance_id {
                if g.static_members.get(&i).map(String::as_str) == Some(member_id) {
                    g.static_members.remove(&i);
                }
            }
        }
        if g.leader.as_deref() == Some(member_id) {
            g.leader = None;
        }
    }

    /// A member left or expired: remove it and rebalance.
    pub(crate) fn remove_member(&mut self, g: &mut Group, member_id: &str, now_ms: i64) {
        self.remove_member_only(g, member_id);
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(g, now_ms)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(g, now_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Stores the group's metadata.
    pub(crate) fn write_group_record(&mut self, g: &mut Group, kind: WriteKind) {
        let key = codec::encode_key(&RecordKey::Group {
            group: g.id.clone(),
        });
        let value = codec::encode_group(&g.to_value());
        if matches!(kind, WriteKind::Background) {
            g.persisted = Some(value.clone());
        }
        self.emit_write(g.partition, vec![(key, Some(value))], kind);
    }
}
