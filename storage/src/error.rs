//! The log's typed errors. Each names the partition (the log's `name`), and the offset or file
//! involved, and maps to one Kafka error code at the broker.

use protocol::ids::Offset;
use std::path::PathBuf;

use crate::batch::BatchError;
use crate::producers::SequenceError;

/// Everything a [`crate::PartitionLog`] operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The requested offset is outside `[log_start, log_end]` (OFFSET_OUT_OF_RANGE).
    #[error("{partition}: offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        partition: String,
        requested: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    /// A batch handed to `append` is malformed (CORRUPT_MESSAGE).
    #[error("{partition}: invalid record batch at byte {position} of the request: {source}")]
    InvalidBatch {
        partition: String,
        position: usize,
        #[source]
        source: BatchError,
    },
    /// A single batch does not fit in a segment (RECORD_BATCH_TOO_LARGE / MESSAGE_TOO_LARGE).
    #[error(
        "{partition}: record batch of {size} bytes is larger than segment.bytes {segment_bytes}"
    )]
    BatchTooLarge {
        partition: String,
        size: usize,
        segment_bytes: u64,
    },
    /// A follower append starts after the log end: offsets would be missing.
    #[error("{partition}: follower append starts at {first_offset} but the log ends at {log_end}")]
    FollowerGap {
        partition: String,
        first_offset: Offset,
        log_end: Offset,
    },
    /// A follower append starts before the log end, or its batches are not contiguous.
    #[error("{partition}: follower append at {first_offset} overlaps or breaks the log ending at {log_end}")]
    FollowerOverlap {
        partition: String,
        first_offset: Offset,
        log_end: Offset,
    },
    /// Stored data failed validation when read back (a flipped byte on disk, for instance).
    #[error("{partition}: corrupt data in {} at position {position}: {source}", file.display())]
    Corrupt {
        partition: String,
        file: PathBuf,
        position: u64,
        #[source]
        source: BatchError,
    },
    /// A truncation or deletion target the log cannot honour.
    #[error("{partition}: invalid offset {offset}: {reason}")]
    InvalidOffset {
        partition: String,
        offset: Offset,
        reason: &'static str,
    },
    /// An idempotent producer's batch is out of sequence or from a fenced epoch
    /// (OUT_OF_ORDER_SEQUENCE_NUMBER / INVALID_PRODUCER_EPOCH).
    #[error("{partition}: {source}")]
    Sequence {
        partition: String,
        #[source]
        source: SequenceError,
    },
    /// A prepared append is outstanding: finish it before changing the active segment.
    #[error("{partition}: an append is in progress")]
    AppendInProgress { partition: String },
    /// The configuration does not make sense.
    #[error("{partition}: invalid log config: {reason}")]
    InvalidConfig { partition: String, reason: String },
    /// A file system call failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { path, source }
    }
}
