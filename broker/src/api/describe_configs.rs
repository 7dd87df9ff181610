//! DescribeConfigs (key 32): topic configs from the metadata image, with Kafka's defaults
//! for every key not set; broker resources list the broker's static settings.

use super::{deferred, str_bytes, Ctx, Deferred};
use crate::partition::log_config::TOPIC_CONFIG_DEFAULTS;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use protocol::kafka::{config_source, resource_type, ResponseError};

fn result(kind: i8, name: &StrBytes, code: i16, message: Option<&str>) -> DescribeConfigsResult {
    let mut r = DescribeConfigsResult::default();
    r.resource_type = kind;
    r.resource_name = name.clone();
    r.error_code = code;
    r.error_message = message.map(str_bytes);
    r
}

fn entry(name: &str, value: &str, source: i8, read_only: bool) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = str_bytes(name);
    c.value = Some(str_bytes(value));
    c.read_only = read_only;
    c.config_source = source;
    c
}

pub fn error_response(
    req: &DescribeConfigsRequest,
    error: ResponseError,
) -> DescribeConfigsResponse {
    let mut r = DescribeConfigsResponse::default();
    r.results = req
        .resources
        .iter()
        .map(|x| result(x.resource_type, &x.resource_name, error.code(), None))
        .collect();
    r
}

pub async fn handle(ctx: Ctx, req: DescribeConfigsRequest) -> Deferred {
    deferred(async move {
        let image = ctx.broker.image();
        let mut resp = DescribeConfigsResponse::default();
        for res in &req.resources {
            let wanted = |k: &str| {
                res.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|x| &**x == k))
            };
            let r = match res.resource_type {
                resource_type::TOPIC => match image.topic_by_name(&res.resource_name) {
                    None => result(
                        res.resource_type,
                        &res.resource_name,
                        ResponseError::UnknownTopicOrPartition.code(),
                        None,
                    ),
                    Some(topic) => {
                        let mut r = result(res.resource_type, &res.resource_name, 0, None);
                        for (k, default) in TOPIC_CONFIG_DEFAULTS {
                            if !wanted(k) {
                                continue;
                            }
                            r.configs.push(match topic.configs.get(*k) {
                                Some(v) => entry(k, v, config_source::DYNAMIC_TOPIC_CONFIG, false),
                                None => entry(k, default, config_source::DEFAULT_CONFIG, false),
                            });
                        }
                        for (k, v) in &topic.configs {
                            if wanted(k) && !TOPIC_CONFIG_DEFAULTS.iter().any(|(d, _)| d == k) {
                                r.configs.push(entry(
                                    k,
                                    v,
                                    config_source::DYNAMIC_TOPIC_CONFIG,
                                    false,
                                ));
                            }
                        }
                        r
                    }
                },
                resource_type::BROKER => {
                    let c = &ctx.broker.config;
                    let mut r = result(res.resource_type, &res.resource_name, 0, None);
                    let statics = [
                        ("node.id", c.node_id.to_string()),
                        ("broker.id", c.node_id.to_string()),
                        (
                            "auto.create.topics.enable",
                            c.auto_create_topics.to_string(),
                        ),
                        (
                            "replica.lag.time.max.ms",
                            c.replica_lag_time_max.as_millis().to_string(),
                        ),
                        ("log.dirs", c.data_dir.display().to_string()),
                        ("socket.request.max.bytes", c.max_frame_bytes.to_string()),
                    ];
                    for (k, v) in statics {
                        if wanted(k) {
                            r.configs
                                .push(entry(k, &v, config_source::STATIC_BROKER_CONFIG, true));
                        }
                    }
                    r
                }
                other => result(
                    other,
                    &res.resource_name,
                    ResponseError::InvalidRequest.code(),
                    Some("unsupported resource type"),
                ),
            };
            resp.results.push(r);
        }
        ctx.reply(&resp)
    })
}
