//! Kafka record batch (magic 2) headers: parsing, validation and in-place offset patching.
//!
//! ```text
//! 0  baseOffset i64        21 attributes i16        43 producerId i64
//! 8  batchLength i32       23 lastOffsetDelta i32   51 producerEpoch i16
//! 12 partitionLeaderEpoch  27 baseTimestamp i64     53 baseSequence i32
//! 16 magic i8              35 maxTimestamp i64      57 recordCount i32
//! 17 crc u32 (CRC-32C over bytes 21..end)           61 records...
//! ```
//! Records are never decoded: the log stores and serves batches byte for byte.

/// Bytes before `batchLength`'s coverage starts (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the v2 batch header.
pub const HEADER_LEN: usize = 61;
/// The only batch format the log accepts.
pub const MAGIC_V2: i8 = 2;
/// Largest batch accepted at all, whatever the segment size.
pub const MAX_BATCH_LEN: usize = i32::MAX as usize;

const CRC_START: usize = 21;

/// What is wrong with a batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("only {available} bytes left, a batch header needs {HEADER_LEN}")]
    TruncatedHeader { available: usize },
    #[error("batchLength {length} is invalid (header needs {min})", min = HEADER_LEN - LOG_OVERHEAD)]
    InvalidLength { length: i32 },
    #[error("batch of {needed} bytes but only {available} bytes left")]
    TruncatedBatch { needed: usize, available: usize },
    #[error("magic {magic} is not supported (only 2)")]
    UnsupportedMagic { magic: i8 },
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record count {count} must be positive")]
    InvalidRecordCount { count: i32 },
    #[error("lastOffsetDelta {delta} does not match record count {count}")]
    InvalidOffsetDelta { delta: i32, count: i32 },
    #[error("batch base offset {found} where {expected} was expected")]
    UnexpectedOffset { expected: i64, found: i64 },
}

/// The fields of a v2 batch header the log uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// `batchLength`: bytes after the first 12.
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl BatchHeader {
    /// Parses the header at the start of `buf` and checks that the whole batch is present and
    /// its length and magic are sane. Does not check the CRC (see [`BatchHeader::verify_crc`]).
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::TruncatedHeader {
                available: buf.len(),
            });
        }
        let batch_length = i32_at(buf, 8);
        if batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::InvalidLength {
                length: batch_length,
            });
        }
        let magic = buf[16] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        let header = BatchHeader {
            base_offset: i64_at(buf, 0),
            batch_length,
            partition_leader_epoch: i32_at(buf, 12),
            magic,
            crc: u32::from_be_bytes(buf[17..21].try_into().expect("4 bytes")),
            attributes: i16_at(buf, 21),
            last_offset_delta: i32_at(buf, 23),
            base_timestamp: i64_at(buf, 27),
            max_timestamp: i64_at(buf, 35),
            producer_id: i64_at(buf, 43),
            producer_epoch: i16_at(buf, 51),
            base_sequence: i32_at(buf, 53),
            record_count: i32_at(buf, 57),
        };
        if header.total_len() > buf.len() {
            return Err(BatchError::TruncatedBatch {
                needed: header.total_len(),
                available: buf.len(),
            });
        }
        Ok(header)
    }

    /// Parses and fully validates the batch at the start of `buf`: length, magic, CRC-32C,
    /// a positive record count and `lastOffsetDelta == recordCount - 1`.
    pub fn parse_and_validate(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        let header = BatchHeader::parse(buf)?;
        header.verify_crc(&buf[..header.total_len()])?;
        if header.record_count <= 0 {
            return Err(BatchError::InvalidRecordCount {
                count: header.record_count,
            });
        }
        if header.last_offset_delta != header.record_count - 1 {
            return Err(BatchError::InvalidOffsetDelta {
                delta: header.last_offset_delta,
                count: header.record_count,
            });
        }
        Ok(header)
    }

    /// Checks the CRC-32C of `batch` (exactly this batch's bytes).
    pub fn verify_crc(&self, batch: &[u8]) -> Result<(), BatchError> {
        let computed = crc32c::crc32c(&batch[CRC_START..]);
        if computed != self.crc {
            return Err(BatchError::CrcMismatch {
                stored: self.crc,
                computed,
            });
        }
        Ok(())
    }

    /// Bytes of the whole batch, header included.
    pub fn total_len(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }

    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset after the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
}

