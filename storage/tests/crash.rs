//! Crash tests: a log that was not closed is reopened after its active segment was cut at
//! every byte of its last batch, or had bytes flipped; it keeps exactly the valid prefix
//! and appends continue at the right offset.

mod common;

use common::{batch, split, tiny};
use gregor_storage::PartitionLog;
use proptest::prelude::*;
use protocol::ids::{LeaderEpoch, Offset};
use std::fs::OpenOptions;
use std::path::Path;

const E: LeaderEpoch = LeaderEpoch(1);

/// Writes batches of 1..=3 records into a log with 400-byte segments and "crashes" (drops
/// it without `close`). Returns the stored batches in order.
fn crashed_log(path: &Path, batches: usize) -> Vec<(i64, Vec<u8>)> {
    let mut log = PartitionLog::open(path, "t-0", tiny(400)).unwrap();
    for i in 0..batches {
        log.append(
            &batch(1 + (i % 3) as i32, i as u8, 20 + 7 * i, i as i64),
            E,
            0,
        )
        .unwrap();
    }
    let end = log.log_end_offset();
    let records = read_all(&log, end);
    drop(log); // no clean-shutdown marker
    records
}

fn read_all(log: &PartitionLog, end: Offset) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut from = log.log_start_offset();
    while from < end {
        let r = log.read(from, 1 << 20, end).unwrap();
        let batches = split(&r.records);
        let last = batches.last().expect("a batch");
        from = Offset(
            gregor_storage::BatchHeader::parse(&last.1)
                .unwrap()
                .next_offset(),
        );
        out.extend(batches);
    }
    out
}

fn active_segment(path: &Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

fn check_reopened(path: &Path, expected: &[(i64, Vec<u8>)]) {
    let mut log = PartitionLog::open(path, "t-0", tiny(400)).unwrap();
    let end = expected.last().map_or(0, |(b, bytes)| {
        gregor_storage::BatchHeader::parse(bytes)
            .unwrap()
            .next_offset()
            - b
            + b
    });
    assert_eq!(log.log_end_offset(), Offset(end));
    assert_eq!(read_all(&log, Offset(end)), expected);
    let info = log.append(&batch(2, 0xee, 30, 0), E, 0).unwrap();
    assert_eq!(info.first_offset, Offset(end));
    let after = log.read(Offset(end), 1 << 20, Offset(end + 2)).unwrap();
    assert_eq!(split(&after.records).len(), 1);
    log.close().unwrap();
    let log = PartitionLog::open(path, "t-0", tiny(400)).unwrap();
    assert_eq!(log.log_end_offset(), Offset(end + 2));
}

#[test]
fn cut_at_every_byte_of_the_last_batch() {
    let template = tempfile::tempdir().unwrap();
    let stored = crashed_log(template.path(), 7);
    let seg = active_segment(template.path());
    let seg_name = seg.file_name().unwrap().to_owned();
    let seg_base: i64 = seg_name.to_str().unwrap()[..20].parse().unwrap();
    let in_active: Vec<_> = stored.iter().filter(|(b, _)| *b >= seg_base).collect();
    let last_len = in_active.last().unwrap().1.len() as u64;
    let active_len: u64 = in_active.iter().map(|(_, b)| b.len() as u64).sum();
    for cut in (active_len - last_len)..active_len {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(template.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        let f = OpenOptions::new()
            .write(true)
            .open(dir.path().join(&seg_name))
            .unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        check_reopened(dir.path(), &stored[..stored.len() - 1]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Flips one bit anywhere in the log (no recovery point was written, so every segment
    /// is rescanned): the log keeps exactly the batches before the damaged one and drops
    /// the later segments. (Bytes 12..16 of a batch, the partition leader epoch, are not
    /// covered by the CRC in Kafka's format, so a flip there is not detectable.)
    #[test]
    fn flipped_bit_keeps_the_valid_prefix(batches in 3usize..12, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let dir = tempfile::tempdir().unwrap();
        let stored = crashed_log(dir.path(), batches);
        let total: usize = stored.iter().map(|(_, b)| b.len()).sum();
        let pos = at.index(total);
        let mut start = 0;
        let mut damaged = 0;
        for (i, (_, b)) in stored.iter().enumerate() {
            if pos < start + b.len() { damaged = i; break; }
            start += b.len();
        }
        prop_assume!(!(12..16).contains(&(pos - start)));
        // Find the segment file holding batch `damaged` and the byte's position in it.
        let base = stored[damaged].0;
        let seg_base = common::segment_of(dir.path(), base);
        let seg_start: usize = stored.iter().take_while(|(b, _)| *b < seg_base).map(|(_, b)| b.len()).sum();
        let seg = dir.path().join(format!("{seg_base:020}.log"));
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[pos - seg_start] ^= 1 << bit;
        std::fs::write(&seg, &bytes).unwrap();
        check_reopened(dir.path(), &stored[..damaged]);
    }
}
