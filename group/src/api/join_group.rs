//! JoinGroup (key 11): members (re)join, the group rebalances, the leader gets the member
//! list. Follows Kafka's `GroupCoordinator.handleJoinGroup` for the classic protocol,
//! including MEMBER_ID_REQUIRED (v4+) and static membership (v5+).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::{opt_str, sb, ClientInfo};
use crate::group::{Group, GroupState, JoinWaiter, Member};
use crate::state::{Completion, GroupStateMachine, Reply};

/// A JoinGroup error.
pub fn error_response(member_id: &str, code: i16) -> JoinGroupResponse {
    let mut r = JoinGroupResponse::default();
    r.error_code = code;
    r.generation_id = -1;
    r.protocol_name = Some(StrBytes::new());
    r.leader = StrBytes::new();
    r.member_id = sb(member_id);
    r
}

/// A successful JoinGroup for `member_id` of the group's current generation; the leader
/// also gets every member with its metadata for the chosen protocol.
pub fn ok_response(
    g: &Group,
    member_id: &str,
    version: i16,
    with_members: bool,
) -> JoinGroupResponse {
    let protocol = g.protocol.clone().unwrap_or_default();
    let mut r = JoinGroupResponse::default();
    r.generation_id = g.generation;
    if version >= 7 {
        r.protocol_type = g.protocol_type.as_deref().map(sb);
    }
    r.protocol_name = Some(sb(&protocol));
    r.leader = sb(g.leader.as_deref().unwrap_or_default());
    r.member_id = sb(member_id);
    if with_members {
        r.members = g
            .members
            .values()
            .map(|m| {
                let mut jm = JoinGroupResponseMember::default();
                jm.member_id = sb(&m.id);
                jm.group_instance_id = m.instance_id.as_deref().map(sb);
                jm.metadata = m.metadata_for(&protocol);
                jm
            })
            .collect();
    }
    r
}

/// What a joining member asks for.
struct Join {
    version: i16,
    member_id: String,
    instance_id: Option<String>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    client_id: String,
    client_host: String,
}

impl GroupStateMachine {
    /// Handles JoinGroup `version` from a client.
    pub fn handle_join_group(
        &mut self,
        now_ms: i64,
        version: i16,
        client: &ClientInfo,
        req: &JoinGroupRequest,
    ) -> Reply<JoinGroupResponse> {
        let member_id = req.member_id.to_string();
        let err = |code: ResponseError| Reply::Now(error_response(&member_id, code.code()));
        let group_id = req.group_id.to_string();
        if group_id.is_empty() {
            return err(ResponseError::InvalidGroupId);
        }
        let partition = match self.check(&group_id) {
            Ok(p) => p,
            Err(code) => return Reply::Now(error_response(&member_id, code)),
        };
        let session = req.session_timeout_ms;
        if session < self.config.min_session_timeout_ms
            || session > self.config.max_session_timeout_ms
        {
            return err(ResponseError::InvalidSessionTimeout);
        }
        let join = Join {
            version,
            member_id: member_id.clone(),
            instance_id: opt_str(&req.group_instance_id),
            session_timeout_ms: session,
            // v0 has no rebalance timeout: Kafka uses the session timeout.
            rebalance_timeout_ms: if req.rebalance_timeout_ms > 0 {
                req.rebalance_timeout_ms
            } else {
                session
            },
            protocol_type: req.protocol_type.to_string(),
            protocols: req
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
            client_id: client.client_id.clone(),
            client_host: client.client_host.clone(),
        };
        let mut g = match self.groups.remove(&group_id) {
            Some(g) => g,
            None if member_id.is_empty() => Group::new(group_id.clone(), partition, now_ms),
            None => return err(ResponseError::UnknownMemberId),
        };
        let reply = if g.state == GroupState::Dead {
            err(ResponseError::CoordinatorNotAvailable)
        } else if !g.supports(&join.protocol_type, &join.protocols) {
            err(ResponseError::InconsistentGroupProtocol)
        } else if member_id.is_empty() {
            self.join_unknown(&mut g, join, now_ms)
        } else {
            self.join_known(&mut g, join, now_ms)
        };
        let keep = !(g.state == GroupState::Empty
            && g.members.is_empty()
            && g.offsets.is_empty()
            && g.generation == 0
            && g.commit_waiters == 0
            && g.persisted.is_none()
            && g.pending_members.is_empty());
        if keep {
            self.groups.insert(group_id, g);
        }
        reply
    }

    fn join_unknown(&mut self, g: &mut Group, join: Join, now_ms: i64) -> Reply<JoinGroupResponse> {
        if g.members.len() + g.pending_members.len() >= self.config.max_group_size {
            return Reply::Now(error_response(
                "",
                ResponseError::GroupMaxSizeReached.code(),
            ));
        }
        let new_id = format!("{}-{}", join.client_id, uuid::Uuid::new_v4());
        if let Some(instance) = join.instance_id.clone() {
            if let Some(old_id) = g.static_members.get(&instance).cloned() {
                return self.replace_static_member(g, &old_id, new_id, join, now_ms);
            }
            return self.add_member_and_rebalance(g, new_id, join, now_ms);
        }
        if join.version >= 4 {
            let deadline = now_ms + i64::from(join.session_timeout_ms);
            g.pending_members.insert(new_id.clone(), deadline);
            return Reply::Now(error_response(
                &new_id,
                ResponseError::MemberIdRequired.code(),
            ));
        }
        self.add_member_and_rebalance(g, new_id, join, now_ms)
    }

