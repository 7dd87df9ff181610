//! The requests the commands send: produce, fetch, list offsets and the admin requests.
//! Leader-bound requests retry after refreshing metadata on retriable errors, until a
//! deadline.

use super::client::{broker_id, Client, REQUEST_TIMEOUT};
use super::conn::Connection;
use super::error::KafkaError;
use super::records::{decode_batches, next_offset_after, ConsumedRecord};
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, FetchRequest,
    IncrementalAlterConfigsRequest, ListOffsetsRequest, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const PRODUCE_MAX_VERSION: i16 = 11;
const FETCH_MAX_VERSION: i16 = 12;
/// The last Fetch version without tagged fields.
const FETCH_RIGID_MAX_VERSION: i16 = 11;
const LIST_OFFSETS_MAX_VERSION: i16 = 7;
const CREATE_TOPICS_MAX_VERSION: i16 = 7;
const DELETE_TOPICS_MAX_VERSION: i16 = 5;
const ALTER_CONFIGS_MAX_VERSION: i16 = 1;
const DESCRIBE_CONFIGS_MAX_VERSION: i16 = 4;
/// How long leader-bound calls keep retrying through a leader change.
pub const RETRY_WINDOW: Duration = Duration::from_secs(30);
/// Kafka's config resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A Produce request for one partition.
pub fn produce_request(
    topic: &str,
    partition: i32,
    batch: Bytes,
    acks: i16,
    timeout_ms: i32,
) -> ProduceRequest {
    let mut part = PartitionProduceData::default();
    part.index = partition;
    part.records = Some(batch);
    let mut td = TopicProduceData::default();
    td.name = topic_name(topic);
    td.partition_data = vec![part];
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = timeout_ms;
    req.topic_data = vec![td];
    req
}

/// The base offset of the one partition in a Produce response, or its error.
pub fn produce_result(
    topic: &str,
    partition: i32,
    resp: &ProduceResponse,
) -> Result<i64, KafkaError> {
    let p = resp
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == partition)
        .ok_or_else(|| KafkaError::Protocol {
            addr: "broker".into(),
            message: "produce response without the partition".into(),
        })?;
    if let Some(e) = KafkaError::api(
        format!("produce to {topic}-{partition}"),
        p.error_code,
        p.error_message.as_ref().map(|m| m.to_string()),
    ) {
        return Err(e);
    }
    Ok(p.base_offset)
}

/// Sends one Produce to a connection; `None` for acks=0.
pub async fn produce_on(
    conn: &Connection,
    topic: &str,
    partition: i32,
    batch: Bytes,
    acks: i16,
) -> Result<Option<i64>, KafkaError> {
    let records = [batch.clone()];
    let req = produce_request(
        topic,
        partition,
        batch,
        acks,
        REQUEST_TIMEOUT.as_millis() as i32,
    );
    if acks == 0 {
        conn.send_only(&req, PRODUCE_MAX_VERSION, &records).await?;
        return Ok(None);
    }
    let (resp, _) = conn
        .call_spliced(
            &req,
            PRODUCE_MAX_VERSION,
            REQUEST_TIMEOUT + Duration::from_secs(5),
            &records,
        )
        .await?;
    produce_result(topic, partition, &resp).map(Some)
}

/// The leader's connection of a partition, refreshing metadata first when `refresh`.
pub async fn leader_conn(
    client: &mut Client,
    topic: &str,
    partition: i32,
    refresh: bool,
) -> Result<Arc<Connection>, KafkaError> {
    if refresh || !client.meta().topics.contains_key(topic) {
        client.refresh(Some(&[topic.to_string()])).await?;
    }
    let leader = client.leader(topic, partition)?;
    client.broker_conn(leader).await
}

/// Runs `op` against the partition's leader, refreshing metadata and retrying on
/// retriable errors until [`RETRY_WINDOW`] passes.
pub async fn with_leader<T, F, Fut>(
    client: &mut Client,
    topic: &str,
    partition: i32,
    mut op: F,
) -> Result<T, KafkaError>
where
    F: FnMut(Arc<Connection>) -> Fut,
    Fut: std::future::Future<Output = Result<T, KafkaError>>,
{
    let deadline = Instant::now() + RETRY_WINDOW;
    let mut refresh = false;
    let mut backoff = Duration::from_millis(50);
    loop {
        let result = match leader_conn(client, topic, partition, refresh).await {
            Ok(conn) => op(conn).await,
            Err(e) => Err(e),
        };
        match result {
            Err(e) if e.is_retriable() && Instant::now() + backoff < deadline => {
                tracing::debug!("retrying {topic}-{partition}: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                refresh = true;
            }
            other => return other,
        }
    }
}

/// What a fetch returned for one partition.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub records: Vec<ConsumedRecord>,
}

/// What a fetch returned for one partition, its record batches not decoded yet.
#[derive(Clone, Debug)]
pub struct RawFetched {
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    /// The record batches as sent (empty on an error).
    pub batches: Bytes,
}

