//! FindCoordinator (key 10): the coordinator of a group is the leader of its
//! `__consumer_offsets` partition, named by the listener the request came in on. The first
//! request creates `__consumer_offsets` (forwarded to the controller); until the topic
//! and its leader exist the answer is COORDINATOR_NOT_AVAILABLE (retriable).

use super::{deferred, ready, Ctx, Deferred};
use crate::group_log::{ensure_offsets_topic, OFFSETS_TOPIC};
use group::CoordinatorAddress;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use protocol::control::MetadataImage;
use protocol::ids::PartitionIndex;
use protocol::kafka::ResponseError;

pub fn error_response(
    req: &FindCoordinatorRequest,
    error: ResponseError,
) -> FindCoordinatorResponse {
    let mut r = FindCoordinatorResponse::default();
    r.error_code = error.code();
    r.node_id = BrokerId(-1);
    r.port = -1;
    for key in &req.coordinator_keys {
        let mut c = Coordinator::default();
        c.key = key.clone();
        c.error_code = error.code();
        c.node_id = BrokerId(-1);
        c.port = -1;
        r.coordinators.push(c);
    }
    r
}

/// The unfenced leader of `__consumer_offsets-partition`, with its `listener` address.
fn leader_of(image: &MetadataImage, listener: &str, partition: i32) -> Option<CoordinatorAddress> {
    let topic = image.topic_by_name(OFFSETS_TOPIC)?;
    let leader = topic.partitions.get(&PartitionIndex(partition))?.leader?;
    let b = image.brokers.get(&leader).filter(|b| !b.fenced)?;
    let e = b.endpoint(listener)?;
    Some(CoordinatorAddress {
        node_id: leader.0,
        host: e.host.clone(),
        port: i32::from(e.port),
    })
}

pub async fn handle(ctx: Ctx, req: FindCoordinatorRequest) -> Deferred {
    let Some(groups) = ctx.broker.groups.get().cloned() else {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::CoordinatorNotAvailable,
        )));
    };
    deferred(async move {
        if ctx.broker.image().topic_by_name(OFFSETS_TOPIC).is_none() && req.key_type == 0 {
            ensure_offsets_topic(&ctx.broker, groups.offsets_partitions()).await;
        }
        let image = ctx.broker.image();
        let resp =
            groups.find_coordinator(ctx.version, &req, &|p| leader_of(&image, &ctx.listener, p));
        ctx.reply(&resp)
    })
}
