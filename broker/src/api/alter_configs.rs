//! AlterConfigs (key 33): the given topic configs replace all of the topic's configs;
//! forwarded to the active controller. Broker configs are static in Gregor.

use super::{deferred, str_bytes, Ctx, Deferred};
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use protocol::control::{ConfigOp, TopicConfigChange};
use protocol::kafka::{resource_type, ResponseError};

fn result(
    kind: i8,
    name: &StrBytes,
    code: i16,
    message: Option<String>,
) -> AlterConfigsResourceResponse {
    let mut r = AlterConfigsResourceResponse::default();
    r.resource_type = kind;
    r.resource_name = name.clone();
    r.error_code = code;
    r.error_message = message.map(|m| str_bytes(&m));
    r
}

pub fn error_response(req: &AlterConfigsRequest, error: ResponseError) -> AlterConfigsResponse {
    let mut r = AlterConfigsResponse::default();
    r.responses = req
        .resources
        .iter()
        .map(|x| result(x.resource_type, &x.resource_name, error.code(), None))
        .collect();
    r
}

pub async fn handle(ctx: Ctx, req: AlterConfigsRequest) -> Deferred {
    deferred(async move {
        let changes: Vec<TopicConfigChange> = req
            .resources
            .iter()
            .filter(|r| r.resource_type == resource_type::TOPIC)
            .map(|r| TopicConfigChange {
                topic: r.resource_name.to_string(),
                replace_all: true,
                ops: r
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value.as_ref().map(|v| ConfigOp::Set {
                            key: c.name.to_string(),
                            value: v.to_string(),
                        })
                    })
                    .collect(),
            })
            .collect();
        let outcome = if changes.is_empty() {
            Ok(Vec::new())
        } else {
            super::admin::alter_configs(&ctx.broker, changes, req.validate_only).await
        };
        let mut resp = AlterConfigsResponse::default();
        for res in &req.resources {
            resp.responses
                .push(if res.resource_type != resource_type::TOPIC {
                    result(
                        res.resource_type,
                        &res.resource_name,
                        ResponseError::InvalidRequest.code(),
                        Some("only topic configs can be altered".into()),
                    )
                } else {
                    let (code, message) = super::admin::topic_outcome(&outcome, &res.resource_name);
                    result(res.resource_type, &res.resource_name, code, message)
                });
        }
        ctx.reply(&resp)
    })
}
