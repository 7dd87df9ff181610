//! The metadata image: the state every controller and broker derives from the records.
//!
//! `apply` is the one place where records change state. It never fails: the active
//! controller validates before it writes a record, so a committed record is a fact; records
//! that refer to something already gone (a partition of a removed topic) are ignored, which
//! keeps replays idempotent.

use super::codec::{decode_value, CodecError};
use super::records::{Endpoint, MetadataRecord, PartitionState, TopicConfigs};
use crate::ids::{BrokerEpoch, BrokerId, MetadataOffset, PartitionIndex, TopicId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A registered broker as the image sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerImage {
    pub id: BrokerId,
    /// The metadata offset of its registration.
    pub epoch: BrokerEpoch,
    pub incarnation_id: uuid::Uuid,
    pub listeners: Vec<Endpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub shutting_down: bool,
}

impl BrokerImage {
    /// The endpoint of the named listener, if the broker has one.
    pub fn endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.listeners.iter().find(|e| e.listener == listener)
    }
}

/// A topic with its partitions and configs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub id: TopicId,
    pub name: String,
    pub partitions: BTreeMap<PartitionIndex, PartitionState>,
    pub configs: TopicConfigs,
}

/// The whole metadata image at some offset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub cluster_id: String,
    /// The offset of the last batch applied.
    pub offset: MetadataOffset,
    pub brokers: BTreeMap<BrokerId, BrokerImage>,
    pub topics: BTreeMap<TopicId, TopicImage>,
    pub topic_ids: BTreeMap<String, TopicId>,
    /// The first producer id the active controller has not handed out yet (Kafka's
    /// `nextProducerId` of the last ProducerIdsRecord; 0 before the first block).
    /// Last field, defaulted: see [`MetadataImage::decode`] for images written before it.
    #[serde(default)]
    pub next_producer_id: i64,
}

/// The image as builds before producer-id blocks encoded it. bincode is not
/// self-describing, so `#[serde(default)]` alone does not let an encoding that lacks the
/// trailing field decode; [`MetadataImage::decode`] falls back to this layout.
#[derive(Deserialize)]
struct MetadataImageV0 {
    cluster_id: String,
    offset: MetadataOffset,
    brokers: BTreeMap<BrokerId, BrokerImage>,
    topics: BTreeMap<TopicId, TopicImage>,
    topic_ids: BTreeMap<String, TopicId>,
}

impl MetadataImage {
    pub fn new(cluster_id: impl Into<String>) -> Self {
        Self {
            cluster_id: cluster_id.into(),
            ..Self::default()
        }
    }

    /// Decodes an image written with [`super::codec::encode_value`], including one written
    /// before `next_producer_id` existed (a snapshot of an older build), which gets 0.
    pub fn decode(bytes: &[u8]) -> Result<MetadataImage, CodecError> {
        let current = match decode_value::<MetadataImage>(bytes) {
            Ok(image) => return Ok(image),
            Err(e) => e,
        };
        match decode_value::<MetadataImageV0>(bytes) {
            Ok(old) => Ok(MetadataImage {
                cluster_id: old.cluster_id,
                offset: old.offset,
                brokers: old.brokers,
                topics: old.topics,
                topic_ids: old.topic_ids,
                next_producer_id: 0,
            }),
            Err(_) => Err(current),
        }
    }

    /// The topic with this name.
    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    /// A partition's state.
    pub fn partition(
        &self,
        topic_id: TopicId,
        partition: PartitionIndex,
    ) -> Option<&PartitionState> {
        self.topics.get(&topic_id)?.partitions.get(&partition)
    }

    /// Applies one batch written at `offset`.
    pub fn apply_batch(&mut self, offset: MetadataOffset, batch: &[MetadataRecord]) {
        for record in batch {
            self.apply(offset, record);
        }
        self.offset = offset;
    }

