//! Record batches: build one from user records and read batches out of fetched bytes,
//! through `kafka-protocol`'s encoder and decoder (compression included).

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};
use protocol::records::plain_record;

/// A record to produce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Bytes)>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// A record read from a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Parses a `--compression` value.
pub fn parse_compression(s: &str) -> Result<Compression, String> {
    match s.to_ascii_lowercase().as_str() {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        other => Err(format!(
            "unknown compression '{other}' (none, gzip, snappy, lz4, zstd)"
        )),
    }
}

/// Encodes `records` as one record batch (magic 2) with relative offsets from 0; the
/// broker assigns the real offsets.
pub fn encode_batch(records: &[NewRecord], compression: Compression) -> anyhow::Result<Bytes> {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut headers = kafka_protocol::indexmap::IndexMap::new();
            for (k, v) in &r.headers {
                headers.insert(StrBytes::from_string(k.clone()), Some(v.clone()));
            }
            Record {
                headers,
                ..plain_record(i, r.timestamp_ms, r.key.clone(), r.value.clone())
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )?;
    Ok(buf.freeze())
}

/// The offset after the last complete batch in `data` (its base offset plus its
/// `lastOffsetDelta`, plus one), from the headers alone; `None` if no batch is complete.
pub fn next_offset_after(data: &[u8]) -> Option<i64> {
    const LAST_OFFSET_DELTA: usize = 23; // base offset, length, epoch, magic, crc, attributes
    let mut pos = 0;
    let mut next = None;
    while let Some(header) = data.get(pos..pos + LAST_OFFSET_DELTA + 4) {
        let base = i64::from_be_bytes(header[..8].try_into().ok()?);
        let len = usize::try_from(i32::from_be_bytes(header[8..12].try_into().ok()?)).ok()?;
        if data.len() < pos + 12 + len {
            break;
        }
        let delta = i32::from_be_bytes(header[LAST_OFFSET_DELTA..].try_into().ok()?);
        next = Some(base + i64::from(delta) + 1);
        pos += 12 + len;
    }
    next
}

/// Decodes every complete batch in `data` (a fetch may end with a partial batch, which is
/// skipped). Control batches are skipped too. Records keep their absolute offsets.
pub fn decode_batches(mut data: Bytes) -> anyhow::Result<Vec<ConsumedRecord>> {
    const HEADER: usize = 8 + 4; // base offset, batch length
    let mut out = Vec::new();
    while data.len() >= HEADER {
        let len = (&data[8..12]).get_i32();
        let Ok(len) = usize::try_from(len) else {
            anyhow::bail!("negative record batch length {len}")
        };
        if data.len() < HEADER + len {
            break;
        }
        let mut batch = data.split_to(HEADER + len);
        let set = RecordBatchDecoder::decode(&mut batch)?;
        for r in set.records {
            if r.control {
                continue;
            }
            out.push(ConsumedRecord {
                offset: r.offset,
                timestamp_ms: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<NewRecord> {
        (0..n)
            .map(|i| NewRecord {
                key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value {i}"))),
                headers: vec![("h".into(), Bytes::from_static(b"v"))],
                timestamp_ms: 1_000 + i as i64,
            })
            .collect()
    }

    #[test]
    fn one_batch_round_trips_with_every_compression() {
        for c in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let records = sample(5);
            let bytes = encode_batch(&records, parse_compression(c).unwrap()).unwrap();
            let info = RecordBatchDecoder::decode_batch_info(&mut bytes.clone()).unwrap();
            assert_eq!(info.len(), 1, "{c}: one batch");
            assert_eq!(info[0].base_sequence, -1);
            assert_eq!(info[0].producer_id, -1);
            let back = decode_batches(bytes).unwrap();
            assert_eq!(back.len(), 5);
            for (i, (a, b)) in records.iter().zip(&back).enumerate() {
                assert_eq!(b.offset, i as i64);
                assert_eq!(
                    (&a.key, &a.value, a.timestamp_ms),
                    (&b.key, &b.value, b.timestamp_ms)
                );
                assert_eq!(
                    b.headers,
                    vec![("h".to_string(), Some(Bytes::from_static(b"v")))]
                );
            }
        }
    }

    #[test]
    fn a_partial_trailing_batch_is_skipped() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&encode_batch(&sample(2), Compression::None).unwrap());
        let second = encode_batch(&sample(3), Compression::None).unwrap();
        data.extend_from_slice(&second[..second.len() - 5]);
        assert_eq!(decode_batches(data.freeze()).unwrap().len(), 2);
    }

    #[test]
    fn the_next_offset_comes_from_the_last_complete_batch() {
        assert_eq!(next_offset_after(&[]), None);
        // Batches as a broker sends them: absolute base offsets 10 and 12.
        let mut first = BytesMut::from(&encode_batch(&sample(2), Compression::None).unwrap()[..]);
        first[..8].copy_from_slice(&10i64.to_be_bytes());
        let mut second = BytesMut::from(&encode_batch(&sample(3), Compression::Gzip).unwrap()[..]);
        second[..8].copy_from_slice(&12i64.to_be_bytes());
        assert_eq!(next_offset_after(&first), Some(12));
        let mut both = first.clone();
        both.extend_from_slice(&second);
        assert_eq!(next_offset_after(&both), Some(15));
        // A partial trailing batch does not count; a partial first batch gives nothing.
        assert_eq!(next_offset_after(&both[..both.len() - 1]), Some(12));
        assert_eq!(next_offset_after(&first[..20]), None);
    }

    #[test]
    fn unknown_compression_is_named() {
        assert!(parse_compression("brotli").unwrap_err().contains("brotli"));
    }
}
