//! Forwarding admin requests to the active controller, as KRaft brokers do.
//!
//! A forwarded change is answered only once it is committed (the controller answers after
//! the commit) and applied to this broker's image (a bounded wait on the image), so a
//! client that creates a topic and then asks this broker for its metadata sees it.

use crate::broker::Broker;
use protocol::control::{
    AlterConfigsRequest, ConfigOp, ControlRequest, ControlResponse, CreatePartitionsRequest,
    CreateTopicsRequest, DeleteTopicsRequest, MetadataImage, NewTopic, PartitionsIncrease,
    TopicConfigChange, TopicResult,
};
use protocol::ids::TopicId;
use protocol::kafka::ResponseError;
use tokio::time::Instant;

/// Why a forwarded request has no per-topic answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no active controller answered: {0}")]
    Unreachable(#[from] controller::client::ClientError),
    #[error("controller error {code}: {message}")]
    Remote { code: i16, message: String },
    #[error("controller sent an unexpected answer")]
    Unexpected,
}

impl ForwardError {
    /// The Kafka error code for every item of the request.
    pub fn code(&self) -> i16 {
        match self {
            ForwardError::Unreachable(_) => ResponseError::RequestTimedOut.code(),
            ForwardError::Remote { code, .. } => *code,
            ForwardError::Unexpected => ResponseError::UnknownServerError.code(),
        }
    }
}

async fn call(broker: &Broker, req: ControlRequest) -> Result<ControlResponse, ForwardError> {
    let deadline = Instant::now() + broker.config.metadata_max_wait;
    let resp = broker
        .admin_controllers
        .lock()
        .await
        .call_active(&req, deadline)
        .await?;
    match resp {
        ControlResponse::Error(e) => Err(ForwardError::Remote {
            code: e.code,
            message: e.message,
        }),
        other => Ok(other),
    }
}

async fn wait_image(broker: &Broker, ready: impl Fn(&MetadataImage) -> bool) {
    let deadline = Instant::now() + broker.config.metadata_max_wait;
    if !broker.wait_for_image(deadline, ready).await {
        tracing::warn!("a committed admin change did not reach this broker's image in time");
    }
}

pub async fn create_topics(
    broker: &Broker,
    topics: Vec<NewTopic>,
    validate_only: bool,
) -> Result<Vec<TopicResult>, ForwardError> {
    let req = ControlRequest::CreateTopics(CreateTopicsRequest {
        topics,
        validate_only,
    });
    let ControlResponse::CreateTopics(results) = call(broker, req).await? else {
        return Err(ForwardError::Unexpected);
    };
    if !validate_only {
        let created: Vec<(TopicId, i32)> = results
            .iter()
            .filter(|r| r.error == 0)
            .filter_map(|r| r.topic_id.map(|id| (id, r.num_partitions)))
            .collect();
        wait_image(broker, |img| {
            created.iter().all(|(id, n)| {
                img.topics
                    .get(id)
                    .is_some_and(|t| t.partitions.len() as i32 >= *n)
            })
        })
        .await;
    }
    Ok(results)
}

pub async fn delete_topics(
    broker: &Broker,
    names: Vec<String>,
    ids: Vec<TopicId>,
) -> Result<Vec<TopicResult>, ForwardError> {
    let req = ControlRequest::DeleteTopics(DeleteTopicsRequest { names, ids });
    let ControlResponse::DeleteTopics(results) = call(broker, req).await? else {
        return Err(ForwardError::Unexpected);
    };
    let gone: Vec<TopicId> = results
        .iter()
        .filter(|r| r.error == 0)
        .filter_map(|r| r.topic_id)
        .collect();
    wait_image(broker, |img| {
        gone.iter().all(|id| !img.topics.contains_key(id))
    })
    .await;
    Ok(results)
}

pub async fn create_partitions(
    broker: &Broker,
    topics: Vec<PartitionsIncrease>,
    validate_only: bool,
) -> Result<Vec<TopicResult>, ForwardError> {
    let wanted: Vec<(String, i32)> = topics.iter().map(|t| (t.name.clone(), t.count)).collect();
    let req = ControlRequest::CreatePartitions(CreatePartitionsRequest {
        topics,
        validate_only,
    });
    let ControlResponse::CreatePartitions(results) = call(broker, req).await? else {
        return Err(ForwardError::Unexpected);
    };
    if !validate_only {
        let done: Vec<(String, i32)> = wanted
            .into_iter()
            .filter(|(n, _)| results.iter().any(|r| r.name == *n && r.error == 0))
            .collect();
        wait_image(broker, |img| {
            done.iter().all(|(n, c)| {
                img.topic_by_name(n)
                    .is_some_and(|t| t.partitions.len() as i32 >= *c)
            })
        })
        .await;
    }
    Ok(results)
}

/// The error code and message of one topic in a forwarded admin request's outcome.
pub fn topic_outcome(
    outcome: &Result<Vec<TopicResult>, ForwardError>,
    topic: &str,
) -> (i16, Option<String>) {
    match outcome {
        Ok(results) => match results.iter().find(|r| r.name == topic) {
            Some(r) => (r.error, r.message.clone()),
            None => (ResponseError::UnknownServerError.code(), None),
        },
        Err(e) => (e.code(), Some(e.to_string())),
    }
}

pub async fn alter_configs(
    broker: &Broker,
    topics: Vec<TopicConfigChange>,
    validate_only: bool,
) -> Result<Vec<TopicResult>, ForwardError> {
    let changes = topics.clone();
    let req = ControlRequest::AlterConfigs(AlterConfigsRequest {
        topics,
        validate_only,
    });
    let ControlResponse::AlterConfigs(results) = call(broker, req).await? else {
        return Err(ForwardError::Unexpected);
    };
    if !validate_only {
        let done: Vec<TopicConfigChange> = changes
            .into_iter()
            .filter(|c| results.iter().any(|r| r.name == c.topic && r.error == 0))
            .collect();
        wait_image(broker, |img| done.iter().all(|c| applied(img, c))).await;
    }
    Ok(results)
}

fn applied(img: &MetadataImage, change: &TopicConfigChange) -> bool {
    let Some(t) = img.topic_by_name(&change.topic) else {
        return true;
    };
    change.ops.iter().all(|op| match op {
        ConfigOp::Set { key, value } => t.configs.get(key) == Some(value),
        ConfigOp::Delete { key } => !t.configs.contains_key(key),
    })
}
