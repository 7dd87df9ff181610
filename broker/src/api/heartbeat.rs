//! Heartbeat (key 12), answered by the group coordinator (`gregor-group`).

use super::{deferred, ready, Ctx, Deferred};
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use protocol::kafka::ResponseError;

pub fn error_response(_req: &HeartbeatRequest, error: ResponseError) -> HeartbeatResponse {
    let mut r = HeartbeatResponse::default();
    r.error_code = error.code();
    r
}

pub async fn handle(ctx: Ctx, req: HeartbeatRequest) -> Deferred {
    let Some(groups) = ctx.broker.groups.get().cloned() else {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::CoordinatorNotAvailable,
        )));
    };
    deferred(async move {
        let resp = groups.heartbeat(ctx.version, &req).await;
        ctx.reply(&resp)
    })
}
