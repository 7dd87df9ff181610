//! Appends, reads, rolls, retention and truncation, with the exact files left on disk.

mod common;

use common::{batch, files, split, tiny};
use gregor_storage::batch::patch;
use gregor_storage::{BatchError, BatchHeader, LogError, PartitionLog};
use protocol::ids::{LeaderEpoch, Offset};

const E: LeaderEpoch = LeaderEpoch(1);

/// The files of segment `base`; a segment a roll started has a producer snapshot too.
fn seg(base: i64) -> Vec<String> {
    let mut files = vec![
        format!("{base:020}.index"),
        format!("{base:020}.log"),
        format!("{base:020}.timeindex"),
    ];
    if base > 0 {
        files.push(format!("{base:020}.snapshot"));
    }
    files
}

fn expected_files(bases: &[i64], extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = bases.iter().flat_map(|&b| seg(b)).collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v.sort();
    v
}

#[test]
fn append_assigns_offsets_and_reads_back_zero_copy() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path().join("t-0"), "t-0", tiny(1 << 20)).unwrap();
    let b1 = batch(3, 1, 100, 1_000);
    let mut both = batch(2, 2, 50, 2_000);
    both.extend(batch(1, 3, 10, 1_500));
    let i1 = log.append(&b1, E, 0).unwrap();
    assert_eq!(
        (i1.first_offset, i1.last_offset, i1.record_count),
        (Offset(0), Offset(2), 3)
    );
    let i2 = log.append(&both, E, 0).unwrap();
    assert_eq!(
        (i2.first_offset, i2.last_offset, i2.batch_count),
        (Offset(3), Offset(5), 2)
    );
    assert_eq!(i2.max_timestamp, 2_000);
    assert_eq!(log.log_end_offset(), Offset(6));

    // The client's bytes are stored with only `baseOffset` and `partitionLeaderEpoch`
    // changed (the CRC does not cover them); the caller's buffers are left as they were.
    assert_eq!(b1, batch(3, 1, 100, 1_000));
    let all = log.read(Offset(0), 1 << 20, Offset(6)).unwrap();
    let mut expect = b1.clone();
    patch(&mut expect, 0, E.0);
    let mut rest = both.clone();
    let first_len = batch(2, 2, 50, 2_000).len();
    patch(&mut rest[..first_len], 3, E.0);
    patch(&mut rest[first_len..], 5, E.0);
    expect.extend_from_slice(&rest);
    assert_eq!(&all.records[..], &expect[..]);
    for (_, stored) in split(&all.records) {
        BatchHeader::parse(&stored)
            .unwrap()
            .verify_crc(&stored)
            .unwrap();
    }
    // From the middle of a batch: that whole batch.
    let r = log.read(Offset(4), 1 << 20, Offset(6)).unwrap();
    assert_eq!(
        split(&r.records).iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![3, 5]
    );
    // max_bytes smaller than one batch still gives one batch.
    let r = log.read(Offset(0), 1, Offset(6)).unwrap();
    assert_eq!(split(&r.records).len(), 1);
    // The upper bound is never crossed; a batch reaching it is left out.
    let r = log.read(Offset(0), 1 << 20, Offset(4)).unwrap();
    assert_eq!(
        split(&r.records).iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![0]
    );
    assert!(log
        .read(Offset(3), 1 << 20, Offset(3))
        .unwrap()
        .records
        .is_empty());
    assert!(log
        .read(Offset(6), 1 << 20, Offset(6))
        .unwrap()
        .records
        .is_empty());
    assert!(matches!(
        log.read(Offset(7), 10, Offset(7)),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.latest_epoch(), Some(E));
    assert_eq!(log.end_offset_for_epoch(E), Some((E, Offset(6))));
}

