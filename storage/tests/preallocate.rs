//! Topic config `preallocate`: segments allocated on disk before they are written, the
//! next one made ahead of its roll without the log's lock.

mod common;

use common::{batch, files, split, tiny};
use gregor_storage::{LogConfig, PartitionLog};
use protocol::ids::{LeaderEpoch, Offset};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const E: LeaderEpoch = LeaderEpoch(1);
const SEGMENT: u64 = 64 << 10;

fn preallocating() -> LogConfig {
    LogConfig {
        preallocate: true,
        ..tiny(SEGMENT)
    }
}

/// Bytes the file at `path` has allocated on disk.
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

fn spares(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| f.starts_with("next-segment."))
        .collect()
}

fn log_file(dir: &Path, base: i64) -> std::path::PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// Appends 4 KiB batches worth at least `bytes` (into the active segment, as long as it
/// has that much room); returns how many.
fn fill(log: &mut PartitionLog, bytes: u64) -> usize {
    let one = batch(1, 0, 4000, 0).len() as u64;
    let n = bytes.div_ceil(one) as usize;
    for i in 0..n {
        log.append(&batch(1, i as u8, 4000, 0), E, 0).unwrap();
    }
    n
}

fn active_base(log: &PartitionLog) -> i64 {
    log.segment_bases().last().unwrap().0
}

/// Appends 4 KiB batches until the log rolls; returns the new active segment's base.
fn append_until_roll(log: &mut PartitionLog) -> i64 {
    let base = active_base(log);
    let mut n = 0u8;
    while active_base(log) == base {
        log.append(&batch(1, n, 4000, 0), E, 0).unwrap();
        n = n.wrapping_add(1);
    }
    active_base(log)
}

#[test]
fn a_preallocating_log_rolls_into_the_segment_made_ahead() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let mut log = PartitionLog::open(&dir, "t-0", preallocating()).unwrap();
    assert!(
        allocated(&log_file(&dir, 0)) >= SEGMENT,
        "a new log starts on an allocated segment"
    );
    assert_eq!(log.spare_wanted(), None, "the active segment is empty");

    fill(&mut log, SEGMENT / 2);
    let request = log
        .spare_wanted()
        .expect("half full: the next segment is wanted");
    log.install_spare(request.prepare().unwrap()).unwrap();
    assert_eq!(log.spare_wanted(), None, "one spare at a time");
    let spare = spares(&dir);
    assert_eq!(spare.len(), 1);
    assert!(allocated(&dir.join(&spare[0])) >= SEGMENT);

    // Fill past the first segment: the roll takes the spare as the new active segment.
    let next = append_until_roll(&mut log);
    assert!(spares(&dir).is_empty(), "the spare became the segment");
    assert!(allocated(&log_file(&dir, next)) >= SEGMENT);

    // Everything reads back across the roll, and again after a restart.
    let end = log.log_end_offset();
    let check = |log: &PartitionLog| {
        let mut from = Offset(0);
        let mut seen = 0;
        while from < end {
            let r = log.read(from, 1 << 20, end).unwrap();
            for (base, bytes) in split(&r.records) {
                assert_eq!(base, from.0);
                assert_eq!(bytes.len(), batch(1, 0, 4000, 0).len());
                from = Offset(base + 1);
                seen += 1;
            }
        }
        seen
    };
    assert_eq!(check(&log), end.0);
    fill(&mut log, SEGMENT / 2);
    log.install_spare(log.spare_wanted().unwrap().prepare().unwrap())
        .unwrap();
    let end = log.log_end_offset();
    log.close().unwrap();
    assert!(spares(&dir).is_empty(), "closing removes an unused spare");
    let log = PartitionLog::open(&dir, "t-0", preallocating()).unwrap();
    assert_eq!(log.log_end_offset(), end);
    let mut from = Offset(0);
    while from < end {
        let r = log.read(from, 1 << 20, end).unwrap();
        from = Offset(split(&r.records).last().unwrap().0 + 1);
    }
}

#[test]
fn a_spare_made_before_preallocate_was_turned_off_is_not_rolled_into() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let mut log = PartitionLog::open(&dir, "t-0", preallocating()).unwrap();
    fill(&mut log, SEGMENT / 2);
    log.install_spare(log.spare_wanted().unwrap().prepare().unwrap())
        .unwrap();
    log.set_config(tiny(SEGMENT));
    let next = append_until_roll(&mut log);
    assert!(
        allocated(&log_file(&dir, next)) < SEGMENT / 4,
        "rolled into a sparse segment"
    );
    log.take_trash().empty().unwrap();
    assert!(spares(&dir).is_empty(), "the unused spare was deleted");
}

#[test]
fn without_preallocate_segments_stay_sparse_and_no_spare_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let mut log = PartitionLog::open(&dir, "t-0", tiny(SEGMENT)).unwrap();
    assert_eq!(allocated(&log_file(&dir, 0)), 0);
    fill(&mut log, SEGMENT * 3 / 4);
    assert_eq!(log.spare_wanted(), None);
}

#[test]
fn a_spare_left_by_a_crash_is_removed_and_one_of_another_size_is_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let mut log = PartitionLog::open(&dir, "t-0", preallocating()).unwrap();
    fill(&mut log, SEGMENT / 2);
    let spare = log.spare_wanted().unwrap().prepare().unwrap();
    log.install_spare(spare).unwrap();
    drop(log); // a crash: no close
    assert_eq!(spares(&dir).len(), 1);

    // Reopened: the leftover is gone. Then segment.bytes grows while a spare of the old
    // size is being made: it is thrown away, not rolled into.
    let mut log = PartitionLog::open(&dir, "t-0", preallocating()).unwrap();
    assert!(spares(&dir).is_empty(), "removed when the log opened");
    fill(&mut log, SEGMENT / 4);
    let request = log.spare_wanted().unwrap();
    log.set_config(LogConfig {
        segment_bytes: SEGMENT * 2,
        ..preallocating()
    });
    log.install_spare(request.prepare().unwrap()).unwrap();
    let trash = log.take_trash();
    assert!(
        !trash.is_empty(),
        "the spare of the old size went to the trash"
    );
    trash.empty().unwrap();
    assert!(spares(&dir).is_empty());
    let next = append_until_roll(&mut log);
    // Only the batch that rolled it is in it.
    assert!(
        allocated(&log_file(&dir, next)) < SEGMENT / 4,
        "rolled into a sparse segment"
    );
}
