//! CreatePartitions (key 37), forwarded to the active controller.

use super::{deferred, str_bytes, Ctx, Deferred};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, TopicName};
use protocol::control::PartitionsIncrease;
use protocol::ids::BrokerId;
use protocol::kafka::ResponseError;

fn result(name: &TopicName, code: i16, message: Option<String>) -> CreatePartitionsTopicResult {
    let mut r = CreatePartitionsTopicResult::default();
    r.name = name.clone();
    r.error_code = code;
    r.error_message = message.map(|m| str_bytes(&m));
    r
}

pub fn error_response(
    req: &CreatePartitionsRequest,
    error: ResponseError,
) -> CreatePartitionsResponse {
    let mut r = CreatePartitionsResponse::default();
    r.results = req
        .topics
        .iter()
        .map(|t| result(&t.name, error.code(), None))
        .collect();
    r
}

pub async fn handle(ctx: Ctx, req: CreatePartitionsRequest) -> Deferred {
    deferred(async move {
        let topics = req
            .topics
            .iter()
            .map(|t| PartitionsIncrease {
                name: t.name.0.to_string(),
                count: t.count,
                assignments: t.assignments.as_ref().filter(|a| !a.is_empty()).map(|a| {
                    a.iter()
                        .map(|x| x.broker_ids.iter().map(|b| BrokerId(b.0)).collect())
                        .collect()
                }),
            })
            .collect();
        let mut resp = CreatePartitionsResponse::default();
        match super::admin::create_partitions(&ctx.broker, topics, req.validate_only).await {
            Ok(results) => {
                for t in &req.topics {
                    resp.results
                        .push(match results.iter().find(|r| r.name == *t.name.0) {
                            Some(r) => result(&t.name, r.error, r.message.clone()),
                            None => result(
                                &t.name,
                                ResponseError::UnknownServerError.code(),
                                Some("no result".into()),
                            ),
                        });
                }
            }
            Err(e) => {
                for t in &req.topics {
                    resp.results
                        .push(result(&t.name, e.code(), Some(e.to_string())));
                }
            }
        }
        ctx.reply(&resp)
    })
}
