//! OffsetFetch (key 9), answered by the group coordinator (`gregor-group`).

use super::{deferred, ready, Ctx, Deferred};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};
use protocol::kafka::ResponseError;

pub fn error_response(req: &OffsetFetchRequest, error: ResponseError) -> OffsetFetchResponse {
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponsePartition, OffsetFetchResponseTopic,
    };
    let mut r = OffsetFetchResponse::default();
    r.error_code = error.code();
    // v1 has no top-level error code: it goes on every requested partition too.
    for t in req.topics.iter().flatten() {
        let mut rt = OffsetFetchResponseTopic::default();
        rt.name = t.name.clone();
        for &i in &t.partition_indexes {
            let mut rp = OffsetFetchResponsePartition::default();
            rp.partition_index = i;
            rp.committed_offset = -1;
            rp.error_code = error.code();
            rt.partitions.push(rp);
        }
        r.topics.push(rt);
    }
    r
}

pub async fn handle(ctx: Ctx, req: OffsetFetchRequest) -> Deferred {
    let Some(groups) = ctx.broker.groups.get().cloned() else {
        return ready(ctx.reply(&error_response(
            &req,
            ResponseError::CoordinatorNotAvailable,
        )));
    };
    deferred(async move {
        let resp = groups.offset_fetch(ctx.version, &req).await;
        ctx.reply(&resp)
    })
}
