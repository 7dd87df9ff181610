//! Batches encoded by the `kafka-protocol` crate (as real clients send them) go through the
//! log byte for byte: offsets and leader epoch are patched, the records decode unchanged.

use bytes::{Bytes, BytesMut};
use gregor_storage::PartitionLog;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};
use protocol::ids::{LeaderEpoch, Offset};
use protocol::records::plain_record;

fn records(n: usize, ts: i64) -> Vec<Record> {
    (0..n)
        .map(|i| {
            plain_record(
                i,
                ts + i as i64,
                Some(Bytes::from(format!("k{i}"))),
                Some(Bytes::from(vec![i as u8; 100])),
            )
        })
        .collect()
}

fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
    buf.to_vec()
}

#[test]
fn client_batches_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), "t-0", Default::default()).unwrap();
    let first = encode(&records(3, 1000), Compression::None);
    let second = encode(&records(5, 2000), Compression::Gzip);
    log.append(&first, LeaderEpoch(4), 0).unwrap();
    let info = log.append(&second, LeaderEpoch(4), 0).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.max_timestamp),
        (Offset(3), Offset(7), 2004)
    );
    let read = log.read(Offset(0), 1 << 20, Offset(8)).unwrap();
    let mut bytes = read.records.clone();
    let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
    let decoded: Vec<&Record> = sets.iter().flat_map(|s| &s.records).collect();
    assert_eq!(decoded.len(), 8);
    for (i, r) in decoded.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.partition_leader_epoch, 4);
    }
    // Record 4 is the second record of the gzip batch: it decompresses unchanged.
    assert_eq!(decoded[4].value, Some(Bytes::from(vec![1u8; 100])));
}
