//! JoinGroup (key 11), answered by the group coordinator (`gregor-group`).

use super::{deferred, ready, Ctx, Deferred};
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use protocol::kafka::ResponseError;

pub fn error_response(req: &JoinGroupRequest, error: ResponseError) -> JoinGroupResponse {
    group::api::join_group::error_response(&req.member_id, error.code())
}

pub async fn handle(ctx: Ctx, req: JoinGroupRequest) -> Deferred {
    let Some(groups) = ctx.broker.groups.get().cloned() else {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::CoordinatorNotAvailable,
        )));
    };
    let client = group::ClientInfo {
        client_id: ctx.client_id.as_deref().unwrap_or_default().to_string(),
        client_host: ctx.client_host.to_string(),
    };
    deferred(async move {
        let resp = groups.join_group(ctx.version, &client, &req).await;
        ctx.reply(&resp)
    })
}
