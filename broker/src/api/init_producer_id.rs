//! InitProducerId (key 22): producer ids for idempotent (non-transactional) producers.
//!
//! kafka-python 3 (like the Java client) enables idempotence by default, so this API must
//! exist for it to produce at all. Ids come from the block the active controller allocated
//! to this broker ([`crate::producer_ids`], KIP-730), so they are unique across the cluster
//! and across restarts. When no id can be had in time (the block is used up and the
//! controller does not answer, or the broker is not registered yet) the answer is
//! COORDINATOR_LOAD_IN_PROGRESS, retriable, as Kafka's broker answers while it waits for a
//! block. Transactional ids are refused.
//!
//! A request with a producer id and epoch (v3+, a producer re-initialising after an error,
//! KIP-360) keeps its id with the epoch bumped; when the bumped epoch would reach
//! `i16::MAX` it gets a new id with epoch 0. (Kafka's coordinator gives an idempotent
//! producer a new id every time; the Java client bumps its epoch locally instead.) One of
//! the two given without the other is INVALID_REQUEST, as in Kafka.

use super::{deferred, ready, Ctx, Deferred};
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use protocol::kafka::ResponseError;
use std::time::Duration;
use tokio::time::Instant;

/// The longest a request waits for a new block of producer ids.
pub const ALLOCATE_TIMEOUT: Duration = Duration::from_secs(5);
/// Kafka's `RecordBatch.NO_PRODUCER_ID` and `NO_PRODUCER_EPOCH`.
const NO_PRODUCER_ID: i64 = -1;
const NO_PRODUCER_EPOCH: i16 = -1;

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

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Ask {
    /// A new producer id, with epoch 0.
    NewId,
    /// The same producer id with this epoch.
    Bump(i64, i16),
    Invalid,
}

fn ask(producer_id: i64, producer_epoch: i16) -> Ask {
    match (producer_id, producer_epoch) {
        (NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => Ask::NewId,
        (id, epoch) if id >= 0 && epoch >= 0 => match epoch.checked_add(1) {
            Some(next) if next < i16::MAX => Ask::Bump(id, next),
            // The epoch is exhausted (Kafka: epoch >= Short.MAX_VALUE - 1): a new id.
            _ => Ask::NewId,
        },
        _ => Ask::Invalid,
    }
}

pub async fn handle(ctx: Ctx, req: InitProducerIdRequest) -> Deferred {
    if req.transactional_id.is_some() {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::TransactionalIdAuthorizationFailed,
        )));
    }
    match ask(req.producer_id.0, req.producer_epoch) {
        Ask::Invalid => ready(ctx.reply(&error_response(&req, ResponseError::InvalidRequest))),
        Ask::Bump(id, epoch) => {
            let mut r = InitProducerIdResponse::default();
            r.producer_id = ProducerId(id);
            r.producer_epoch = epoch;
            ready(ctx.reply(&r))
        }
        // Not registered yet (starting, or no controller reachable): a block cannot come
        // soon, so the client is told to retry at once instead of waiting.
        Ask::NewId if ctx.broker.session.borrow().epoch.is_none() => ready(ctx.reply(
            &error_response(&req, ResponseError::CoordinatorLoadInProgress),
        )),
        Ask::NewId => deferred(async move {
            let broker = &ctx.broker;
            let deadline = Instant::now() + ALLOCATE_TIMEOUT;
            match broker
                .producer_ids
                .next_id(broker.session.subscribe(), deadline)
                .await
            {
                Ok(id) => {
                    let mut r = InitProducerIdResponse::default();
                    r.producer_id = ProducerId(id);
                    r.producer_epoch = 0;
                    ctx.reply(&r)
                }
                Err(e) => {
                    tracing::warn!("InitProducerId: no producer id: {e}");
                    ctx.reply(&error_response(
                        &req,
                        ResponseError::CoordinatorLoadInProgress,
                    ))
                }
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_bumps_and_invalid_pairs() {
        assert_eq!(ask(-1, -1), Ask::NewId);
        assert_eq!(ask(7, 0), Ask::Bump(7, 1));
        assert_eq!(ask(7, 41), Ask::Bump(7, 42));
        assert_eq!(ask(7, i16::MAX - 2), Ask::Bump(7, i16::MAX - 1));
        assert_eq!(ask(7, i16::MAX - 1), Ask::NewId);
        assert_eq!(ask(7, i16::MAX), Ask::NewId);
        assert_eq!(ask(-1, 0), Ask::Invalid);
        assert_eq!(ask(7, -1), Ask::Invalid);
        assert_eq!(ask(-2, -1), Ask::Invalid);
        assert_eq!(ask(7, -5), Ask::Invalid);
    }
}
