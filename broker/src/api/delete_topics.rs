//! DeleteTopics (key 20), by name or (v6+) by id, forwarded to the active controller.

use super::{deferred, str_bytes, topic_name, Ctx, Deferred};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use protocol::ids::TopicId;
use protocol::kafka::ResponseError;

/// The topics of a request as (name, id) pairs, whichever form the version uses.
fn requested(req: &DeleteTopicsRequest, version: i16) -> Vec<(Option<String>, uuid::Uuid)> {
    if version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    }
}

fn result(
    name: Option<&str>,
    id: uuid::Uuid,
    version: i16,
    code: i16,
    message: Option<String>,
) -> DeletableTopicResult {
    let mut r = DeletableTopicResult::default();
    r.name = name.map(topic_name);
    if version >= 6 {
        r.topic_id = id;
    }
    r.error_code = code;
    if version >= 5 {
        r.error_message = message.map(|m| str_bytes(&m));
    }
    r
}

pub fn error_response(req: &DeleteTopicsRequest, error: ResponseError) -> DeleteTopicsResponse {
    let mut r = DeleteTopicsResponse::default();
    // The response layout follows the version; the request was decoded at that version.
    for n in &req.topic_names {
        r.responses
            .push(result(Some(&n.0), uuid::Uuid::nil(), 0, error.code(), None));
    }
    for t in &req.topics {
        r.responses.push(result(
            t.name.as_ref().map(|n| &*n.0),
            t.topic_id,
            6,
            error.code(),
            None,
        ));
    }
    r
}

pub async fn handle(ctx: Ctx, req: DeleteTopicsRequest) -> Deferred {
    deferred(async move {
        let wanted = requested(&req, ctx.version);
        let names: Vec<String> = wanted.iter().filter_map(|(n, _)| n.clone()).collect();
        let ids: Vec<TopicId> = wanted
            .iter()
            .filter(|(n, id)| n.is_none() && !id.is_nil())
            .map(|(_, id)| TopicId(*id))
            .collect();
        let mut resp = DeleteTopicsResponse::default();
        match super::admin::delete_topics(&ctx.broker, names, ids).await {
            Ok(results) => {
                for (name, id) in &wanted {
                    let found = results.iter().find(|r| match name {
                        Some(n) => r.name == *n,
                        None => r.topic_id.map(|t| t.0) == Some(*id),
                    });
                    resp.responses.push(match found {
                        Some(r) => result(
                            Some(&r.name).filter(|n| !n.is_empty()).map(|n| n.as_str()),
                            r.topic_id.map_or(*id, |t| t.0),
                            ctx.version,
                            r.error,
                            r.message.clone(),
                        ),
                        None => result(
                            name.as_deref(),
                            *id,
                            ctx.version,
                            ResponseError::UnknownTopicOrPartition.code(),
                            None,
                        ),
                    });
                }
            }
            Err(e) => {
                for (name, id) in &wanted {
                    resp.responses.push(result(
                        name.as_deref(),
                        *id,
                        ctx.version,
                        e.code(),
                        Some(e.to_string()),
                    ));
                }
            }
        }
        ctx.reply(&resp)
    })
}
