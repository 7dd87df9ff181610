//! Leader appends in three steps (prepare, write without the log, finish): what readers see
//! in between, what other writers get, and what a failed write leaves.

mod common;

use common::{batch, split, tiny};
use gregor_storage::{LogError, PartitionLog};
use protocol::ids::{LeaderEpoch, Offset};

const E: LeaderEpoch = LeaderEpoch(3);

fn offsets(log: &PartitionLog) -> Vec<i64> {
    let read = log.read(Offset(0), 1 << 20, Offset(i64::MAX)).unwrap();
    split(&read.records).into_iter().map(|(o, _)| o).collect()
}

#[test]
fn a_prepared_append_is_unseen_until_finished_and_holds_off_other_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::open(&path, "t-0", tiny(1 << 20)).unwrap();
    log.append(&batch(3, 1, 100, 1_000), E, 0).unwrap();

    let mut two = batch(2, 2, 50, 2_000);
    two.extend(batch(1, 3, 10, 3_000));
    let prepared = log.prepare_append(&two, E, 0).unwrap();
    assert_eq!(
        (prepared.info().first_offset, prepared.info().last_offset),
        (Offset(3), Offset(5))
    );
    // Nothing is readable past the old end, before or after the bytes are written.
    assert_eq!(log.log_end_offset(), Offset(3));
    assert_eq!(offsets(&log), vec![0]);
    prepared.write(&two).unwrap();
    assert_eq!(offsets(&log), vec![0]);

    // Every other change to the active segment waits for the finish.
    let busy = |r: Result<(), LogError>| matches!(r, Err(LogError::AppendInProgress { .. }));
    assert!(busy(log.append(&batch(1, 4, 10, 0), E, 0).map(|_| ())));
    assert!(busy(
        log.prepare_append(&batch(1, 4, 10, 0), E, 0).map(|_| ())
    ));
    assert!(busy(log.truncate_to(Offset(1))));
    assert!(busy(log.truncate_fully_and_start_at(Offset(9))));

    let info = log.finish_append(prepared, Ok(()), 0).unwrap();
    assert_eq!((info.batch_count, info.max_timestamp), (2, 3_000));
    assert_eq!(log.log_end_offset(), Offset(6));
    assert_eq!(offsets(&log), vec![0, 3, 5]);
    log.append(&batch(1, 4, 10, 0), E, 0).unwrap();
    log.close().unwrap();

    let log = PartitionLog::open(&path, "t-0", tiny(1 << 20)).unwrap();
    assert_eq!(offsets(&log), vec![0, 3, 5, 6]);
    assert_eq!(log.end_offset_for_epoch(E), Some((E, Offset(7))));
}

#[test]
fn a_failed_write_leaves_the_log_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::open(&path, "t-0", tiny(1 << 20)).unwrap();
    log.append(&batch(2, 1, 100, 1_000), E, 0).unwrap();

    // The bytes reached the file, but the write reported a failure (a full disk midway).
    let lost = batch(5, 9, 300, 0);
    let prepared = log.prepare_append(&lost, E, 0).unwrap();
    prepared.write(&lost).unwrap();
    let failed = std::io::Error::other("disk full");
    let err = log.finish_append(prepared, Err(failed), 0).unwrap_err();
    assert!(err.to_string().contains(".log: disk full"), "{err}");
    assert_eq!(log.log_end_offset(), Offset(2));
    assert_eq!(offsets(&log), vec![0]);

    // The next append takes the same offsets and overwrites the unpublished bytes; a
    // crash (no close) and recovery find exactly what was acknowledged.
    let kept = batch(1, 2, 20, 0);
    let info = log.append(&kept, E, 0).unwrap();
    assert_eq!(info.first_offset, Offset(2));
    drop(log);
    let log = PartitionLog::open(&path, "t-0", tiny(1 << 20)).unwrap();
    assert_eq!(log.log_end_offset(), Offset(3));
    assert_eq!(offsets(&log), vec![0, 2]);
}

#[test]
fn a_request_larger_than_a_segment_is_written_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path().join("t-0"), "t-0", tiny(1024)).unwrap();
    log.append(&batch(1, 1, 100, 0), E, 0).unwrap();
    let mut big = Vec::new();
    for tag in 0..4 {
        big.extend(batch(2, tag, 400, 0));
    }
    assert!(big.len() > 1024);
    let prepared = log.prepare_append(&big, E, 0).unwrap();
    prepared.write(&big).unwrap();
    let info = log.finish_append(prepared, Ok(()), 0).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset),
        (Offset(1), Offset(8))
    );
    assert!(log.segment_bases().len() >= 3, "{:?}", log.segment_bases());
    let mut seen = Vec::new();
    let mut at = 0;
    while at < 9 {
        let read = log.read(Offset(at), 1 << 20, Offset(9)).unwrap();
        for (o, b) in split(&read.records) {
            seen.push(o);
            at = gregor_storage::BatchHeader::parse(&b)
                .unwrap()
                .next_offset();
        }
    }
    assert_eq!(seen, vec![0, 1, 3, 5, 7]);
}
