//! IncrementalAlterConfigs (key 44): set or delete individual topic configs; forwarded to
//! the active controller. APPEND and SUBTRACT (list configs) are refused.

use super::{deferred, str_bytes, Ctx, Deferred};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use protocol::control::{ConfigOp, TopicConfigChange};
use protocol::kafka::{config_op, resource_type, ResponseError};

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

pub fn error_response(
    req: &IncrementalAlterConfigsRequest,
    error: ResponseError,
) -> IncrementalAlterConfigsResponse {
    let mut r = IncrementalAlterConfigsResponse::default();
    r.responses = req
        .resources
        .iter()
        .map(|x| result(x.resource_type, &x.resource_name, error.code(), None))
        .collect();
    r
}

/// The ops of one resource, or why they cannot be applied.
fn ops(
    res: &kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
) -> Result<Vec<ConfigOp>, String> {
    res.configs
        .iter()
        .map(|c| match (c.config_operation, &c.value) {
            (config_op::SET, Some(v)) => Ok(ConfigOp::Set {
                key: c.name.to_string(),
                value: v.to_string(),
            }),
            (config_op::SET, None) => Err(format!("{}: SET needs a value", c.name)),
            (config_op::DELETE, _) => Ok(ConfigOp::Delete {
                key: c.name.to_string(),
            }),
            (op, _) => Err(format!("{}: operation {op} is not supported", c.name)),
        })
        .collect()
}

pub async fn handle(ctx: Ctx, req: IncrementalAlterConfigsRequest) -> Deferred {
    deferred(async move {
        let mut resp = IncrementalAlterConfigsResponse::default();
        let mut changes = Vec::new();
        let mut early: Vec<Option<AlterConfigsResourceResponse>> = Vec::new();
        for res in &req.resources {
            if res.resource_type != resource_type::TOPIC {
                early.push(Some(result(
                    res.resource_type,
                    &res.resource_name,
                    ResponseError::InvalidRequest.code(),
                    Some("only topic configs can be altered".into()),
                )));
                continue;
            }
            match ops(res) {
                Ok(ops) => {
                    changes.push(TopicConfigChange {
                        topic: res.resource_name.to_string(),
                        replace_all: false,
                        ops,
                    });
                    early.push(None);
                }
                Err(m) => early.push(Some(result(
                    res.resource_type,
                    &res.resource_name,
                    ResponseError::InvalidRequest.code(),
                    Some(m),
                ))),
            }
        }
        let outcome = if changes.is_empty() {
            Ok(Vec::new())
        } else {
            super::admin::alter_configs(&ctx.broker, changes, req.validate_only).await
        };
        for (res, early) in req.resources.iter().zip(early) {
            resp.responses.push(match early {
                Some(r) => r,
                None => {
                    let (code, message) = super::admin::topic_outcome(&outcome, &res.resource_name);
                    result(res.resource_type, &res.resource_name, code, message)
                }
            });
        }
        ctx.reply(&resp)
    })
}
