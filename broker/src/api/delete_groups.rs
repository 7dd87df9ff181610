//! DeleteGroups (key 42), answered by the group coordinator (`gregor-group`).

use super::{deferred, ready, Ctx, Deferred};
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use protocol::kafka::ResponseError;

pub fn error_response(req: &DeleteGroupsRequest, error: ResponseError) -> DeleteGroupsResponse {
    let mut r = DeleteGroupsResponse::default();
    for id in &req.groups_names {
        let mut d =
            kafka_protocol::messages::delete_groups_response::DeletableGroupResult::default();
        d.group_id = id.clone();
        d.error_code = error.code();
        r.results.push(d);
    }
    r
}

pub async fn handle(ctx: Ctx, req: DeleteGroupsRequest) -> Deferred {
    let Some(groups) = ctx.broker.groups.get().cloned() else {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::CoordinatorNotAvailable,
        )));
    };
    deferred(async move {
        let resp = groups.delete_groups(ctx.version, &req).await;
        ctx.reply(&resp)
    })
}
