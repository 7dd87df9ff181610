//! OffsetCommit / OffsetFetch and the cleanup of offsets.

use super::harness::H;
use crate::group::GroupState;
use crate::state::Reply;

const G: &str = "offsets";

#[test]
fn commit_then_fetch() {
    let mut h = H::new();
    let (ids, generation) = h.stable_group(G, 1);
    assert_eq!(h.fetch(G, "t", 0), Ok(-1), "nothing committed yet");
    h.auto_write = false;
    let Reply::Later(w) = h.commit(G, &ids[0], generation, &[("t", 0, 42), ("t", 1, 7)]) else {
        panic!()
    };
    assert_eq!(
        h.fetch(G, "t", 0),
        Ok(-1),
        "not visible before the write is committed"
    );
    h.release(Ok(()));
    let r = h.commit_done(w);
    assert!(r
        .topics
        .iter()
        .all(|t| t.partitions.iter().all(|p| p.error_code == 0)));
    assert_eq!(h.fetch(G, "t", 0), Ok(42));
    assert_eq!(h.fetch(G, "t", 1), Ok(7));
}

#[test]
fn commit_errors() {
    let mut h = H::new();
    let (ids, generation) = h.stable_group(G, 1);
    assert_eq!(
        h.commit_codes(G, &ids[0], generation + 1, &[("t", 0, 1)]),
        vec![22],
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        h.commit_codes(G, "ghost", generation, &[("t", 0, 1)]),
        vec![25],
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(
        h.commit_codes("unknown-group", "m", 3, &[("t", 0, 1)]),
        vec![22]
    );
    // During CompletingRebalance.
    let _ = h.join_new(G);
    let Reply::Later(w) = h.join(G, &ids[0]) else {
        panic!()
    };
    let gen2 = h.join_done(w).generation_id;
    assert_eq!(
        h.commit_codes(G, &ids[0], gen2, &[("t", 0, 1)]),
        vec![27],
        "REBALANCE_IN_PROGRESS"
    );
}

#[test]
fn failed_write_maps_error_and_keeps_old_offset() {
    let mut h = H::new();
    assert_eq!(h.commit_codes(G, "", -1, &[("t", 0, 5)]), vec![0]);
    h.auto_write = false;
    let Reply::Later(w) = h.commit(G, "", -1, &[("t", 0, 9)]) else {
        panic!()
    };
    h.release(Err(6)); // NOT_LEADER_OR_FOLLOWER
    let r = h.commit_done(w);
    assert_eq!(r.topics[0].partitions[0].error_code, 16, "NOT_COORDINATOR");
    assert_eq!(h.fetch(G, "t", 0), Ok(5));
}

#[test]
fn simple_consumer_commits_without_a_group() {
    let mut h = H::new();
    assert_eq!(h.commit_codes(G, "", -1, &[("t", 3, 100)]), vec![0]);
    assert_eq!(h.fetch(G, "t", 3), Ok(100));
    assert_eq!(h.sm.group_state(G), Some(GroupState::Empty));
}

#[test]
fn not_coordinator_and_loading() {
    let mut h = H::unloaded(super::harness::config());
    assert_eq!(h.fetch(G, "t", 0), Err(16));
    let p = h.sm.partition_of(G);
    let id = h.sm.begin_load(p);
    assert_eq!(h.fetch(G, "t", 0), Err(14), "COORDINATOR_LOAD_IN_PROGRESS");
    assert_eq!(h.commit_codes(G, "", -1, &[("t", 0, 1)]), vec![14]);
    h.sm.finish_load(p, id, Vec::new(), h.now);
    assert_eq!(h.fetch(G, "t", 0), Ok(-1));
}

#[test]
fn offsets_of_deleted_topic_are_removed() {
    let mut h = H::new();
    assert_eq!(
        h.commit_codes(G, "", -1, &[("gone", 0, 5), ("kept", 0, 6)]),
        vec![0, 0]
    );
    h.sm.topic_deleted("gone");
    h.pump();
    assert_eq!(h.fetch(G, "gone", 0), Ok(-1));
    assert_eq!(h.fetch(G, "kept", 0), Ok(6));
    let p = h.sm.partition_of(G);
    assert!(
        h.log[&p].last().is_some_and(|(_, v)| v.is_none()),
        "tombstone written"
    );
}

#[test]
fn offsets_of_an_expired_empty_group_are_removed() {
    let mut h = H::new();
    let (ids, generation) = h.stable_group(G, 1);
    assert_eq!(
        h.commit_codes(G, &ids[0], generation, &[("t", 0, 5)]),
        vec![0]
    );
    h.leave(G, &ids[0]);
    h.advance(1);
    assert_eq!(h.sm.group_state(G), Some(GroupState::Empty));
    h.advance(h.sm.config().offsets_retention_ms / 2);
    assert_eq!(h.fetch(G, "t", 0), Ok(5), "kept within the retention");
    h.advance(h.sm.config().offsets_retention_ms);
    assert_eq!(h.fetch(G, "t", 0), Ok(-1));
    assert_eq!(h.sm.group_state(G), None, "group is gone");
}

#[test]
fn delete_groups() {
    use kafka_protocol::messages::{DeleteGroupsRequest, GroupId};
    let mut h = H::new();
    let (_, _) = h.stable_group(G, 1);
    assert_eq!(h.commit_codes("empty", "", -1, &[("t", 0, 5)]), vec![0]);
    let mut req = DeleteGroupsRequest::default();
    req.groups_names = vec![
        GroupId(super::harness::s(G)),
        GroupId(super::harness::s("empty")),
        GroupId(super::harness::s("none")),
    ];
    let r = h.sm.handle_delete_groups(h.now, 2, &req);
    h.pump();
    let codes: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![68, 0, 69],
        "NON_EMPTY_GROUP, ok, GROUP_ID_NOT_FOUND"
    );
    assert_eq!(h.fetch("empty", "t", 0), Ok(-1));
}

#[test]
fn fetch_all_topics() {
    use kafka_protocol::messages::{GroupId, OffsetFetchRequest};
    let mut h = H::new();
    assert_eq!(
        h.commit_codes(G, "", -1, &[("a", 0, 1), ("a", 1, 2), ("b", 0, 3)]),
        vec![0, 0, 0]
    );
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(super::harness::s(G));
    req.topics = None;
    let r = h.sm.handle_offset_fetch(h.now, 7, &req);
    let got: Vec<(String, i32, i64)> = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.to_string(), p.partition_index, p.committed_offset))
        })
        .collect();
    assert_eq!(
        got,
        vec![("a".into(), 0, 1), ("a".into(), 1, 2), ("b".into(), 0, 3)]
    );
}