impl RawFetched {
    /// The offset after the last complete batch, read off the batch headers alone (no
    /// decoding), so a consumer can ask for the next data before it decodes this one.
    pub fn next_offset(&self) -> Option<i64> {
        next_offset_after(&self.batches)
    }

    /// Decodes the batches (CRC checked), naming `topic` and `addr` in an error.
    pub fn decode(self, topic: &str, addr: &str) -> Result<Fetched, KafkaError> {
        let records = decode_batches(self.batches).map_err(|e| KafkaError::Protocol {
            addr: addr.to_string(),
            message: format!("record batch of {topic}-{}: {e}", self.partition),
        })?;
        Ok(Fetched {
            partition: self.partition,
            error_code: self.error_code,
            high_watermark: self.high_watermark,
            records,
        })
    }
}

/// Fetches from `offsets` (partition, offset) of one topic on one broker.
pub async fn fetch_on(
    conn: &Connection,
    topic: &str,
    offsets: &[(i32, i64)],
    max_wait_ms: i32,
    partition_max_bytes: i32,
) -> Result<Vec<Fetched>, KafkaError> {
    fetch_raw_on(conn, topic, offsets, max_wait_ms, partition_max_bytes)
        .await?
        .into_iter()
        .map(|f| f.decode(topic, conn.addr()))
        .collect()
}

/// [`fetch_on`] without decoding the record batches.
pub async fn fetch_raw_on(
    conn: &Connection,
    topic: &str,
    offsets: &[(i32, i64)],
    max_wait_ms: i32,
    partition_max_bytes: i32,
) -> Result<Vec<RawFetched>, KafkaError> {
    let mut ft = FetchTopic::default();
    ft.topic = topic_name(topic);
    ft.partitions = offsets
        .iter()
        .map(|(p, o)| {
            let mut fp = FetchPartition::default();
            fp.partition = *p;
            fp.fetch_offset = *o;
            fp.current_leader_epoch = -1;
            fp.last_fetched_epoch = -1;
            fp.log_start_offset = -1;
            fp.partition_max_bytes = partition_max_bytes;
            fp
        })
        .collect();
    let mut req = FetchRequest::default();
    req.replica_id = broker_id(-1);
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = 64 << 20;
    req.isolation_level = 0;
    req.session_id = 0;
    req.session_epoch = -1;
    req.topics = vec![ft];
    let limit = Duration::from_millis(max_wait_ms.max(0) as u64) + REQUEST_TIMEOUT;
    let v = conn.version::<FetchRequest>(conn.fetch_max(FETCH_MAX_VERSION))?;
    let resp = match conn.call_at(&req, v, limit).await {
        // A response that does not decode at a flexible version (tansu 0.6.0 puts a v16
        // tag into v12 responses): ask again, and from now on, at the last rigid version.
        Err(KafkaError::Protocol { .. }) if v > FETCH_RIGID_MAX_VERSION => {
            conn.lower_fetch_max(FETCH_RIGID_MAX_VERSION + 1);
            let v = conn.version::<FetchRequest>(conn.fetch_max(FETCH_MAX_VERSION))?;
            conn.call_at(&req, v, limit).await?
        }
        other => other?,
    };
    if let Some(e) = KafkaError::api(format!("fetch from {topic}"), resp.error_code, None) {
        return Err(e);
    }
    let mut out = Vec::new();
    for t in resp.responses {
        for p in t.partitions {
            let batches = match p.records {
                Some(bytes) if p.error_code == 0 => bytes,
                _ => Bytes::new(),
            };
            out.push(RawFetched {
                partition: p.partition_index,
                error_code: p.error_code,
                high_watermark: p.high_watermark,
                batches,
            });
        }
    }
    Ok(out)
}

/// Kafka's special ListOffsets timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// The offset of the first record at or after `timestamp` (or [`LATEST`]/[`EARLIEST`]);
/// -1 when no record is that recent.
pub async fn list_offset(
    client: &mut Client,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> Result<i64, KafkaError> {
    with_leader(client, topic, partition, |conn| async move {
        let mut lp = ListOffsetsPartition::default();
        lp.partition_index = partition;
        lp.current_leader_epoch = -1;
        lp.timestamp = timestamp;
        let mut lt = ListOffsetsTopic::default();
        lt.name = topic_name(topic);
        lt.partitions = vec![lp];
        let mut req = ListOffsetsRequest::default();
        req.replica_id = broker_id(-1);
        req.topics = vec![lt];
        let (resp, _) = conn
            .call(&req, LIST_OFFSETS_MAX_VERSION, REQUEST_TIMEOUT)
            .await?;
        let p = resp
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| KafkaError::Protocol {
                addr: conn.addr().into(),
                message: "list offsets response without the partition".into(),
            })?;
        if let Some(e) = KafkaError::api(
            format!("list offsets of {topic}-{partition}"),
            p.error_code,
            None,
        ) {
            return Err(e);
        }
        Ok(p.offset)
    })
    .await
}

