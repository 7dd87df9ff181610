//! A small Kafka client: bootstrap, metadata, connections per broker, leader routing.
//!
//! The client keeps one [`Connection`] per broker address and the latest metadata of the
//! topics it was asked about; callers refresh metadata after a retriable error.

use super::conn::Connection;
use super::error::KafkaError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Highest Metadata version used (v13 changes nothing this client needs).
const METADATA_MAX_VERSION: i16 = 12;
/// Default limit of one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A partition as the metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMeta {
    pub partition: i32,
    pub error_code: i16,
    /// -1 when there is no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
}

/// A topic as the metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    pub error_code: i16,
    pub topic_id: uuid::Uuid,
    pub is_internal: bool,
    pub partitions: BTreeMap<i32, PartitionMeta>,
}

/// The cluster as one Metadata response describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterMeta {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    /// broker id → `host:port`
    pub brokers: BTreeMap<i32, String>,
    pub topics: BTreeMap<String, TopicMeta>,
}

impl ClusterMeta {
    /// Converts a Metadata response.
    pub fn from_response(resp: &MetadataResponse) -> ClusterMeta {
        let brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        let mut topics = BTreeMap::new();
        for t in &resp.topics {
            let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                continue;
            };
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        PartitionMeta {
                            partition: p.partition_index,
                            error_code: p.error_code,
                            leader: p.leader_id.0,
                            leader_epoch: p.leader_epoch,
                            replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                            isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                            offline: p.offline_replicas.iter().map(|b| b.0).collect(),
                        },
                    )
                })
                .collect();
            topics.insert(
                name.clone(),
                TopicMeta {
                    name,
                    error_code: t.error_code,
                    topic_id: t.topic_id,
                    is_internal: t.is_internal,
                    partitions,
                },
            );
        }
        ClusterMeta {
            cluster_id: resp.cluster_id.as_ref().map(|c| c.to_string()),
            controller_id: resp.controller_id.0,
            brokers,
            topics,
        }
    }

    /// The topic, or `UnknownTopic` when the cluster does not have it.
    pub fn topic(&self, name: &str) -> Result<&TopicMeta, KafkaError> {
        match self.topics.get(name) {
            Some(t) if t.error_code == 0 || !t.partitions.is_empty() => Ok(t),
            Some(t)
                if t.error_code
                    == kafka_protocol::ResponseError::UnknownTopicOrPartition.code() =>
            {
                Err(KafkaError::UnknownTopic(name.to_string()))
            }
            Some(t) => {
                Err(
                    KafkaError::api(format!("metadata of topic '{name}'"), t.error_code, None)
                        .unwrap_or_else(|| KafkaError::UnknownTopic(name.to_string())),
                )
            }
            None => Err(KafkaError::UnknownTopic(name.to_string())),
        }
    }
}

/// A Kafka client.
#[derive(Debug)]
pub struct Client {
    bootstrap: Vec<String>,
    conns: BTreeMap<String, Arc<Connection>>,
    meta: ClusterMeta,
}

impl Client {
    /// Connects to the first reachable bootstrap broker.
    pub async fn connect(bootstrap: &[String]) -> Result<Client, KafkaError> {
        let mut client = Client {
            bootstrap: bootstrap.to_vec(),
            conns: BTreeMap::new(),
            meta: ClusterMeta::default(),
        };
        client.any_conn().await?;
        Ok(client)
    }

    /// The last metadata fetched.
    pub fn meta(&self) -> &ClusterMeta {
        &self.meta
    }

    /// A connection to `addr`, reusing an open one.
    pub async fn conn_to(&mut self, addr: &str) -> Result<Arc<Connection>, KafkaError> {
        if let Some(c) = self.conns.get(addr) {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(Connection::connect(addr).await?);
        self.conns.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// A connection to any broker: known brokers first, then the bootstrap list.
    pub async fn any_conn(&mut self) -> Result<Arc<Connection>, KafkaError> {
        let mut candidates: Vec<String> = self.meta.brokers.values().cloned().collect();
        candidates.extend(self.bootstrap.iter().cloned());
        let mut last = String::from("no address given");
        for addr in &candidates {
            match self.conn_to(addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = e.to_string(),
            }
        }
        Err(KafkaError::NoBroker {
            addrs: self.bootstrap.join(","),
            last,
        })
    }

    /// A connection to the broker with this id.
    pub async fn broker_conn(&mut self, id: i32) -> Result<Arc<Connection>, KafkaError> {
        let Some(addr) = self.meta.brokers.get(&id).cloned() else {
            return Err(KafkaError::NoBroker {
                addrs: format!("broker {id}"),
                last: "not in the metadata".into(),
            });
        };
        self.conn_to(&addr).await
    }

    /// Fetches metadata for `topics` (all topics when `None`) from any broker.
    pub async fn refresh(&mut self, topics: Option<&[String]>) -> Result<&ClusterMeta, KafkaError> {
        let mut req = MetadataRequest::default();
        req.allow_auto_topic_creation = false;
        req.topics = topics.map(|names| {
            names
                .iter()
                .map(|n| {
                    let mut t = MetadataRequestTopic::default();
                    t.name = Some(TopicName(StrBytes::from_string(n.clone())));
                    t
                })
                .collect()
        });
        let mut last = None;
        for _ in 0..3 {
            let conn = self.any_conn().await?;
            match conn.call(&req, METADATA_MAX_VERSION, REQUEST_TIMEOUT).await {
                Ok((resp, _)) => {
                    self.meta = ClusterMeta::from_response(&resp);
                    return Ok(&self.meta);
                }
                Err(e) => {
                    self.conns.remove(conn.addr());
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Metadata of one topic, refreshed.
    pub async fn topic(&mut self, name: &str) -> Result<TopicMeta, KafkaError> {
        self.refresh(Some(&[name.to_string()])).await?;
        self.meta.topic(name).cloned()
    }

    /// Metadata of one topic whose partitions all have a leader, waiting up to `limit`
    /// while it is unknown or leaderless: a topic just created may not have reached
    /// every broker's metadata yet (Kafka's producer waits the same way, `max.block.ms`).
    pub async fn topic_with_leaders(
        &mut self,
        name: &str,
        limit: Duration,
    ) -> Result<TopicMeta, KafkaError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let result = self.topic(name).await;
            let ready = match &result {
                Ok(t) => t.partitions.values().all(|p| p.leader >= 0),
                Err(KafkaError::UnknownTopic(_)) => false,
                Err(_) => true,
            };
            if ready || tokio::time::Instant::now() >= deadline {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The leader of a partition from the current metadata.
    pub fn leader(&self, topic: &str, partition: i32) -> Result<i32, KafkaError> {
        let t = self.meta.topic(topic)?;
        let Some(p) = t.partitions.get(&partition) else {
            return Err(KafkaError::UnknownPartition {
                topic: topic.to_string(),
                partition,
            });
        };
        if p.leader < 0 {
            return Err(KafkaError::NoLeader {
                topic: topic.to_string(),
                partition,
            });
        }
        Ok(p.leader)
    }
}

/// A broker id in the crate's newtype.
pub fn broker_id(id: i32) -> BrokerId {
    BrokerId(id)
}
