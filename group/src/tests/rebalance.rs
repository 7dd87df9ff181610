//! Join/sync/heartbeat flows, rebalances and the generation and member checks.

use super::harness::{H, SESSION_MS};
use crate::group::GroupState;
use crate::state::Reply;

const G: &str = "g";

#[test]
fn one_member_forms_a_stable_group() {
    let mut h = H::new();
    let (ids, generation) = h.stable_group(G, 1);
    assert_eq!(generation, 1);
    assert_eq!(h.sm.group_state(G), Some(GroupState::Stable));
    assert_eq!(h.heartbeat(G, &ids[0], generation), 0);
    // The generation's assignment was written to the group's partition.
    let p = h.sm.partition_of(G);
    assert_eq!(h.log[&p].len(), 1);
}

#[test]
fn three_members_share_one_generation() {
    let mut h = H::new();
    let (ids, generation) = h.stable_group(G, 3);
    assert_eq!(generation, 1);
    for id in &ids {
        assert_eq!(h.heartbeat(G, id, generation), 0);
    }
}

#[test]
fn initial_delay_holds_the_first_join() {
    let mut h = H::new();
    let (_, w) = h.join_new(G);
    h.advance(100);
    assert!(
        !h.done.contains_key(&w),
        "first rebalance waits for the initial delay"
    );
    h.advance(h.sm.config().initial_rebalance_delay_ms);
    assert_eq!(h.join_done(w).generation_id, 1);
}