/// Reads only `baseOffset`, `batchLength` and `lastOffsetDelta` (used when scanning stored,
/// already validated data); `None` when fewer than a header's bytes remain.
pub(crate) fn peek(buf: &[u8]) -> Option<(i64, usize, i32)> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    Some((
        i64_at(buf, 0),
        i32_at(buf, 8).max(0) as usize + LOG_OVERHEAD,
        i32_at(buf, 23),
    ))
}

/// Overwrites `baseOffset` and `partitionLeaderEpoch`, which the CRC does not cover.
pub fn patch(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    let prefix = patched_prefix(batch, base_offset, leader_epoch);
    batch[..PATCHED_PREFIX].copy_from_slice(&prefix);
}

/// Bytes at the start of a batch that [`patched_prefix`] covers: `baseOffset`,
/// `batchLength` and `partitionLeaderEpoch`.
pub const PATCHED_PREFIX: usize = 16;

/// The first [`PATCHED_PREFIX`] bytes of `batch` with `baseOffset` and
/// `partitionLeaderEpoch` replaced (`batchLength` kept).
pub fn patched_prefix(batch: &[u8], base_offset: i64, leader_epoch: i32) -> [u8; PATCHED_PREFIX] {
    let mut p = [0u8; PATCHED_PREFIX];
    p[0..8].copy_from_slice(&base_offset.to_be_bytes());
    p[8..12].copy_from_slice(&batch[8..12]);
    p[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    p
}

/// Builds a valid v2 batch with `record_count` records whose encoded bodies are
/// `payload` split evenly (the record bytes are opaque to the log). For tests and benches.
pub fn build_test_batch(
    base_offset: i64,
    leader_epoch: i32,
    record_count: i32,
    timestamp: i64,
    payload: &[u8],
) -> Vec<u8> {
    let plain = TestProducer {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
    build_producer_test_batch(
        plain,
        base_offset,
        leader_epoch,
        record_count,
        timestamp,
        payload,
    )
}

/// The producer fields of a test batch.
#[derive(Clone, Copy, Debug)]
pub struct TestProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// [`build_test_batch`] from an idempotent producer.
pub fn build_producer_test_batch(
    producer: TestProducer,
    base_offset: i64,
    leader_epoch: i32,
    record_count: i32,
    timestamp: i64,
    payload: &[u8],
) -> Vec<u8> {
    assert!(record_count > 0);
    let mut b = Vec::with_capacity(HEADER_LEN + payload.len());
    b.extend_from_slice(&base_offset.to_be_bytes());
    b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&leader_epoch.to_be_bytes());
    b.push(MAGIC_V2 as u8);
    b.extend_from_slice(&[0; 4]); // crc, filled below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&(record_count - 1).to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes()); // base timestamp
    b.extend_from_slice(&timestamp.to_be_bytes()); // max timestamp
    b.extend_from_slice(&producer.producer_id.to_be_bytes());
    b.extend_from_slice(&producer.producer_epoch.to_be_bytes());
    b.extend_from_slice(&producer.base_sequence.to_be_bytes());
    b.extend_from_slice(&record_count.to_be_bytes());
    b.extend_from_slice(payload);
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batch_validates_and_patches() {
        let mut b = build_test_batch(0, 0, 3, 1000, b"hello world");
        let h = BatchHeader::parse_and_validate(&b).unwrap();
        assert_eq!(
            (h.record_count, h.last_offset_delta, h.max_timestamp),
            (3, 2, 1000)
        );
        patch(&mut b, 42, 7);
        let h = BatchHeader::parse_and_validate(&b).unwrap();
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.last_offset()),
            (42, 7, 44)
        );
        b[30] ^= 1;
        assert!(matches!(
            BatchHeader::parse_and_validate(&b),
            Err(BatchError::CrcMismatch { .. })
        ));
        assert!(matches!(
            BatchHeader::parse(&b[..b.len() - 1]),
            Err(BatchError::TruncatedBatch { .. })
        ));
    }
}
