//! One consumer group in memory: its members, generation, chosen protocol, rebalance
//! deadline and committed offsets. Pure data plus small queries; the transitions live in
//! `state.rs` and `api/`.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::codec::{GroupValue, MemberValue, OffsetValue};

/// A request parked until a rebalance step or a write completes.
pub type WaiterId = u64;

/// The classic group states (Kafka's `GroupState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka uses in ListGroups and DescribeGroups.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A JoinGroup request waiting for the rebalance to complete.
#[derive(Clone, Copy, Debug)]
pub struct JoinWaiter {
    pub id: WaiterId,
    pub version: i16,
}

/// One member of a group.
#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// Protocols in the member's order of preference, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub join_waiter: Option<JoinWaiter>,
    pub sync_waiter: Option<WaiterId>,
    /// The member is expired when no heartbeat (or join/sync) arrives before this.
    pub session_deadline_ms: i64,
}

impl Member {
    /// The metadata this member sent for `protocol`.
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Its first preference among `candidates`.
    fn vote<'a>(&'a self, candidates: &[&str]) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .find(|n| candidates.contains(n))
    }

    pub fn to_value(&self, protocol: Option<&str>) -> MemberValue {
        MemberValue {
            member_id: self.id.clone(),
            group_instance_id: self.instance_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            session_timeout_ms: self.session_timeout_ms,
            subscription: protocol.map(|p| self.metadata_for(p)).unwrap_or_default(),
            assignment: self.assignment.clone(),
        }
    }
}

/// One group.
#[derive(Debug)]
pub struct Group {
    pub id: String,
    /// Its `__consumer_offsets` partition.
    pub partition: i32,
    pub state: GroupState,
    pub state_timestamp_ms: i64,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> member id of the static members.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline to rejoin.
    pub pending_members: HashMap<String, i64>,
    /// When the current PreparingRebalance ends even if members are missing.
    pub rebalance_deadline_ms: i64,
    /// Start of the initial delayed join of an empty group, if one is running.
    pub initial_join_start_ms: Option<i64>,
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
    /// OffsetCommit requests waiting for their write.
    pub commit_waiters: usize,
    /// The leader's assignment of this generation is being written.
    pub sync_in_flight: bool,
    /// The last group record written or loaded (what compaction keeps).
    pub persisted: Option<Bytes>,
}

impl Group {
    pub fn new(id: String, partition: i32, now_ms: i64) -> Self {
        Self {
            id,
            partition,
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline_ms: 0,
            initial_join_start_ms: None,
            offsets: BTreeMap::new(),
            commit_waiters: 0,
            sync_in_flight: false,
            persisted: None,
        }
    }

    pub fn set_state(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    /// Whether `member_id` is a different member than the one holding `instance_id`
    /// (Kafka's `isStaticMemberFenced`).
    pub fn is_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        match instance_id.and_then(|i| self.static_members.get(i)) {
            Some(holder) => holder != member_id,
            None => false,
        }
    }

    /// Protocols every member supports.
    fn candidates(&self) -> Vec<&str> {
        let mut it = self.members.values();
        let Some(first) = it.next() else {
            return Vec::new();
        };
        let mut names: Vec<&str> = first.protocols.iter().map(|(n, _)| n.as_str()).collect();
        for m in it {
            names.retain(|n| m.protocols.iter().any(|(p, _)| p == n));
        }
        names
    }

    /// Whether a member with these protocols may join (INCONSISTENT_GROUP_PROTOCOL if not).
    pub fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self
                .candidates()
                .iter()
                .any(|c| protocols.iter().any(|(p, _)| p == c))
    }

    /// The protocol with most first-preference votes among those every member supports;
    /// ties go to the alphabetically first name, for determinism.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(v) = m.vote(&candidates) {
                *votes.entry(v).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        votes
            .into_iter()
            .find(|(_, n)| *n == best)
            .map(|(p, _)| p.to_owned())
    }

    /// Every member has a JoinGroup waiting and no MEMBER_ID_REQUIRED member is pending.
    pub fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    /// The longest rebalance timeout among members (bounds a PreparingRebalance).
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// The record value that stores this group.
    pub fn to_value(&self) -> GroupValue {
        let protocol = self.protocol.as_deref();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| m.to_value(protocol))
                .collect(),
        }
    }

    /// Rebuilds a group from its stored record: members come back Stable with a fresh
    /// session, as Kafka does after loading.
    pub fn from_value(id: String, partition: i32, v: GroupValue, now_ms: i64) -> Self {
        let mut g = Group::new(id, partition, v.state_timestamp_ms);
        g.protocol_type = (!v.protocol_type.is_empty()).then_some(v.protocol_type);
        g.generation = v.generation;
        g.protocol = v.protocol;
        g.leader = v.leader;
        for m in v.members {
            if let Some(i) = &m.group_instance_id {
                g.static_members.insert(i.clone(), m.member_id.clone());
            }
            let protocol = g.protocol.clone().unwrap_or_default();
            g.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id,
                    instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: vec![(protocol, m.subscription)],
                    assignment: m.assignment,
                    join_waiter: None,
                    sync_waiter: None,
                    session_deadline_ms: now_ms + i64::from(m.session_timeout_ms),
                },
            );
        }
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }
}
