//! LeaveGroup (key 13), answered by the group coordinator (`gregor-group`).

use super::{deferred, ready, Ctx, Deferred};
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use protocol::kafka::ResponseError;

pub fn error_response(_req: &LeaveGroupRequest, error: ResponseError) -> LeaveGroupResponse {
    let mut r = LeaveGroupResponse::default();
    r.error_code = error.code();
    r
}

pub async fn handle(ctx: Ctx, req: LeaveGroupRequest) -> Deferred {
    let Some(groups) = ctx.broker.groups.get().cloned() else {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::CoordinatorNotAvailable,
        )));
    };
    deferred(async move {
        let resp = groups.leave_group(ctx.version, &req).await;
        ctx.reply(&resp)
    })
}
