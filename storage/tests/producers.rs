//! Idempotent producers through the log: duplicates answered with the stored offsets,
//! sequence gaps and fenced epochs refused, and the producer state kept through rolls,
//! clean and unclean reopens, follower appends, truncation and retention.

mod common;

use common::{files, tiny};
use gregor_storage::batch::{build_producer_test_batch, TestProducer};
use gregor_storage::{LogError, PartitionLog, SequenceError};
use protocol::ids::{LeaderEpoch, Offset};
use std::path::Path;

const E: LeaderEpoch = LeaderEpoch(1);

/// A batch of `count` records (100 bytes with the header) of producer `pid` at `epoch`.
fn pbatch(pid: i64, epoch: i16, seq: i32, count: i32) -> Vec<u8> {
    let producer = TestProducer {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
    };
    build_producer_test_batch(producer, 0, 0, count, 1_000, &[seq as u8; 39])
}

/// Appends as leader and returns (first offset, duplicate).
fn append(log: &mut PartitionLog, b: &[u8]) -> Result<(i64, bool), LogError> {
    log.append(b, E, 1_000)
        .map(|i| (i.first_offset.0, i.duplicate))
}

fn sequence_error(r: Result<(i64, bool), LogError>) -> SequenceError {
    match r {
        Err(LogError::Sequence { source, .. }) => source,
        other => panic!("expected a sequence error, got {other:?}"),
    }
}

#[test]
fn a_retried_batch_is_not_stored_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), "t-0", tiny(1 << 20)).unwrap();
    assert_eq!(append(&mut log, &pbatch(5, 0, 0, 3)).unwrap(), (0, false));
    assert_eq!(append(&mut log, &pbatch(5, 0, 3, 2)).unwrap(), (3, false));
    assert_eq!(append(&mut log, &pbatch(5, 0, 0, 3)).unwrap(), (0, true));
    assert_eq!(append(&mut log, &pbatch(5, 0, 3, 2)).unwrap(), (3, true));
    assert_eq!(log.log_end_offset(), Offset(5), "nothing appended twice");

    let gap = sequence_error(append(&mut log, &pbatch(5, 0, 9, 1)));
    assert!(
        matches!(
            gap,
            SequenceError::OutOfOrder {
                expected: 5,
                found: 9,
                ..
            }
        ),
        "{gap:?}"
    );
    // A bumped epoch starts at 0; the old epoch is fenced from then on.
    assert_eq!(append(&mut log, &pbatch(5, 1, 0, 1)).unwrap(), (5, false));
    let stale = sequence_error(append(&mut log, &pbatch(5, 0, 5, 1)));
    assert!(matches!(
        stale,
        SequenceError::StaleEpoch { current: 1, .. }
    ));
    assert_eq!(log.log_end_offset(), Offset(6));
    // Other producers and plain batches are independent.
    assert_eq!(append(&mut log, &pbatch(6, 0, 100, 1)).unwrap(), (6, false));
    assert_eq!(
        append(&mut log, &pbatch(-1, -1, -1, 1)).unwrap(),
        (7, false)
    );
    assert_eq!(
        append(&mut log, &pbatch(-1, -1, -1, 1)).unwrap(),
        (8, false)
    );
}

/// A log with 250-byte segments (two batches each) holding `batches` one-record batches
/// of producer 9, sequences 0, 1, 2, ...
fn rolled_log(path: &Path, batches: i32) -> PartitionLog {
    let mut log = PartitionLog::open(path, "t-0", tiny(250)).unwrap();
    for seq in 0..batches {
        assert!(!append(&mut log, &pbatch(9, 0, seq, 1)).unwrap().1);
    }
    log
}

fn check_state_of_rolled_log(log: &mut PartitionLog, batches: i32) {
    let last = batches - 1;
    assert_eq!(
        append(log, &pbatch(9, 0, last, 1)).unwrap(),
        (i64::from(last), true),
        "the last batch is still known"
    );
    let gap = sequence_error(append(log, &pbatch(9, 0, batches + 1, 1)));
    assert!(matches!(gap, SequenceError::OutOfOrder { expected, .. } if expected == batches));
    assert_eq!(
        append(log, &pbatch(9, 0, batches, 1)).unwrap(),
        (i64::from(batches), false)
    );
}

