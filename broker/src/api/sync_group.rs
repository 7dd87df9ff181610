//! SyncGroup (key 14), answered by the group coordinator (`gregor-group`).

use super::{deferred, ready, Ctx, Deferred};
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use protocol::kafka::ResponseError;

pub fn error_response(_req: &SyncGroupRequest, error: ResponseError) -> SyncGroupResponse {
    group::api::sync_group::error_response(error.code())
}

pub async fn handle(ctx: Ctx, req: SyncGroupRequest) -> Deferred {
    let Some(groups) = ctx.broker.groups.get().cloned() else {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::CoordinatorNotAvailable,
        )));
    };
    deferred(async move {
        let resp = groups.sync_group(ctx.version, &req).await;
        ctx.reply(&resp)
    })
}
