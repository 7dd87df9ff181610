//! DescribeGroups (key 15), answered by the group coordinator (`gregor-group`).

use super::{deferred, ready, Ctx, Deferred};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use protocol::kafka::ResponseError;

pub fn error_response(req: &DescribeGroupsRequest, error: ResponseError) -> DescribeGroupsResponse {
    let mut r = DescribeGroupsResponse::default();
    for id in &req.groups {
        let mut d = kafka_protocol::messages::describe_groups_response::DescribedGroup::default();
        d.group_id = id.clone();
        d.error_code = error.code();
        r.groups.push(d);
    }
    r
}

pub async fn handle(ctx: Ctx, req: DescribeGroupsRequest) -> Deferred {
    let Some(groups) = ctx.broker.groups.get().cloned() else {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::CoordinatorNotAvailable,
        )));
    };
    deferred(async move {
        let resp = groups.describe_groups(ctx.version, &req).await;
        ctx.reply(&resp)
    })
}