#[test]
fn invalid_batches_are_rejected_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), "t-0", tiny(1 << 20)).unwrap();
    let mut good_then_bad = batch(1, 1, 10, 0);
    let mut bad = batch(1, 2, 10, 0);
    bad[70] ^= 0xff;
    good_then_bad.extend(bad);
    let err = log.append(&good_then_bad, E, 0).unwrap_err();
    assert!(
        matches!(err, LogError::InvalidBatch { position: 71, .. }),
        "{err}"
    );
    assert_eq!(log.log_end_offset(), Offset(0));
    let mut wrong_magic = batch(1, 1, 10, 0);
    wrong_magic[16] = 1;
    assert!(matches!(
        log.append(&wrong_magic, E, 0),
        Err(LogError::InvalidBatch { .. })
    ));
    assert!(matches!(
        log.append(&[], E, 0),
        Err(LogError::InvalidBatch { .. })
    ));
    let huge = batch(1, 1, 2 << 20, 0);
    assert!(matches!(
        log.append(&huge, E, 0),
        Err(LogError::BatchTooLarge { .. })
    ));
}

#[test]
fn follower_append_keeps_offsets_and_rejects_gaps_and_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = PartitionLog::open(dir.path().join("l"), "l", tiny(1 << 20)).unwrap();
    let mut follower = PartitionLog::open(dir.path().join("f"), "f", tiny(1 << 20)).unwrap();
    leader
        .append(&batch(2, 1, 10, 0), LeaderEpoch(3), 0)
        .unwrap();
    leader
        .append(&batch(2, 1, 10, 0), LeaderEpoch(5), 0)
        .unwrap();
    let all = leader.read(Offset(0), 1 << 20, Offset(4)).unwrap().records;
    let batches = split(&all);
    assert!(matches!(
        follower.append_as_follower(&batches[1].1, 0),
        Err(LogError::FollowerGap { .. })
    ));
    follower.append_as_follower(&all, 0).unwrap();
    assert!(matches!(
        follower.append_as_follower(&batches[1].1, 0),
        Err(LogError::FollowerOverlap { .. })
    ));
    assert_eq!(follower.log_end_offset(), Offset(4));
    assert_eq!(
        follower.epoch_entries(),
        &[(LeaderEpoch(3), Offset(0)), (LeaderEpoch(5), Offset(2))]
    );
    assert_eq!(
        follower.end_offset_for_epoch(LeaderEpoch(4)),
        Some((LeaderEpoch(3), Offset(2)))
    );
}