/// A topic to create.
#[derive(Clone, Debug)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

/// The connection admin requests go to: the broker the metadata names as controller
/// (brokers forward to the active controller anyway), else any broker.
async fn admin_conn(client: &mut Client) -> Result<Arc<Connection>, KafkaError> {
    client.refresh(Some(&[])).await?;
    let controller = client.meta().controller_id;
    match client.broker_conn(controller).await {
        Ok(c) => Ok(c),
        Err(_) => client.any_conn().await,
    }
}

/// Creates a topic.
pub async fn create_topic(client: &mut Client, spec: &TopicSpec) -> Result<(), KafkaError> {
    let mut t = CreatableTopic::default();
    t.name = topic_name(&spec.name);
    t.num_partitions = spec.partitions;
    t.replication_factor = spec.replication_factor;
    t.configs = spec
        .configs
        .iter()
        .map(|(k, v)| {
            let mut c = CreatableTopicConfig::default();
            c.name = StrBytes::from_string(k.clone());
            c.value = Some(StrBytes::from_string(v.clone()));
            c
        })
        .collect();
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = REQUEST_TIMEOUT.as_millis() as i32;
    let conn = admin_conn(client).await?;
    let (resp, _) = conn
        .call(
            &req,
            CREATE_TOPICS_MAX_VERSION,
            REQUEST_TIMEOUT + Duration::from_secs(5),
        )
        .await?;
    for r in resp.topics {
        if let Some(e) = KafkaError::api(
            format!("create topic '{}'", spec.name),
            r.error_code,
            r.error_message.map(|m| m.to_string()),
        ) {
            return Err(e);
        }
    }
    Ok(())
}

/// Deletes a topic.
pub async fn delete_topic(client: &mut Client, name: &str) -> Result<(), KafkaError> {
    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![topic_name(name)];
    req.timeout_ms = REQUEST_TIMEOUT.as_millis() as i32;
    let conn = admin_conn(client).await?;
    let (resp, _) = conn
        .call(
            &req,
            DELETE_TOPICS_MAX_VERSION,
            REQUEST_TIMEOUT + Duration::from_secs(5),
        )
        .await?;
    for r in resp.responses {
        if r.error_code == kafka_protocol::ResponseError::UnknownTopicOrPartition.code() {
            return Err(KafkaError::UnknownTopic(name.to_string()));
        }
        if let Some(e) = KafkaError::api(
            format!("delete topic '{name}'"),
            r.error_code,
            r.error_message.map(|m| m.to_string()),
        ) {
            return Err(e);
        }
    }
    Ok(())
}

/// The configs set on a topic (not the defaults), sorted by key.
pub async fn topic_config_overrides(
    client: &mut Client,
    name: &str,
) -> Result<Vec<(String, String)>, KafkaError> {
    /// Kafka's config source of a per-topic setting.
    const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    let mut res = DescribeConfigsResource::default();
    res.resource_type = RESOURCE_TOPIC;
    res.resource_name = StrBytes::from_string(name.to_string());
    res.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![res];
    let conn = client.any_conn().await?;
    let (resp, _) = conn
        .call(&req, DESCRIBE_CONFIGS_MAX_VERSION, REQUEST_TIMEOUT)
        .await?;
    let mut out = Vec::new();
    for r in resp.results {
        if let Some(e) = KafkaError::api(
            format!("describe configs of topic '{name}'"),
            r.error_code,
            r.error_message.map(|m| m.to_string()),
        ) {
            return Err(e);
        }
        for c in r.configs {
            if c.config_source == DYNAMIC_TOPIC_CONFIG {
                out.push((
                    c.name.to_string(),
                    c.value.map(|v| v.to_string()).unwrap_or_default(),
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Sets and deletes topic configs.
pub async fn alter_topic_configs(
    client: &mut Client,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), KafkaError> {
    let mut configs = Vec::new();
    for (k, v) in set {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(k.clone());
        c.config_operation = 0;
        c.value = Some(StrBytes::from_string(v.clone()));
        configs.push(c);
    }
    for k in delete {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(k.clone());
        c.config_operation = 1;
        c.value = None;
        configs.push(c);
    }
    let mut res = AlterConfigsResource::default();
    res.resource_type = RESOURCE_TOPIC;
    res.resource_name = StrBytes::from_string(name.to_string());
    res.configs = configs;
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![res];
    let conn = admin_conn(client).await?;
    let (resp, _) = conn
        .call(&req, ALTER_CONFIGS_MAX_VERSION, REQUEST_TIMEOUT)
        .await?;
    for r in resp.responses {
        if r.error_code == kafka_protocol::ResponseError::UnknownTopicOrPartition.code() {
            return Err(KafkaError::UnknownTopic(name.to_string()));
        }
        if let Some(e) = KafkaError::api(
            format!("alter configs of topic '{name}'"),
            r.error_code,
            r.error_message.map(|m| m.to_string()),
        ) {
            return Err(e);
        }
    }
    Ok(())
}
