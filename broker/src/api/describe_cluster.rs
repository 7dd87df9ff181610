//! DescribeCluster (key 60): the live brokers on the request's listener and the cluster id.

use super::{deferred, kbroker, metadata::live_brokers, str_bytes, Ctx, Deferred};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use protocol::kafka::ResponseError;

pub fn error_response(
    _req: &DescribeClusterRequest,
    error: ResponseError,
) -> DescribeClusterResponse {
    let mut r = DescribeClusterResponse::default();
    r.error_code = error.code();
    r
}

pub async fn handle(ctx: Ctx, req: DescribeClusterRequest) -> Deferred {
    deferred(async move {
        let image = ctx.broker.image();
        let mut r = DescribeClusterResponse::default();
        if req.endpoint_type > 1 {
            // Controller endpoints (type 2) are not exposed over the Kafka protocol.
            r.error_code = ResponseError::UnsupportedEndpointType.code();
            return ctx.reply(&r);
        }
        if ctx.version >= 1 {
            r.endpoint_type = 1;
        }
        r.cluster_id = str_bytes(&image.cluster_id);
        r.controller_id = kbroker(ctx.broker.config.node_id);
        for (id, host, port, rack) in live_brokers(&image, &ctx.listener) {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = kbroker(id);
            b.host = str_bytes(host);
            b.port = port as i32;
            b.rack = rack.map(str_bytes);
            r.brokers.push(b);
        }
        ctx.reply(&r)
    })
}