#[test]
fn rolls_leave_exact_files_and_reopen_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    // Each batch is 61 + 39 = 100 bytes; 250-byte segments hold two.
    let mut log = PartitionLog::open(&path, "t-0", tiny(250)).unwrap();
    for i in 0..5 {
        log.append(&batch(2, i, 39, 100 + i64::from(i)), E, 0)
            .unwrap();
    }
    assert_eq!(log.segment_bases(), vec![Offset(0), Offset(4), Offset(8)]);
    let lens: Vec<u64> = [0, 4]
        .iter()
        .map(|&b| {
            std::fs::metadata(path.join(format!("{b:020}.log")))
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(lens, vec![200, 200], "rolled segments are trimmed");
    assert_eq!(
        std::fs::metadata(path.join(format!("{:020}.log", 8)))
            .unwrap()
            .len(),
        250,
        "the active segment is sized to segment.bytes"
    );
    assert!(log.mapped_segments() <= 2);
    let r = log.read(Offset(5), 1 << 20, Offset(10)).unwrap();
    assert_eq!(
        split(&r.records).iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![4, 6]
    );
    log.close().unwrap();
    assert_eq!(
        files(&path),
        expected_files(
            &[0, 4, 8],
            &[
                ".clean-shutdown",
                "00000000000000000010.snapshot",
                "leader-epoch-checkpoint",
                "recovery-point"
            ]
        )
    );
    assert_eq!(
        std::fs::metadata(path.join(format!("{:020}.log", 8)))
            .unwrap()
            .len(),
        100
    );
    let mut log = PartitionLog::open(&path, "t-0", tiny(250)).unwrap();
    assert_eq!(log.log_end_offset(), Offset(10));
    assert_eq!(
        files(&path),
        expected_files(&[0, 4, 8], &["leader-epoch-checkpoint", "recovery-point"])
    );
    log.append(&batch(1, 9, 39, 200), E, 0).unwrap();
    assert_eq!(log.segment_bases(), vec![Offset(0), Offset(4), Offset(8)]);
    let r = log.read(Offset(8), 1 << 20, Offset(11)).unwrap();
    assert_eq!(
        split(&r.records).iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![8, 10]
    );
    assert_eq!(
        log.offset_for_timestamp(103).unwrap().map(|t| t.offset),
        Some(Offset(6))
    );
    assert_eq!(
        log.offset_for_timestamp(150)
            .unwrap()
            .map(|t| (t.offset, t.timestamp)),
        Some((Offset(10), 200))
    );
    assert_eq!(log.offset_for_timestamp(201).unwrap(), None);
}

/// A log at `path` with segments 0, 2 and 4 of two batches each, timestamped 1000, 2000
/// and 3000, and `retention.ms` 1000.
fn three_segments_with_retention(path: &std::path::Path) -> PartitionLog {
    let mut log = PartitionLog::open(path, "t-0", tiny(250)).unwrap();
    for i in 0..6 {
        log.append(&batch(1, i, 39, 1000 * (1 + i64::from(i) / 2)), E, 0)
            .unwrap();
    }
    assert_eq!(log.segment_bases(), vec![Offset(0), Offset(2), Offset(4)]);
    let mut cfg = log.config().clone();
    cfg.retention_ms = Some(1000);
    log.set_config(cfg);
    log
}

#[test]
fn deferred_retention_renames_under_the_log_and_deletes_later_or_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = three_segments_with_retention(&path);
    // A view of the segment that goes: it stays readable after the files are gone.
    let view = log.read(Offset(0), 1 << 20, Offset(2)).unwrap().records;
    let before = view.to_vec();

    assert_eq!(log.enforce_retention_deferred(3000).unwrap(), 1);
    assert_eq!(log.log_start_offset(), Offset(2));
    let mut renamed: Vec<String> = seg(0).iter().map(|f| format!("{f}.deleted")).collect();
    renamed.sort();
    let mut listed = expected_files(&[2, 4], &["leader-epoch-checkpoint"]);
    listed.extend(renamed.clone());
    listed.sort();
    assert_eq!(files(&path), listed);
    let trash = log.take_trash();
    assert!(!trash.is_empty() && log.take_trash().is_empty());
    trash.empty().unwrap();
    assert_eq!(
        files(&path),
        expected_files(&[2, 4], &["leader-epoch-checkpoint"])
    );
    assert_eq!(&view[..], &before[..]);

    // Renamed but never deleted (a crash in between): opening the log removes them.
    assert_eq!(log.enforce_retention_deferred(4000).unwrap(), 1);
    drop(log);
    let log = PartitionLog::open(&path, "t-0", tiny(250)).unwrap();
    assert_eq!(log.segment_bases(), vec![Offset(4)]);
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (Offset(4), Offset(6))
    );
    assert!(
        files(&path).iter().all(|f| !f.ends_with(".deleted")),
        "{:?}",
        files(&path)
    );
}

#[test]
fn retention_by_time_and_size_deletes_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = three_segments_with_retention(&path);
    let mut cfg = log.config().clone();
    assert_eq!(log.enforce_retention(3000).unwrap(), 1); // segment 0 (max ts 1000 < 2000)
    assert_eq!(log.log_start_offset(), Offset(2));
    assert!(matches!(
        log.read(Offset(1), 10, Offset(6)),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        files(&path),
        expected_files(&[2, 4], &["leader-epoch-checkpoint"])
    );
    // Everything expired: the active segment is rolled and deleted too.
    assert_eq!(log.enforce_retention(10_000).unwrap(), 2);
    assert_eq!(log.segment_bases(), vec![Offset(6)]);
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (Offset(6), Offset(6))
    );
    assert_eq!(
        files(&path),
        expected_files(&[6], &["leader-epoch-checkpoint"])
    );

    cfg.retention_ms = None;
    cfg.retention_bytes = Some(250);
    log.set_config(cfg);
    for i in 0..6 {
        log.append(&batch(1, i, 39, 0), E, 0).unwrap();
    }
    // Segments 6, 8 and the active 10, 200 bytes each: only 6 can go while keeping >= 250.
    assert_eq!(log.enforce_retention(0).unwrap(), 1);
    assert_eq!(log.segment_bases(), vec![Offset(8), Offset(10)]);
    assert_eq!(log.log_start_offset(), Offset(8));
}

