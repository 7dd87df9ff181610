//! Loading a partition from its records, resigning it, and compaction snapshots.

use super::harness::{config, H};
use crate::group::GroupState;
use crate::state::{GroupStateMachine, Reply};

const G: &str = "loaded";

/// A fresh coordinator that loads `records` into the partition of `G`.
fn reload(h: &H, records: Vec<(bytes::Bytes, Option<bytes::Bytes>)>) -> H {
    let mut n = H::unloaded(config());
    n.now = h.now;
    let p = n.sm.partition_of(G);
    let id = n.sm.begin_load(p);
    assert!(n.sm.finish_load(p, id, records, n.now));
    n
}

#[test]
fn a_new_leader_sees_groups_and_offsets() {
    let mut h = H::new();
    let (ids, generation) = h.stable_group(G, 2);
    assert_eq!(
        h.commit_codes(G, &ids[0], generation, &[("t", 0, 10), ("t", 1, 20)]),
        vec![0, 0]
    );
    assert_eq!(
        h.commit_codes(G, &ids[1], generation, &[("t", 0, 11)]),
        vec![0]
    );
    let p = h.sm.partition_of(G);
    let mut n = reload(&h, h.log[&p].clone());
    assert_eq!(n.fetch(G, "t", 0), Ok(11), "latest value wins");
    assert_eq!(n.fetch(G, "t", 1), Ok(20));
    assert_eq!(n.sm.group_state(G), Some(GroupState::Stable));
    // Members carry on with the same generation and assignment.
    assert_eq!(n.heartbeat(G, &ids[1], generation), 0);
    let Reply::Now(s) = n.sync(G, &ids[1], generation, &[]) else {
        panic!()
    };
    assert_eq!(s.assignment, bytes::Bytes::from(format!("a-{}", ids[1])));
    assert_eq!(
        n.commit_codes(G, &ids[0], generation, &[("t", 0, 12)]),
        vec![0]
    );
}

#[test]
fn tombstones_delete_on_load() {
    let mut h = H::new();
    assert_eq!(
        h.commit_codes(G, "", -1, &[("gone", 0, 5), ("kept", 0, 6)]),
        vec![0, 0]
    );
    h.sm.topic_deleted("gone");
    h.pump();
    let p = h.sm.partition_of(G);
    let mut n = reload(&h, h.log[&p].clone());
    assert_eq!(n.fetch(G, "gone", 0), Ok(-1));
    assert_eq!(n.fetch(G, "kept", 0), Ok(6));
}

#[test]
fn garbage_records_are_skipped() {
    let h = H::new();
    let junk = vec![
        (
            bytes::Bytes::from_static(b"\x00"),
            Some(bytes::Bytes::from_static(b"zz")),
        ),
        (
            bytes::Bytes::from_static(b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x00"),
            Some(bytes::Bytes::from_static(b"\x00\x03")),
        ),
    ];
    let mut n = reload(&h, junk);
    assert_eq!(n.fetch(G, "t", 0), Ok(-1));
}

#[test]
fn resign_answers_not_coordinator_and_fails_waiters() {
    let mut h = H::new();
    let (ids, _) = h.stable_group(G, 1);
    let (_, w_new) = h.join_new(G);
    let p = h.sm.partition_of(G);
    h.sm.resign(p);
    h.pump();
    assert_eq!(h.join_done(w_new).error_code, 16, "NOT_COORDINATOR");
    assert_eq!(h.heartbeat(G, &ids[0], 1), 16);
    assert_eq!(h.fetch(G, "t", 0), Err(16));
}

#[test]
fn stale_load_is_ignored() {
    let mut sm = GroupStateMachine::new(config());
    let p = sm.partition_of(G);
    let first = sm.begin_load(p);
    sm.resign(p);
    let second = sm.begin_load(p);
    assert!(!sm.finish_load(p, first, Vec::new(), 0));
    assert_eq!(sm.check(G), Err(14));
    assert!(sm.finish_load(p, second, Vec::new(), 0));
    assert_eq!(sm.check(G), Ok(p));
}

#[test]
fn compaction_snapshot_reloads_to_the_same_state() {
    let mut h = H::new();
    let (ids, generation) = h.stable_group(G, 2);
    for i in 0..20 {
        assert_eq!(
            h.commit_codes(G, &ids[0], generation, &[("t", 0, i), ("t", 1, 100 + i)]),
            vec![0, 0]
        );
    }
    let p = h.sm.partition_of(G);
    let snapshot: Vec<_> =
        h.sm.compaction_snapshot(p)
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
    assert_eq!(snapshot.len(), 3, "one group record and two offsets");
    assert!(h.log[&p].len() > snapshot.len());
    let mut n = reload(&h, snapshot);
    assert_eq!(n.fetch(G, "t", 0), Ok(19));
    assert_eq!(n.fetch(G, "t", 1), Ok(119));
    assert_eq!(n.sm.group_state(G), Some(GroupState::Stable));
    assert_eq!(n.heartbeat(G, &ids[1], generation), 0);
}