    fn join_known(&mut self, g: &mut Group, join: Join, now_ms: i64) -> Reply<JoinGroupResponse> {
        let member_id = join.member_id.clone();
        if g.pending_members.remove(&member_id).is_some() {
            return self.add_member_and_rebalance(g, member_id, join, now_ms);
        }
        if g.is_fenced(join.instance_id.as_deref(), &member_id) {
            return Reply::Now(error_response(
                &member_id,
                ResponseError::FencedInstanceId.code(),
            ));
        }
        let Some(m) = g.members.get(&member_id) else {
            return Reply::Now(error_response(
                &member_id,
                ResponseError::UnknownMemberId.code(),
            ));
        };
        let same_protocols = m.protocols == join.protocols;
        let is_leader = g.leader.as_deref() == Some(member_id.as_str());
        match g.state {
            GroupState::PreparingRebalance => {
                let w = self.update_member(g, join, now_ms);
                self.maybe_complete_join(g, now_ms);
                Reply::Later(w)
            }
            GroupState::CompletingRebalance if same_protocols => {
                self.touch(g, &member_id, now_ms);
                Reply::Now(ok_response(g, &member_id, join.version, is_leader))
            }
            GroupState::Stable if same_protocols && !is_leader => {
                self.touch(g, &member_id, now_ms);
                Reply::Now(ok_response(g, &member_id, join.version, false))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let w = self.update_member(g, join, now_ms);
                self.prepare_rebalance(g, now_ms);
                Reply::Later(w)
            }
            GroupState::Empty | GroupState::Dead => Reply::Now(error_response(
                &member_id,
                ResponseError::UnknownMemberId.code(),
            )),
        }
    }

    fn touch(&mut self, g: &mut Group, member_id: &str, now_ms: i64) {
        if let Some(m) = g.members.get_mut(member_id) {
            m.session_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
        }
    }

    /// Updates a known member from its JoinGroup and parks the request.
    fn update_member(&mut self, g: &mut Group, join: Join, now_ms: i64) -> u64 {
        let waiter = JoinWaiter {
            id: self.next_id(),
            version: join.version,
        };
        let Some(m) = g.members.get_mut(&join.member_id) else {
            unreachable!("update_member on a member that is not in the group")
        };
        m.protocols = join.protocols;
        m.session_timeout_ms = join.session_timeout_ms;
        m.rebalance_timeout_ms = join.rebalance_timeout_ms;
        m.client_id = join.client_id;
        m.client_host = join.client_host;
        m.session_deadline_ms = now_ms + i64::from(join.session_timeout_ms);
        if let Some(old) = m.join_waiter.replace(waiter) {
            // The client gave up on the old request (its connection is gone).
            let r = error_response(&join.member_id, ResponseError::RebalanceInProgress.code());
            self.complete(old.id, Completion::Join(r));
        }
        waiter.id
    }

    fn add_member_and_rebalance(
        &mut self,
        g: &mut Group,
        member_id: String,
        join: Join,
        now_ms: i64,
    ) -> Reply<JoinGroupResponse> {
        let waiter = JoinWaiter {
            id: self.next_id(),
            version: join.version,
        };
        if g.members.is_empty() {
            g.protocol_type = Some(join.protocol_type.clone());
        }
        if let Some(i) = &join.instance_id {
            g.static_members.insert(i.clone(), member_id.clone());
        }
        g.members.insert(
            member_id.clone(),
            Member {
                id: member_id.clone(),
                instance_id: join.instance_id,
                client_id: join.client_id,
                client_host: join.client_host,
                session_timeout_ms: join.session_timeout_ms,
                rebalance_timeout_ms: join.rebalance_timeout_ms,
                protocols: join.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(waiter),
                sync_waiter: None,
                session_deadline_ms: now_ms + i64::from(join.session_timeout_ms),
            },
        );
        if g.leader.is_none() {
            g.leader = Some(member_id);
        }
        match g.state {
            GroupState::PreparingRebalance => {
                self.extend_initial_delay(g, now_ms);
                self.maybe_complete_join(g, now_ms);
            }
            _ => self.prepare_rebalance(g, now_ms),
        }
        Reply::Later(waiter.id)
    }

    /// A static member rejoined with an empty member id: the new id takes over the old
    /// member (whose requests are fenced) without a rebalance when nothing changed
    /// (KIP-345).
    fn replace_static_member(
        &mut self,
        g: &mut Group,
        old_id: &str,
        new_id: String,
        join: Join,
        now_ms: i64,
    ) -> Reply<JoinGroupResponse> {
        self.fail_member_waiters(g, old_id, ResponseError::FencedInstanceId.code());
        let Some(mut m) = g.members.remove(old_id) else {
            return self.add_member_and_rebalance(g, new_id, join, now_ms);
        };
        m.id = new_id.clone();
        let same_protocols = m.protocols == join.protocols;
        g.members.insert(new_id.clone(), m);
        if let Some(i) = &join.instance_id {
            g.static_members.insert(i.clone(), new_id.clone());
        }
        if g.leader.as_deref() == Some(old_id) {
            g.leader = Some(new_id.clone());
        }
        let join = Join {
            member_id: new_id.clone(),
            ..join
        };
        match g.state {
            GroupState::Stable if same_protocols => {
                self.touch(g, &new_id, now_ms);
                let is_leader = g.leader.as_deref() == Some(new_id.as_str());
                Reply::Now(ok_response(g, &new_id, join.version, is_leader))
            }
            GroupState::PreparingRebalance => {
                let w = self.update_member(g, join, now_ms);
                self.maybe_complete_join(g, now_ms);
                Reply::Later(w)
            }
            _ => {
                let w = self.update_member(g, join, now_ms);
                self.prepare_rebalance(g, now_ms);
                Reply::Later(w)
            }
        }
    }
}