#[test]
fn truncation_and_delete_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::open(&path, "t-0", tiny(250)).unwrap();
    for i in 0..5 {
        log.append(&batch(2, i, 39, 0), LeaderEpoch(i32::from(i)), 0)
            .unwrap();
    }
    // A reader holds a view into a segment that truncation will rewrite.
    let held = log.read(Offset(4), 1 << 20, Offset(10)).unwrap().records;
    let held_copy = held.to_vec();
    // Offset 5 is inside batch 4..5: the whole batch goes.
    log.truncate_to(Offset(5)).unwrap();
    assert_eq!(log.log_end_offset(), Offset(4));
    assert_eq!(log.segment_bases(), vec![Offset(0), Offset(4)]);
    assert_eq!(log.latest_epoch(), Some(LeaderEpoch(1)));
    assert_eq!(
        &held[..],
        &held_copy[..],
        "views are never changed under a reader"
    );
    assert_eq!(
        files(&path),
        expected_files(&[0, 4], &["leader-epoch-checkpoint"])
    );
    assert_eq!(
        std::fs::metadata(path.join(format!("{:020}.log", 4)))
            .unwrap()
            .len(),
        250
    );
    log.append(&batch(3, 7, 10, 0), LeaderEpoch(9), 0).unwrap();
    let r = log.read(Offset(4), 1 << 20, Offset(10)).unwrap();
    assert_eq!(
        split(&r.records).iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![4]
    );
    assert_eq!(log.log_end_offset(), Offset(7));

    // Truncating inside the active segment with no views alive rewinds in place.
    log.truncate_to(Offset(4)).unwrap();
    assert_eq!(log.log_end_offset(), Offset(4));
    log.append(&batch(1, 8, 10, 0), LeaderEpoch(9), 0).unwrap();
    assert_eq!(log.log_end_offset(), Offset(5));

    log.delete_records_before(Offset(3)).unwrap();
    assert_eq!(log.log_start_offset(), Offset(3));
    assert_eq!(
        log.segment_bases(),
        vec![Offset(0), Offset(4)],
        "segment 0 still holds 3"
    );
    let r = log.read(Offset(3), 1 << 20, Offset(5)).unwrap();
    assert_eq!(split(&r.records)[0].0, 2, "the batch containing offset 3");
    log.delete_records_before(Offset(4)).unwrap();
    assert_eq!(log.segment_bases(), vec![Offset(4)]);
    assert!(matches!(
        log.delete_records_before(Offset(6)),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.close().unwrap();
    let mut log = PartitionLog::open(&path, "t-0", tiny(250)).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (Offset(4), Offset(5))
    );

    log.truncate_fully_and_start_at(Offset(100)).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (Offset(100), Offset(100))
    );
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(
        files(&path),
        [
            "00000000000000000100.index",
            "00000000000000000100.log",
            "00000000000000000100.timeindex",
            "leader-epoch-checkpoint",
            "log-start-offset",
            "recovery-point"
        ],
        "a segment no roll started has no producer snapshot"
    );
    log.append(&batch(1, 1, 10, 0), E, 0).unwrap();
    assert_eq!(log.log_end_offset(), Offset(101));
    log.delete().unwrap();
    assert!(!path.exists());
}

