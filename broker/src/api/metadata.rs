//! Metadata (key 3): brokers (with the addresses of the listener the request came in on),
//! topics with ids, and partitions with leaders, epochs, replicas, ISR and offline replicas.

use super::{deferred, kbroker, str_bytes, topic_name, Ctx, Deferred};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
use protocol::control::{MetadataImage, NewTopic, TopicConfigs, TopicImage};
use protocol::ids::{BrokerId, TopicId};
use protocol::kafka::ResponseError;

pub async fn handle(ctx: Ctx, req: MetadataRequest) -> Deferred {
    deferred(async move {
        let image = ctx.broker.image();
        let resp = build(&ctx, &image, &req);
        ctx.reply(&resp)
    })
}

pub fn error_response(req: &MetadataRequest, error: ResponseError) -> MetadataResponse {
    let mut r = MetadataResponse::default();
    r.error_code = error.code();
    for t in req.topics.iter().flatten() {
        let mut rt = MetadataResponseTopic::default();
        rt.error_code = error.code();
        rt.name = t.name.clone();
        rt.topic_id = t.topic_id;
        r.topics.push(rt);
    }
    r
}

/// Brokers listed to clients: registered, unfenced, with an endpoint on `listener`.
pub fn live_brokers<'a>(
    image: &'a MetadataImage,
    listener: &'a str,
) -> impl Iterator<Item = (BrokerId, &'a str, u16, Option<&'a str>)> {
    image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .filter_map(move |b| {
            b.endpoint(listener)
                .map(|e| (b.id, e.host.as_str(), e.port, b.rack.as_deref()))
        })
}

fn build(ctx: &Ctx, image: &MetadataImage, req: &MetadataRequest) -> MetadataResponse {
    let mut r = MetadataResponse::default();
    for (id, host, port, rack) in live_brokers(image, &ctx.listener) {
        let mut b = MetadataResponseBroker::default();
        b.node_id = kbroker(id);
        b.host = str_bytes(host);
        b.port = port as i32;
        b.rack = rack.map(str_bytes);
        r.brokers.push(b);
    }
    if ctx.version >= 2 {
        r.cluster_id = Some(str_bytes(&image.cluster_id));
    }
    // KRaft brokers name a live broker as the "controller"; admin clients send their
    // requests there and the broker forwards them.
    r.controller_id = kbroker(ctx.broker.config.node_id);
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && ctx.version == 0,
    };
    if all {
        for topic in image.topics.values() {
            r.topics.push(topic_entry(ctx, image, topic));
        }
        return r;
    }
    let auto_create =
        ctx.broker.config.auto_create_topics && (ctx.version < 4 || req.allow_auto_topic_creation);
    for t in req.topics.iter().flatten() {
        let found = match &t.name {
            Some(name) => image.topic_by_name(name),
            None => image.topics.get(&TopicId(t.topic_id)),
        };
        if let Some(topic) = found {
            r.topics.push(topic_entry(ctx, image, topic));
            continue;
        }
        let mut rt = MetadataResponseTopic::default();
        rt.name = t.name.clone();
        rt.topic_id = t.topic_id;
        rt.error_code = match &t.name {
            Some(name) if auto_create && valid_topic_name(name) => {
                auto_create_topic(ctx, name.0.to_string());
                ResponseError::LeaderNotAvailable.code()
            }
            Some(name) if !valid_topic_name(name) => ResponseError::InvalidTopicException.code(),
            Some(_) => ResponseError::UnknownTopicOrPartition.code(),
            None => ResponseError::UnknownTopicId.code(),
        };
        r.topics.push(rt);
    }
    r
}

fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
}

fn auto_create_topic(ctx: &Ctx, name: String) {
    let broker = ctx.broker.clone();
    tokio::spawn(async move {
        let topic = NewTopic {
            name: name.clone(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: None,
            configs: TopicConfigs::new(),
        };
        match super::admin::create_topics(&broker, vec![topic], false).await {
            Ok(results) => tracing::info!(
                "auto-created topic {name}: error {}",
                results.first().map_or(0, |r| r.error)
            ),
            Err(e) => tracing::warn!("auto-creating topic {name} failed: {e}"),
        }
    });
}

fn topic_entry(ctx: &Ctx, image: &MetadataImage, topic: &TopicImage) -> MetadataResponseTopic {
    let mut rt = MetadataResponseTopic::default();
    rt.name = Some(topic_name(&topic.name));
    if ctx.version >= 10 {
        rt.topic_id = topic.id.0;
    }
    rt.is_internal = topic.name.starts_with("__");
    for (idx, p) in &topic.partitions {
        let mut rp = MetadataResponsePartition::default();
        rp.partition_index = idx.0;
        rp.leader_id = kbroker(p.leader.unwrap_or(BrokerId(-1)));
        if p.leader.is_none() {
            rp.error_code = ResponseError::LeaderNotAvailable.code();
        }
        rp.leader_epoch = p.leader_epoch.0;
        rp.replica_nodes = p.replicas.iter().map(|r| kbroker(*r)).collect();
        rp.isr_nodes = p.isr.iter().map(|r| kbroker(*r)).collect();
        if ctx.version >= 5 {
            rp.offline_replicas = p
                .replicas
                .iter()
                .filter(|r| image.brokers.get(r).is_none_or(|b| b.fenced))
                .map(|r| kbroker(*r))
                .collect();
        }
        rt.partitions.push(rp);
    }
    rt
}
