//! OffsetCommit (key 8), answered by the group coordinator (`gregor-group`).

use super::{deferred, ready, Ctx, Deferred};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use protocol::kafka::ResponseError;

pub fn error_response(req: &OffsetCommitRequest, error: ResponseError) -> OffsetCommitResponse {
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    let mut r = OffsetCommitResponse::default();
    for t in &req.topics {
        let mut rt = OffsetCommitResponseTopic::default();
        rt.name = t.name.clone();
        for p in &t.partitions {
            let mut rp = OffsetCommitResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = error.code();
            rt.partitions.push(rp);
        }
        r.topics.push(rt);
    }
    r
}

pub async fn handle(ctx: Ctx, req: OffsetCommitRequest) -> Deferred {
    let Some(groups) = ctx.broker.groups.get().cloned() else {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::CoordinatorNotAvailable,
        )));
    };
    deferred(async move {
        let resp = groups.offset_commit(ctx.version, &req).await;
        ctx.reply(&resp)
    })
}