#[test]
fn corrupt_byte_in_an_older_segment_is_an_error_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::open(&path, "t-0", tiny(250)).unwrap();
    for i in 0..5 {
        log.append(&batch(2, i, 39, 0), E, 0).unwrap();
    }
    log.close().unwrap();
    let seg0 = path.join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&seg0).unwrap();
    // A flipped bit in the records of the second batch (at 100): reads do not check
    // CRCs (as in Kafka, the consumer does), so it is served as stored and the batch's
    // own CRC shows the damage to whoever checks it.
    bytes[150] ^= 0x40;
    std::fs::write(&seg0, &bytes).unwrap();
    let log = PartitionLog::open(&path, "t-0", tiny(250)).unwrap();
    let read = log.read(Offset(2), 1 << 20, Offset(10)).unwrap();
    assert!(matches!(
        BatchHeader::parse_and_validate(&read.records),
        Err(BatchError::CrcMismatch { .. })
    ));
    drop(log);
    // A flipped bit in that batch's length: the log cannot find its way through the
    // segment, which is an error on read.
    bytes[109] ^= 0x40;
    std::fs::write(&seg0, bytes).unwrap();
    // Cleanly closed: segment 0 is not rescanned on open, the damage shows on read.
    let log = PartitionLog::open(&path, "t-0", tiny(250)).unwrap();
    assert_eq!(log.log_end_offset(), Offset(10));
    assert!(
        log.read(Offset(4), 1 << 20, Offset(10)).is_ok(),
        "other segments read"
    );
    let err = log.read(Offset(2), 1 << 20, Offset(10)).unwrap_err();
    match err {
        LogError::Corrupt { file, position, .. } => {
            assert_eq!((file, position), (seg0, 100));
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn segment_ms_rolls_on_tick_and_flush_policies_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(1 << 20);
    cfg.segment_ms = Some(1000);
    cfg.flush_ms = Some(10);
    cfg.flush_messages = Some(2);
    let mut log = PartitionLog::open(dir.path(), "t-0", cfg).unwrap();
    log.append(&batch(1, 1, 10, 0), E, 5_000).unwrap();
    log.tick(5_500).unwrap();
    assert_eq!(log.segment_bases(), vec![Offset(0)]);
    log.tick(6_000).unwrap();
    assert_eq!(log.segment_bases(), vec![Offset(0), Offset(1)]);
    log.tick(6_001).unwrap(); // fsyncs the rolled segment
    assert_eq!(
        std::fs::read_to_string(dir.path().join("recovery-point"))
            .unwrap()
            .lines()
            .nth(2),
        Some("1")
    );
    log.append(&batch(3, 1, 10, 0), E, 6_100).unwrap();
    log.tick(7_000).unwrap();
}

#[test]
fn a_sync_done_outside_the_log_counts_only_for_the_segment_it_synced() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(1 << 20);
    cfg.segment_ms = Some(1000);
    let mut log = PartitionLog::open(dir.path(), "t-0", cfg).unwrap();
    log.append(&batch(1, 1, 10, 0), E, 5_000).unwrap();
    log.tick_except_sync(6_000).unwrap();
    let first = log.next_pending_sync().expect("segment 0 rolled");
    assert_eq!(first.base, 0);
    // While that fsync runs without the log, the log is truncated and segment 0 rolls anew.
    log.truncate_fully_and_start_at(Offset(0)).unwrap();
    log.append(&batch(1, 1, 10, 0), E, 7_000).unwrap();
    log.tick_except_sync(8_100).unwrap();
    let second = log.next_pending_sync().expect("segment 0 rolled again");
    assert_eq!(second.base, 0);
    assert_ne!(first, second);
    first.sync().unwrap();
    log.mark_synced(&first).unwrap();
    assert_eq!(log.next_pending_sync(), Some(second.clone()));
    second.sync().unwrap();
    log.mark_synced(&second).unwrap();
    assert_eq!(log.next_pending_sync(), None);
}

#[test]
fn truncation_below_a_moved_log_start_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::open(&path, "t-0", tiny(1 << 20)).unwrap();
    log.append(&batch(8, 1, 10, 0), E, 0).unwrap(); // offsets 0..7
    log.append(&batch(2, 2, 10, 0), E, 0).unwrap(); // offsets 8..9
    log.delete_records_before(Offset(9)).unwrap();
    // Offset 9 sits in the batch 8..9, which goes whole: the log is empty at 8.
    log.truncate_to(Offset(9)).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (Offset(8), Offset(8))
    );
    log.append(&batch(1, 3, 10, 0), E, 0).unwrap();
    drop(log); // crash
    let log = PartitionLog::open(&path, "t-0", tiny(1 << 20)).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (Offset(8), Offset(9))
    );
    assert!(log.read(Offset(8), 1 << 20, Offset(9)).is_ok());
}

#[test]
fn views_from_before_a_reopen_survive_a_truncation_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::open(&path, "t-0", tiny(1 << 20)).unwrap();
    log.append(&batch(2, 1, 10, 0), E, 0).unwrap();
    log.append(&batch(2, 2, 10, 0), E, 0).unwrap();
    let view = log.read(Offset(0), 1 << 20, Offset(4)).unwrap().records;
    let copy = view.to_vec();
    drop(log); // crash; the view (say, a fetch response being written) lives on
    let mut log = PartitionLog::open(&path, "t-0", tiny(1 << 20)).unwrap();
    log.truncate_to(Offset(0)).unwrap();
    log.append(&batch(1, 3, 10, 0), E, 0).unwrap();
    assert_eq!(
        &view[..],
        &copy[..],
        "a view from before the reopen changed"
    );
}

