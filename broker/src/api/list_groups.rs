//! ListGroups (key 16), answered by the group coordinator (`gregor-group`).

use super::{deferred, ready, Ctx, Deferred};
use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};
use protocol::kafka::ResponseError;

pub fn error_response(_req: &ListGroupsRequest, error: ResponseError) -> ListGroupsResponse {
    let mut r = ListGroupsResponse::default();
    r.error_code = error.code();
    r
}

pub async fn handle(ctx: Ctx, req: ListGroupsRequest) -> Deferred {
    let Some(groups) = ctx.broker.groups.get().cloned() else {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::CoordinatorNotAvailable,
        )));
    };
    deferred(async move {
        let resp = groups.list_groups(ctx.version, &req).await;
        ctx.reply(&resp)
    })
}
