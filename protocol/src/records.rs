//! Plain Kafka records (no producer id, not transactional) for `kafka-protocol`'s batch
//! encoder, as every producer in Gregor (the CLI, the group coordinator, tests) writes them.

use bytes::Bytes;
use kafka_protocol::records::{Record, TimestampType};

/// The `index`-th record of a batch (offsets from 0; the log assigns the real ones), with
/// no headers.
///
/// Its sequence is `index - 1`: `kafka-protocol`'s encoder keeps consecutive records in one
/// batch only while `offset - sequence` stays the same, and this gives the whole batch
/// base sequence -1 (no idempotence), as Kafka expects without a producer id.
pub fn plain_record(
    index: usize,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: index as i64,
        sequence: index as i32 - 1,
        timestamp,
        key,
        value,
        headers: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    };

    #[test]
    fn records_of_one_call_make_one_batch_without_a_producer() {
        let recs: Vec<Record> = (0..5)
            .map(|i| plain_record(i, 100 + i as i64, None, Some(Bytes::from(vec![1; i]))))
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &recs, &options).unwrap();
        let info = RecordBatchDecoder::decode_batch_info(&mut buf.clone().freeze()).unwrap();
        assert_eq!(info.len(), 1);
        assert_eq!((info[0].base_sequence, info[0].producer_id), (-1, -1));
        assert_eq!(info[0].record_count, 5);
    }
}
