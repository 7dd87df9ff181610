//! Per-log settings, named after Kafka's topic configs (`segment.bytes`, `retention.ms`, ...).

/// The settings of one partition log. `Default` gives Kafka's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: a segment rolls before it would grow past this (default 1 GiB).
    pub segment_bytes: u64,
    /// `segment.ms`: a non-empty segment older than this rolls (default 7 days).
    pub segment_ms: Option<u64>,
    /// `index.interval.bytes`: bytes between two sparse index entries (default 4096).
    pub index_interval_bytes: u32,
    /// Index entries per segment; a full index rolls the segment (default 10 MiB / 8).
    pub max_index_entries: u32,
    /// `retention.ms`: segments whose newest timestamp is older are deleted; `None` = forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: oldest segments are deleted while the log is larger; `None` = no cap.
    pub retention_bytes: Option<u64>,
    /// `flush.messages`: fsync after this many records; `None` = leave it to the page cache.
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync when the last flush is older than this; `None` = page cache.
    pub flush_ms: Option<u64>,
    /// How many read-only segment maps (and their indexes) a log keeps (LRU).
    pub max_mapped_segments: usize,
    /// `preallocate`: segment files are allocated on disk before they are written (default
    /// off, as in Kafka; see `spare.rs`).
    pub preallocate: bool,
    /// Kafka's broker setting `producer.id.expiration.ms`: a producer id with no batch
    /// newer than this is forgotten (default 1 day).
    pub producer_id_expiration_ms: i64,
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The largest segment: positions inside a segment are `u32` and Kafka caps it at `i32::MAX`.
pub const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;
/// The smallest segment that can hold one batch header.
pub const MIN_SEGMENT_BYTES: u64 = crate::batch::HEADER_LEN as u64;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: Some(7 * DAY_MS),
            index_interval_bytes: 4096,
            max_index_entries: (10 << 20) / 8,
            retention_ms: Some(7 * DAY_MS as i64),
            retention_bytes: None,
            flush_messages: None,
            flush_ms: None,
            max_mapped_segments: 8,
            preallocate: false,
            producer_id_expiration_ms: DAY_MS as i64,
        }
    }
}

impl LogConfig {
    /// Checks the settings against each other; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return Err(format!(
                "segment.bytes {} is outside {MIN_SEGMENT_BYTES}..={MAX_SEGMENT_BYTES}",
                self.segment_bytes
            ));
        }
        if self.max_index_entries == 0 {
            return Err("max index entries must be at least 1".into());
        }
        if self.max_mapped_segments == 0 {
            return Err("max mapped segments must be at least 1".into());
        }
        if self.segment_ms == Some(0) {
            return Err("segment.ms must be positive".into());
        }
        Ok(())
    }
}
