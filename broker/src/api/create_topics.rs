//! CreateTopics (key 19), forwarded to the active controller.

use super::{deferred, str_bytes, Ctx, Deferred};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use protocol::control::{NewTopic, TopicConfigs, TopicResult};
use protocol::ids::BrokerId;
use protocol::kafka::ResponseError;

fn result(
    name: &kafka_protocol::messages::TopicName,
    code: i16,
    message: Option<String>,
) -> CreatableTopicResult {
    let mut r = CreatableTopicResult::default();
    r.name = name.clone();
    r.error_code = code;
    r.error_message = message.map(|m| str_bytes(&m));
    r.num_partitions = -1;
    r.replication_factor = -1;
    r
}

pub fn error_response(req: &CreateTopicsRequest, error: ResponseError) -> CreateTopicsResponse {
    let mut r = CreateTopicsResponse::default();
    r.topics = req
        .topics
        .iter()
        .map(|t| result(&t.name, error.code(), None))
        .collect();
    r
}

pub async fn handle(ctx: Ctx, req: CreateTopicsRequest) -> Deferred {
    deferred(async move {
        let topics: Vec<NewTopic> = req
            .topics
            .iter()
            .map(|t| {
                let mut assignments: Vec<_> = t.assignments.iter().collect();
                assignments.sort_by_key(|a| a.partition_index);
                let assignments = (!assignments.is_empty()).then(|| {
                    assignments
                        .iter()
                        .map(|a| a.broker_ids.iter().map(|b| BrokerId(b.0)).collect())
                        .collect()
                });
                let configs: TopicConfigs = t
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                NewTopic {
                    name: t.name.0.to_string(),
                    num_partitions: t.num_partitions,
                    replication_factor: t.replication_factor,
                    assignments,
                    configs,
                }
            })
            .collect();
        let mut resp = CreateTopicsResponse::default();
        match super::admin::create_topics(&ctx.broker, topics, req.validate_only).await {
            Ok(results) => {
                for t in &req.topics {
                    let found: Option<&TopicResult> = results.iter().find(|r| r.name == *t.name.0);
                    let r = match found {
                        Some(tr) => {
                            let mut r = result(&t.name, tr.error, tr.message.clone());
                            if ctx.version >= 7 {
                                r.topic_id = tr.topic_id.map(|i| i.0).unwrap_or_default();
                            }
                            if ctx.version >= 5 {
                                r.num_partitions = tr.num_partitions;
                                r.replication_factor = tr.replication_factor;
                            }
                            r
                        }
                        None => result(
                            &t.name,
                            ResponseError::UnknownServerError.code(),
                            Some("no result".into()),
                        ),
                    };
                    resp.topics.push(r);
                }
            }
            Err(e) => {
                for t in &req.topics {
                    resp.topics
                        .push(result(&t.name, e.code(), Some(e.to_string())));
                }
            }
        }
        ctx.reply(&resp)
    })
}