    fn apply(&mut self, offset: MetadataOffset, record: &MetadataRecord) {
        match record {
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id,
                listeners,
                rack,
            } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerImage {
                        id: *broker_id,
                        epoch: BrokerEpoch(offset.0 as i64),
                        incarnation_id: *incarnation_id,
                        listeners: listeners.clone(),
                        rack: rack.clone(),
                        fenced: true,
                        shutting_down: false,
                    },
                );
            }
            MetadataRecord::FenceBroker { broker_id, epoch } => {
                if let Some(b) = self.broker_at(*broker_id, *epoch) {
                    b.fenced = true;
                }
            }
            MetadataRecord::UnfenceBroker { broker_id, epoch } => {
                if let Some(b) = self.broker_at(*broker_id, *epoch) {
                    b.fenced = false;
                    b.shutting_down = false;
                }
            }
            MetadataRecord::BrokerShuttingDown { broker_id, epoch } => {
                if let Some(b) = self.broker_at(*broker_id, *epoch) {
                    b.shutting_down = true;
                }
            }
            MetadataRecord::Topic { name, topic_id } => {
                self.topic_ids.insert(name.clone(), *topic_id);
                self.topics.entry(*topic_id).or_insert_with(|| TopicImage {
                    id: *topic_id,
                    name: name.clone(),
                    partitions: BTreeMap::new(),
                    configs: TopicConfigs::new(),
                });
            }
            MetadataRecord::Partition(state) => {
                if let Some(topic) = self.topics.get_mut(&state.topic_id) {
                    topic.partitions.insert(state.partition, state.clone());
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(topic) = self.topics.remove(topic_id) {
                    self.topic_ids.remove(&topic.name);
                }
            }
            MetadataRecord::TopicConfig { topic, key, value } => {
                let Some(id) = self.topic_ids.get(topic) else {
                    return;
                };
                let Some(t) = self.topics.get_mut(id) else {
                    return;
                };
                match value {
                    Some(v) => t.configs.insert(key.clone(), v.clone()),
                    None => t.configs.remove(key),
                };
            }
            MetadataRecord::NoOp => {}
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                // Blocks only move forward (Kafka refuses a non-increasing record on
                // replay; here a committed record is a fact, so an old one is ignored).
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
        }
    }

    fn broker_at(&mut self, id: BrokerId, epoch: BrokerEpoch) -> Option<&mut BrokerImage> {
        self.brokers.get_mut(&id).filter(|b| b.epoch == epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{LeaderEpoch, PartitionEpoch};

    #[test]
    fn register_fence_topic_partition_remove() {
        let mut img = MetadataImage::new("c1");
        let b = BrokerId(1);
        img.apply_batch(
            MetadataOffset(5),
            &[MetadataRecord::RegisterBroker {
                broker_id: b,
                incarnation_id: uuid::Uuid::nil(),
                listeners: vec![],
                rack: None,
            }],
        );
        assert_eq!(img.brokers[&b].epoch, BrokerEpoch(5));
        assert!(img.brokers[&b].fenced);
        // An unfence for an older epoch is ignored.
        img.apply_batch(
            MetadataOffset(6),
            &[MetadataRecord::UnfenceBroker {
                broker_id: b,
                epoch: BrokerEpoch(4),
            }],
        );
        assert!(img.brokers[&b].fenced);
        img.apply_batch(
            MetadataOffset(7),
            &[MetadataRecord::UnfenceBroker {
                broker_id: b,
                epoch: BrokerEpoch(5),
            }],
        );
        assert!(!img.brokers[&b].fenced);

        let t = TopicId::random();
        let p = PartitionState {
            topic_id: t,
            partition: PartitionIndex(0),
            replicas: vec![b],
            isr: vec![b],
            leader: Some(b),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: PartitionEpoch(0),
        };
        img.apply_batch(
            MetadataOffset(8),
            &[
                MetadataRecord::Topic {
                    name: "t".into(),
                    topic_id: t,
                },
                MetadataRecord::Partition(p.clone()),
                MetadataRecord::TopicConfig {
                    topic: "t".into(),
                    key: "k".into(),
                    value: Some("v".into()),
                },
            ],
        );
        assert_eq!(img.topic_by_name("t").unwrap().configs["k"], "v");
        assert_eq!(img.partition(t, PartitionIndex(0)), Some(&p));
        img.apply_batch(
            MetadataOffset(9),
            &[MetadataRecord::RemoveTopic { topic_id: t }],
        );
        assert!(img.topic_by_name("t").is_none());
        assert_eq!(img.offset, MetadataOffset(9));
    }

    #[test]
    fn producer_id_blocks_only_move_forward() {
        let mut img = MetadataImage::new("c1");
        assert_eq!(img.next_producer_id, 0);
        let rec = |next| MetadataRecord::ProducerIds {
            broker_id: BrokerId(1),
            broker_epoch: BrokerEpoch(1),
            next_producer_id: next,
        };
        img.apply_batch(MetadataOffset(1), &[rec(1000)]);
        assert_eq!(img.next_producer_id, 1000);
        img.apply_batch(MetadataOffset(2), &[rec(2000)]);
        img.apply_batch(MetadataOffset(3), &[rec(1000)]);
        assert_eq!(img.next_producer_id, 2000);
    }

    #[test]
    fn decodes_current_and_pre_producer_id_images() {
        use crate::control::codec::encode_value;
        let mut img = MetadataImage::new("c1");
        img.apply_batch(
            MetadataOffset(4),
            &[
                MetadataRecord::RegisterBroker {
                    broker_id: BrokerId(1),
                    incarnation_id: uuid::Uuid::nil(),
                    listeners: vec![],
                    rack: Some("r1".into()),
                },
                MetadataRecord::ProducerIds {
                    broker_id: BrokerId(1),
                    broker_epoch: BrokerEpoch(4),
                    next_producer_id: 3000,
                },
            ],
        );
        let bytes = encode_value(&img).unwrap();
        assert_eq!(MetadataImage::decode(&bytes).unwrap(), img);

        // The layout of an older build: the same fields without next_producer_id.
        #[derive(Serialize)]
        struct Old<'a> {
            cluster_id: &'a str,
            offset: MetadataOffset,
            brokers: &'a BTreeMap<BrokerId, BrokerImage>,
            topics: &'a BTreeMap<TopicId, TopicImage>,
            topic_ids: &'a BTreeMap<String, TopicId>,
        }
        let old = encode_value(&Old {
            cluster_id: &img.cluster_id,
            offset: img.offset,
            brokers: &img.brokers,
            topics: &img.topics,
            topic_ids: &img.topic_ids,
        })
        .unwrap();
        assert!(decode_value::<MetadataImage>(&old).is_err());
        let back = MetadataImage::decode(&old).unwrap();
        assert_eq!(back.next_producer_id, 0);
        assert_eq!(back.brokers, img.brokers);
        assert_eq!(back.offset, img.offset);
        assert!(MetadataImage::decode(&bytes[..bytes.len() - 3]).is_err());
    }
}
