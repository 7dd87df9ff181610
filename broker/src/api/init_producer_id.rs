//! InitProducerId (key 22): producer ids for idempotent (non-transactional) producers.
//!
//! kafka-python 3 (like the Java client) enables idempotence by default, so this API must
//! exist for it to produce at all. Ids are unique without coordination: the broker id, the
//! process start time and a counter. Gregor does not yet deduplicate by (producer id,
//! epoch, sequence), so a retried batch may be stored twice, as without idempotence.
//! Transactional ids are refused.

use super::{ready, Ctx, Deferred};
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use protocol::kafka::ResponseError;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

pub fn error_response(
    _req: &InitProducerIdRequest,
    error: ResponseError,
) -> InitProducerIdResponse {
    let mut r = InitProducerIdResponse::default();
    r.error_code = error.code();
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    r
}

fn next_producer_id(broker_id: i32) -> i64 {
    static NEXT: OnceLock<AtomicI64> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let start_s = crate::broker::now_ms() / 1000;
        // 15 bits of broker id, 32 bits of start time, 16 bits of counter: positive i64.
        AtomicI64::new((i64::from(broker_id) & 0x7FFF) << 48 | (start_s & 0xFFFF_FFFF) << 16)
    });
    next.fetch_add(1, Ordering::Relaxed)
}

pub async fn handle(ctx: Ctx, req: InitProducerIdRequest) -> Deferred {
    if req.transactional_id.is_some() {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::TransactionalIdAuthorizationFailed,
        )));
    }
    let mut r = InitProducerIdResponse::default();
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 {
        // A producer re-initialising after an error keeps its id with a bumped epoch.
        r.producer_id = req.producer_id;
        r.producer_epoch = req.producer_epoch.saturating_add(1);
    } else {
        r.producer_id = ProducerId(next_producer_id(ctx.broker.config.node_id.0));
        r.producer_epoch = 0;
    }
    ready(ctx.reply(&r))
}
