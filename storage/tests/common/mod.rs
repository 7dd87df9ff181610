//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use gregor_storage::batch::build_test_batch;
use gregor_storage::LogConfig;
use std::path::Path;

/// A config with tiny segments and indexes, so a few batches roll and index.
pub fn tiny(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        segment_ms: None,
        index_interval_bytes: 64,
        retention_ms: None,
        max_mapped_segments: 2,
        ..LogConfig::default()
    }
}

/// A valid batch of `count` records with a payload derived from `tag`, offsets to be
/// assigned by the log.
pub fn batch(count: i32, tag: u8, payload_len: usize, timestamp: i64) -> Vec<u8> {
    build_test_batch(0, 0, count, timestamp, &vec![tag; payload_len])
}

/// The file names in `dir`, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Splits concatenated batches into (base offset, bytes) pairs.
pub fn split(mut bytes: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let h = gregor_storage::BatchHeader::parse_and_validate(bytes).expect("valid batch");
        out.push((h.base_offset, bytes[..h.total_len()].to_vec()));
        bytes = &bytes[h.total_len()..];
    }
    out
}

/// The base offset of the segment file in `dir` that holds `offset`.
pub fn segment_of(dir: &Path, offset: i64) -> i64 {
    files(dir)
        .iter()
        .filter_map(|f| f.strip_suffix(".log")?.parse::<i64>().ok())
        .filter(|&b| b <= offset)
        .max()
        .expect("a segment")
}