#[test]
fn new_member_triggers_rebalance() {
    let mut h = H::new();
    let (ids, gen1) = h.stable_group(G, 2);
    let (new_id, w_new) = h.join_new(G);
    assert_eq!(h.sm.group_state(G), Some(GroupState::PreparingRebalance));
    // Old members learn about it from their heartbeat, then rejoin.
    assert_eq!(h.heartbeat(G, &ids[0], gen1), 27, "REBALANCE_IN_PROGRESS");
    let Reply::Later(w0) = h.join(G, &ids[0]) else {
        panic!()
    };
    assert!(!h.done.contains_key(&w0));
    let Reply::Later(w1) = h.join(G, &ids[1]) else {
        panic!()
    };
    // Everyone is back: the join completes without waiting for the deadline.
    let r0 = h.join_done(w0);
    let r1 = h.join_done(w1);
    let rn = h.join_done(w_new);
    assert_eq!(r0.generation_id, gen1 + 1);
    assert_eq!(r0.leader.as_str(), ids[0], "the leader stays");
    assert_eq!(r0.members.len(), 3);
    assert!(r1.members.is_empty() && rn.members.is_empty());
    assert_eq!(rn.member_id.as_str(), new_id);
    assert_eq!(h.sm.group_state(G), Some(GroupState::CompletingRebalance));
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_deadline() {
    let mut h = H::new();
    let (ids, gen1) = h.stable_group(G, 2);
    let (_, w_new) = h.join_new(G);
    let Reply::Later(w0) = h.join(G, &ids[0]) else {
        panic!()
    };
    // ids[1] never rejoins, but keeps heartbeating: it is still removed at the deadline.
    for _ in 0..10 {
        h.advance(3_000);
        let _ = h.heartbeat(G, &ids[1], gen1);
    }
    let r0 = h.join_done(w0);
    assert_eq!(r0.members.len(), 2);
    assert_eq!(h.join_done(w_new).generation_id, gen1 + 1);
    assert_eq!(h.heartbeat(G, &ids[1], gen1 + 1), 25, "UNKNOWN_MEMBER_ID");
}

#[test]
fn leave_rebalances_the_rest() {
    let mut h = H::new();
    let (ids, gen1) = h.stable_group(G, 2);
    let r = h.leave(G, &ids[1]);
    assert_eq!(r.members[0].error_code, 0);
    assert_eq!(h.sm.group_state(G), Some(GroupState::PreparingRebalance));
    let Reply::Later(w) = h.join(G, &ids[0]) else {
        panic!()
    };
    let r = h.join_done(w);
    assert_eq!(r.generation_id, gen1 + 1);
    assert_eq!(r.members.len(), 1);
    assert_eq!(h.leave(G, "nobody").members[0].error_code, 25);
}

#[test]
fn last_member_leaving_empties_the_group() {
    let mut h = H::new();
    let (ids, _) = h.stable_group(G, 1);
    h.leave(G, &ids[0]);
    h.advance(1);
    assert_eq!(h.sm.group_state(G), Some(GroupState::Empty));
}

#[test]
fn session_expiry_removes_a_silent_member() {
    let mut h = H::new();
    let (ids, gen1) = h.stable_group(G, 2);
    // Only ids[0] heartbeats.
    h.advance(i64::from(SESSION_MS) - 1_000);
    assert_eq!(h.heartbeat(G, &ids[0], gen1), 0);
    assert_eq!(h.sm.group_state(G), Some(GroupState::Stable));
    h.advance(2_000);
    assert_eq!(h.sm.group_state(G), Some(GroupState::PreparingRebalance));
    assert_eq!(h.heartbeat(G, &ids[0], gen1), 27);
    let Reply::Later(w) = h.join(G, &ids[0]) else {
        panic!()
    };
    assert_eq!(h.join_done(w).members.len(), 1);
}

#[test]
fn generation_and_member_errors() {
    let mut h = H::new();
    let (ids, generation) = h.stable_group(G, 2);
    assert_eq!(
        h.heartbeat(G, &ids[0], generation + 1),
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(h.heartbeat(G, "ghost", generation), 25, "UNKNOWN_MEMBER_ID");
    assert_eq!(h.heartbeat("no-such-group", "ghost", 1), 25);
    let Reply::Now(r) = h.sync(G, &ids[0], generation - 1, &[]) else {
        panic!()
    };
    assert_eq!(r.error_code, 22);
    let Reply::Now(r) = h.join(G, "ghost") else {
        panic!()
    };
    assert_eq!(r.error_code, 25);
    // Sync during PreparingRebalance.
    let _ = h.join_new(G);
    let Reply::Now(r) = h.sync(G, &ids[1], generation, &[]) else {
        panic!()
    };
    assert_eq!(r.error_code, 27, "REBALANCE_IN_PROGRESS");
}

#[test]
fn inconsistent_protocols_are_refused() {
    let mut h = H::new();
    let _ = h.stable_group(G, 1);
    let req = H::join_req(G, "", None, &["roundrobin"]);
    let Reply::Now(r) = h.join_with(3, &req) else {
        panic!()
    };
    assert_eq!(r.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");
    let mut req = H::join_req(G, "", None, &["range"]);
    req.protocol_type = super::harness::s("connect");
    let Reply::Now(r) = h.join_with(3, &req) else {
        panic!()
    };
    assert_eq!(r.error_code, 23);
}

#[test]
fn protocol_selection_prefers_common_votes() {
    let mut h = H::new();
    let a = H::join_req(G, "", None, &["roundrobin", "range"]);
    let b = H::join_req(G, "", None, &["range", "roundrobin"]);
    let c = H::join_req(G, "", None, &["range"]);
    let (Reply::Later(wa), Reply::Later(wb), Reply::Later(wc)) =
        (h.join_with(3, &a), h.join_with(3, &b), h.join_with(3, &c))
    else {
        panic!("v3 joins with no member id wait")
    };
    h.advance(1_000);
    for w in [wa, wb, wc] {
        assert_eq!(h.join_done(w).protocol_name.as_deref(), Some("range"));
    }
}

#[test]
fn v3_joins_without_member_id_required() {
    let mut h = H::new();
    let Reply::Later(w) = h.join_with(3, &H::join_req(G, "", None, &["range"])) else {
        panic!()
    };
    h.advance(1_000);
    let r = h.join_done(w);
    assert_eq!(r.error_code, 0);
    assert!(!r.member_id.is_empty());
}

#[test]
fn group_size_is_bounded() {
    let mut h = H::unloaded(crate::config::GroupConfig {
        max_group_size: 2,
        ..super::harness::config()
    });
    for p in 0..super::harness::PARTITIONS {
        let id = h.sm.begin_load(p);
        h.sm.finish_load(p, id, Vec::new(), h.now);
    }
    let _ = h.join_new(G);
    let _ = h.join_new(G);
    let Reply::Now(r) = h.join(G, "") else {
        panic!()
    };
    assert_eq!(r.error_code, 81, "GROUP_MAX_SIZE_REACHED");
}

#[test]
fn failed_assignment_write_rebalances() {
    let mut h = H::new();
    let (ids, generation) = h.stable_group(G, 1);
    // Force a rebalance, then fail the write of the new assignment.
    let (new_id, w_new) = h.join_new(G);
    let Reply::Later(w0) = h.join(G, &ids[0]) else {
        panic!()
    };
    let gen2 = h.join_done(w0).generation_id;
    assert_eq!(gen2, generation + 1);
    h.join_done(w_new);
    h.auto_write = false;
    let Reply::Later(s1) = h.sync(G, &new_id, gen2, &[]) else {
        panic!()
    };
    let Reply::Later(s0) = h.sync(G, &ids[0], gen2, &[(&ids[0], "x"), (&new_id, "y")]) else {
        panic!()
    };
    h.release(Err(19)); // NOT_ENOUGH_REPLICAS
    assert_eq!(h.sync_done(s0).error_code, 15, "COORDINATOR_NOT_AVAILABLE");
    assert_eq!(h.sync_done(s1).error_code, 15);
    assert_eq!(h.sm.group_state(G), Some(GroupState::PreparingRebalance));
}

#[test]
fn leader_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let mut h = H::new();
    let (ids, gen1) = h.stable_group(G, 2);
    let (new_id, w_new) = h.join_new(G);
    let Reply::Later(w0) = h.join(G, &ids[0]) else {
        panic!()
    };
    let Reply::Later(w1) = h.join(G, &ids[1]) else {
        panic!()
    };
    let gen2 = h.join_done(w0).generation_id;
    h.join_done(w1);
    h.join_done(w_new);
    assert_eq!(gen2, gen1 + 1);
    // Followers sync and wait; the leader (ids[0]) keeps heartbeating but never syncs.
    let Reply::Later(s1) = h.sync(G, &ids[1], gen2, &[]) else {
        panic!()
    };
    let Reply::Later(sn) = h.sync(G, &new_id, gen2, &[]) else {
        panic!()
    };
    for _ in 0..8 {
        h.advance(5_000);
        let _ = h.heartbeat(G, &ids[0], gen2);
    }
    assert_eq!(h.sync_done(s1).error_code, 27, "REBALANCE_IN_PROGRESS");
    assert_eq!(h.sync_done(sn).error_code, 27);
    assert_eq!(
        h.heartbeat(G, &ids[0], gen2),
        25,
        "the silent leader is gone"
    );
}

#[test]
fn leave_group_v0_to_v2_and_describe_and_list() {
    use kafka_protocol::messages::{
        DescribeGroupsRequest, GroupId, LeaveGroupRequest, ListGroupsRequest,
    };
    let mut h = H::new();
    let (ids, _) = h.stable_group(G, 2);
    let mut d = DescribeGroupsRequest::default();
    d.groups = vec![GroupId(super::harness::s(G))];
    let r = h.sm.handle_describe_groups(5, &d);
    assert_eq!(r.groups[0].group_state.as_str(), "Stable");
    assert_eq!(r.groups[0].protocol_data.as_str(), "range");
    assert_eq!(r.groups[0].members.len(), 2);
    assert!(!r.groups[0].members[0].member_assignment.is_empty());
    let mut l = ListGroupsRequest::default();
    l.states_filter = vec![super::harness::s("stable")];
    let r = h.sm.handle_list_groups(4, &l);
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].protocol_type.as_str(), "consumer");
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(super::harness::s(G));
    leave.member_id = super::harness::s(&ids[1]);
    assert_eq!(h.sm.handle_leave_group(h.now, 1, &leave).error_code, 0);
    assert_eq!(h.sm.handle_leave_group(h.now, 1, &leave).error_code, 25);
    let r = h.sm.handle_describe_groups(5, &d);
    assert_eq!(r.groups[0].group_state.as_str(), "PreparingRebalance");
    assert!(r.groups[0]
        .members
        .iter()
        .all(|m| m.member_assignment.is_empty()));
}