#[test]
fn the_state_survives_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = rolled_log(dir.path(), 7);
    log.close().unwrap();
    let names = files(dir.path());
    assert!(
        names.contains(&format!("{:020}.snapshot", 7)),
        "close saves the state at the log end: {names:?}"
    );
    let mut log = PartitionLog::open(dir.path(), "t-0", tiny(250)).unwrap();
    assert!(
        !files(dir.path()).contains(&format!("{:020}.snapshot", 7)),
        "a snapshot of no segment goes once loaded"
    );
    check_state_of_rolled_log(&mut log, 7);
}

#[test]
fn the_state_is_replayed_after_a_crash_from_the_last_roll() {
    let dir = tempfile::tempdir().unwrap();
    drop(rolled_log(dir.path(), 7)); // no close: a crash
    let names = files(dir.path());
    for base in [2, 4, 6] {
        assert!(
            names.contains(&format!("{base:020}.snapshot")),
            "each roll saved a snapshot: {names:?}"
        );
    }
    let mut log = PartitionLog::open(dir.path(), "t-0", tiny(250)).unwrap();
    check_state_of_rolled_log(&mut log, 7);
}

#[test]
fn damaged_or_missing_snapshots_fall_back_to_older_ones_or_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    drop(rolled_log(dir.path(), 7));
    std::fs::write(
        dir.path().join(format!("{:020}.snapshot", 6)),
        b"0\n1\ngarbage\n",
    )
    .unwrap();
    std::fs::remove_file(dir.path().join(format!("{:020}.snapshot", 4))).unwrap();
    let mut log = PartitionLog::open(dir.path(), "t-0", tiny(250)).unwrap();
    check_state_of_rolled_log(&mut log, 7);
    let names = files(dir.path());
    assert!(
        names.contains(&format!("{:020}.snapshot", 4))
            && names.contains(&format!("{:020}.snapshot", 6)),
        "the replay saved the segments it crossed anew: {names:?}"
    );
    drop(log);

    let dir = tempfile::tempdir().unwrap();
    drop(rolled_log(dir.path(), 5));
    for name in files(dir.path()) {
        if name.ends_with(".snapshot") {
            std::fs::remove_file(dir.path().join(name)).unwrap();
        }
    }
    let mut log = PartitionLog::open(dir.path(), "t-0", tiny(250)).unwrap();
    check_state_of_rolled_log(&mut log, 5);
}

#[test]
fn a_follower_learns_the_producers_from_what_it_replicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = rolled_log(&dir.path().join("leader"), 5);
    let mut follower = PartitionLog::open(dir.path().join("follower"), "t-0", tiny(250)).unwrap();
    let mut at = Offset(0);
    while at < leader.log_end_offset() {
        let r = leader.read(at, 1 << 20, leader.log_end_offset()).unwrap();
        let info = follower.append_as_follower(&r.records, 1_000).unwrap();
        at = Offset(info.last_offset.0 + 1);
    }
    // The follower becomes leader: the producer's retry is answered, not stored again.
    check_state_of_rolled_log(&mut follower, 5);
    check_state_of_rolled_log(&mut leader, 5);
}

#[test]
fn truncation_forgets_the_batches_it_removes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = rolled_log(dir.path(), 7);
    log.truncate_to(Offset(3)).unwrap();
    assert_eq!(log.log_end_offset(), Offset(3));
    // Sequence 3 is not stored any more: its retry is appended, at offset 3 again.
    assert_eq!(append(&mut log, &pbatch(9, 0, 3, 1)).unwrap(), (3, false));
    assert_eq!(append(&mut log, &pbatch(9, 0, 2, 1)).unwrap(), (2, true));
    let gap = sequence_error(append(&mut log, &pbatch(9, 0, 6, 1)));
    assert!(matches!(gap, SequenceError::OutOfOrder { expected: 4, .. }));

    log.truncate_fully_and_start_at(Offset(50)).unwrap();
    assert!(log.producers().is_empty());
    assert_eq!(append(&mut log, &pbatch(9, 0, 6, 1)).unwrap(), (50, false));
}

#[test]
fn producers_whose_batches_retention_deleted_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), "t-0", tiny(250)).unwrap();
    append(&mut log, &pbatch(1, 0, 0, 1)).unwrap();
    append(&mut log, &pbatch(2, 0, 0, 1)).unwrap();
    append(&mut log, &pbatch(2, 0, 1, 1)).unwrap();
    append(&mut log, &pbatch(2, 0, 2, 1)).unwrap();
    log.delete_records_before(Offset(2)).unwrap();
    assert!(log.producers().get(1).is_none());
    assert!(log.producers().get(2).is_some());
    // Producer 1 is unknown now: any sequence starts it again.
    assert_eq!(append(&mut log, &pbatch(1, 0, 40, 1)).unwrap(), (4, false));
}
