//! AllocateProducerIds: a broker asks for a block of producer ids (KIP-730).
//!
//! As Kafka's `ProducerIdControlManager`: the broker must be registered with the epoch it
//! sends (STALE_BROKER_EPOCH otherwise), the block is the next
//! [`PRODUCER_ID_BLOCK_SIZE`] ids from the image's `next_producer_id`, and a block whose
//! end would pass `i64::MAX` is refused with UNKNOWN_SERVER_ERROR. The answer is given only
//! once the `ProducerIds` record that advances `next_producer_id` past the block is
//! committed, and the controller task decides one request at a time on the image that
//! includes every earlier record, so no two blocks overlap, across controller failovers
//! and restarts too.

use super::code;
use protocol::control::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, ErrorCode, MetadataBatch,
    MetadataImage, MetadataRecord, PRODUCER_ID_BLOCK_SIZE,
};
use protocol::kafka::ResponseError;

fn refused(error: ErrorCode) -> (MetadataBatch, AllocateProducerIdsResponse) {
    let resp = AllocateProducerIdsResponse {
        error,
        producer_id_start: -1,
        producer_id_len: 0,
    };
    (Vec::new(), resp)
}

/// Decides an AllocateProducerIds request: the record to write and the block to hand out
/// once it commits (no record and an error code when refused).
pub fn allocate(
    image: &MetadataImage,
    req: &AllocateProducerIdsRequest,
) -> (MetadataBatch, AllocateProducerIdsResponse) {
    let registered = image
        .brokers
        .get(&req.broker_id)
        .is_some_and(|b| b.epoch == req.broker_epoch);
    if !registered {
        return refused(code(ResponseError::StaleBrokerEpoch));
    }
    let start = image.next_producer_id;
    let Some(next) = start
        .checked_add(i64::from(PRODUCER_ID_BLOCK_SIZE))
        .filter(|_| start >= 0)
    else {
        return refused(code(ResponseError::UnknownServerError));
    };
    let record = MetadataRecord::ProducerIds {
        broker_id: req.broker_id,
        broker_epoch: req.broker_epoch,
        next_producer_id: next,
    };
    let resp = AllocateProducerIdsResponse {
        error: 0,
        producer_id_start: start,
        producer_id_len: PRODUCER_ID_BLOCK_SIZE,
    };
    (vec![record], resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testutil::*;
    use protocol::ids::{BrokerEpoch, BrokerId};

    fn req(broker: i32, epoch: i64) -> AllocateProducerIdsRequest {
        AllocateProducerIdsRequest {
            broker_id: BrokerId(broker),
            broker_epoch: BrokerEpoch(epoch),
        }
    }

    #[test]
    fn blocks_follow_each_other_without_overlap() {
        let mut img = image_with_brokers(&[1, 2]);
        let mut blocks = Vec::new();
        for i in 0..10 {
            let (batch, resp) = allocate(&img, &req(1 + i % 2, 1));
            assert_eq!(resp.error, 0);
            assert_eq!(resp.producer_id_len, PRODUCER_ID_BLOCK_SIZE);
            assert_eq!(
                batch,
                vec![MetadataRecord::ProducerIds {
                    broker_id: BrokerId(1 + i % 2),
                    broker_epoch: BrokerEpoch(1),
                    next_producer_id: resp.producer_id_start + 1000,
                }]
            );
            blocks.push((
                resp.producer_id_start,
                resp.producer_id_start + i64::from(resp.producer_id_len),
            ));
            apply(&mut img, &batch);
        }
        assert_eq!(blocks[0], (0, 1000));
        for w in blocks.windows(2) {
            assert_eq!(w[0].1, w[1].0, "blocks are contiguous: {blocks:?}");
        }
        assert_eq!(img.next_producer_id, 10_000);
        // Deciding again on the same image (an answer whose write was lost) gives the same
        // block: only a committed record moves the next id.
        assert_eq!(allocate(&img, &req(1, 1)).1.producer_id_start, 10_000);
        assert_eq!(allocate(&img, &req(2, 1)).1.producer_id_start, 10_000);
    }

    #[test]
    fn broker_epoch_must_match_a_registration() {
        let img = image_with_brokers(&[1]);
        let stale = code(ResponseError::StaleBrokerEpoch);
        for r in [req(1, 0), req(1, 2), req(7, 1)] {
            let (batch, resp) = allocate(&img, &r);
            assert!(batch.is_empty());
            assert_eq!(resp.error, stale, "{r:?}");
            assert_eq!((resp.producer_id_start, resp.producer_id_len), (-1, 0));
        }
    }

    #[test]
    fn the_last_block_fits_below_i64_max_and_no_further() {
        let mut img = image_with_brokers(&[1]);
        img.next_producer_id = i64::MAX - 1000;
        let (batch, resp) = allocate(&img, &req(1, 1));
        assert_eq!(resp.error, 0);
        assert_eq!(resp.producer_id_start, i64::MAX - 1000);
        apply(&mut img, &batch);
        assert_eq!(img.next_producer_id, i64::MAX);
        for next in [i64::MAX, i64::MAX - 999] {
            img.next_producer_id = next;
            let (batch, resp) = allocate(&img, &req(1, 1));
            assert!(batch.is_empty());
            assert_eq!(resp.error, code(ResponseError::UnknownServerError));
        }
    }
}