#[test]
fn many_segments_keep_a_bounded_number_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), "t-0", tiny(250)).unwrap();
    for i in 0..40 {
        log.append(&batch(1, i, 39, 0), E, 0).unwrap();
    }
    for from in 0..40 {
        let r = log.read(Offset(from), 1 << 20, Offset(40)).unwrap();
        assert_eq!(split(&r.records)[0].0, from);
        assert!(log.mapped_segments() <= 2);
    }
}

#[test]
fn unclean_open_rescans_only_from_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::open(&path, "t-0", tiny(250)).unwrap();
    for i in 0..5 {
        log.append(&batch(2, i, 39, 0), E, 0).unwrap();
    }
    log.flush().unwrap(); // segments 0 and 4 are durable; 8 is active
    log.append(&batch(2, 9, 39, 0), E, 0).unwrap(); // offsets 10..11 in segment 8
    drop(log); // crash
               // Damage below the recovery point (not rescanned) and in the active segment.
    let flip = |base: i64, at: usize| {
        let p = path.join(format!("{base:020}.log"));
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[at] ^= 0x01;
        std::fs::write(&p, bytes).unwrap();
    };
    flip(4, 130);
    flip(8, 150); // inside the batch at 100..200 (offsets 10..11)
    std::fs::remove_file(path.join(format!("{:020}.index", 0))).unwrap();
    let log = PartitionLog::open(&path, "t-0", tiny(250)).unwrap();
    assert_eq!(
        log.log_end_offset(),
        Offset(10),
        "the damaged active batch is cut"
    );
    assert_eq!(log.segment_bases(), vec![Offset(0), Offset(4), Offset(8)]);
    // Below the recovery point nothing is rescanned: the damaged batch is served as
    // stored, and its own CRC shows the damage to a consumer that checks it.
    let read = log.read(Offset(6), 1 << 20, Offset(10)).unwrap();
    assert!(matches!(
        BatchHeader::parse_and_validate(&read.records),
        Err(BatchError::CrcMismatch { .. })
    ));
    // Segment 0's missing index is rebuilt when it is first read.
    let r = log.read(Offset(2), 1 << 20, Offset(10)).unwrap();
    assert_eq!(
        split(&r.records).iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![2]
    );
}

#[test]
fn partition_log_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<PartitionLog>();
}

/// Disk blocks of the file at `path`.
fn allocated_bytes(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[test]
fn segments_hold_blocks_for_their_data_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let segment = 32u64 << 20;
    let mut log = PartitionLog::open(&path, "t-0", tiny(segment)).unwrap();
    let b = batch(16, 1, 64 << 10, 1_000);
    log.append(&b, E, 0).unwrap();
    let first = path.join(seg(0)[1].clone());
    let meta = std::fs::metadata(&first).unwrap();
    assert_eq!(
        meta.len(),
        segment,
        "the active segment is sized to segment.bytes"
    );
    let held = allocated_bytes(&first);
    assert!(
        held <= b.len() as u64 + (64 << 10),
        "{held} bytes allocated for {} bytes of data: nothing is allocated ahead",
        b.len()
    );

    // Fill the segment until it rolls: the sealed file keeps its data's blocks only.
    for _ in 0..4 * segment / b.len() as u64 {
        if std::fs::metadata(&first).unwrap().len() < segment {
            break;
        }
        log.append(&b, E, 0).unwrap();
    }
    let sealed = std::fs::metadata(&first).unwrap().len();
    assert!(sealed < segment, "the first segment rolled and was trimmed");
    assert!(
        allocated_bytes(&first) <= sealed + (64 << 10),
        "{} bytes allocated for {sealed} bytes of data",
        allocated_bytes(&first)
    );
    let read = log.read(Offset(0), 1 << 20, log.log_end_offset()).unwrap();
    assert_eq!(split(&read.records)[0].0, 0, "the data reads back");
}
