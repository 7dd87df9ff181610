//! `__consumer_offsets` records as Kafka v2 record batches, for [`OffsetsLog`]
//! implementations over a real partition log: one batch per append, and every
//! `(key, value)` back out of stored batches.
//!
//! [`OffsetsLog`]: crate::log::OffsetsLog

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};
use protocol::records::plain_record;
use thiserror::Error;

use crate::log::OffsetsRecord;

/// Record batches that could not be built or read.
#[derive(Debug, Error)]
pub enum RecordsError {
    #[error("encoding a __consumer_offsets batch of {records} records failed: {reason}")]
    Encode { records: usize, reason: String },
    #[error("decoding __consumer_offsets batches failed: {reason}")]
    Decode { reason: String },
}

/// Encodes `records` as one uncompressed v2 batch (offsets from 0; the log assigns the
/// real ones).
pub fn encode_batch(records: &[OffsetsRecord], now_ms: i64) -> Result<BytesMut, RecordsError> {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| plain_record(i, now_ms, Some(k.clone()), v.clone()))
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &recs, &options).map_err(|e| RecordsError::Encode {
        records: records.len(),
        reason: e.to_string(),
    })?;
    Ok(buf)
}

/// The records of some stored batches.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Every keyed, non-control record, in log order.
    pub records: Vec<OffsetsRecord>,
    /// The offset after the last record seen (where the next read starts), if any.
    pub next_offset: Option<i64>,
}

/// Decodes the concatenated batches in `buf` (as a log read returns them).
pub fn decode_batches(mut buf: Bytes) -> Result<Decoded, RecordsError> {
    let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(|e| RecordsError::Decode {
        reason: e.to_string(),
    })?;
    let mut out = Decoded::default();
    for r in sets.into_iter().flat_map(|s| s.records) {
        out.next_offset = Some(out.next_offset.unwrap_or(i64::MIN).max(r.offset + 1));
        if r.control {
            continue;
        }
        if let Some(k) = r.key {
            out.records.push((k, r.value));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_tombstone() {
        let recs = vec![
            (Bytes::from_static(b"k1"), Some(Bytes::from_static(b"v1"))),
            (Bytes::from_static(b"k2"), None),
        ];
        let mut a = encode_batch(&recs, 5).unwrap();
        a.extend_from_slice(&encode_batch(&recs[..1], 6).unwrap());
        let out = decode_batches(a.freeze()).unwrap();
        assert_eq!(out.records.len(), 3);
        assert_eq!(out.records[..2], recs[..]);
        // Both batches start at offset 0 here: the log assigns real offsets.
        assert_eq!(out.next_offset, Some(2));
    }
}
