//! Topic admin decisions: CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs.
//!
//! Each returns the records to write (empty for `validate_only`) and a result per topic.
//! Topics in one request are decided against the image plus the earlier topics of the same
//! request, and all their records go into one batch.

use super::placement::{place, seed, Candidate};
use super::{code, configs, usable};
use protocol::control::{
    AlterConfigsRequest, ConfigOp, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteTopicsRequest, MetadataBatch, MetadataImage, MetadataRecord, PartitionState, TopicResult,
};
use protocol::ids::{BrokerId, LeaderEpoch, PartitionEpoch, PartitionIndex, TopicId};
use protocol::kafka::ResponseError;
use std::collections::{BTreeMap, BTreeSet};

/// Controller defaults for topics that do not say.
#[derive(Clone, Copy, Debug)]
pub struct TopicDefaults {
    pub partitions: i32,
    /// `None`: min(3, usable brokers).
    pub replication_factor: Option<i16>,
}

/// Most partitions one topic may have.
pub const MAX_PARTITIONS: i32 = 100_000;

type Failure = (ResponseError, String);

/// Kafka's topic name rules.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name `{name}` is illegal"));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters, more than 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name `{name}` contains `{c}`; only [a-zA-Z0-9._-] are legal"
        ));
    }
    Ok(())
}

fn result(
    name: &str,
    id: Option<TopicId>,
    failure: Option<Failure>,
    partitions: i32,
    rf: i16,
) -> TopicResult {
    let (error, message) = match failure {
        Some((e, m)) => (code(e), Some(m)),
        None => (0, None),
    };
    TopicResult {
        name: name.to_string(),
        topic_id: id,
        error,
        message,
        num_partitions: partitions,
        replication_factor: rf,
    }
}

fn candidates(image: &MetadataImage) -> Vec<Candidate> {
    image
        .brokers
        .values()
        .filter(|b| usable(image, b.id))
        .map(|b| Candidate {
            id: b.id,
            rack: b.rack.clone(),
        })
        .collect()
}

fn check_assignments(image: &MetadataImage, a: &[Vec<BrokerId>]) -> Result<(), Failure> {
    let bad = |m: String| Err((ResponseError::InvalidReplicaAssignment, m));
    let rf = a.first().map_or(0, Vec::len);
    for (p, replicas) in a.iter().enumerate() {
        let set: BTreeSet<_> = replicas.iter().collect();
        if replicas.is_empty() || set.len() != replicas.len() || replicas.len() != rf {
            return bad(format!(
                "partition {p}: replicas {replicas:?} are empty, repeated or of unequal count"
            ));
        }
        if let Some(b) = replicas.iter().find(|b| !image.brokers.contains_key(b)) {
            return bad(format!("partition {p}: broker {b} is not registered"));
        }
        if !replicas.iter().any(|b| usable(image, *b)) {
            return bad(format!(
                "partition {p}: no replica of {replicas:?} is available"
            ));
        }
    }
    Ok(())
}

/// New partition states for explicit or placed replica lists.
fn new_partitions(
    image: &MetadataImage,
    topic_id: TopicId,
    first: i32,
    assignment: Vec<Vec<BrokerId>>,
) -> Vec<MetadataRecord> {
    assignment
        .into_iter()
        .enumerate()
        .map(|(i, replicas)| {
            let isr: Vec<BrokerId> = replicas
                .iter()
                .copied()
                .filter(|b| usable(image, *b))
                .collect();
            MetadataRecord::Partition(PartitionState {
                topic_id,
                partition: PartitionIndex(first + i as i32),
                leader: isr.first().copied(),
                isr,
                replicas,
                leader_epoch: LeaderEpoch(0),
                partition_epoch: PartitionEpoch(0),
            })
        })
        .collect()
}

/// Places `count` partitions starting at `first` with `rf` replicas, or checks `explicit`.
fn assign(
    image: &MetadataImage,
    name: &str,
    first: i32,
    count: i32,
    rf: i16,
    explicit: Option<&Vec<Vec<BrokerId>>>,
) -> Result<Vec<Vec<BrokerId>>, Failure> {
    if let Some(a) = explicit {
        check_assignments(image, a)?;
        return Ok(a.clone());
    }
    let cands = candidates(image);
    if rf < 1 || rf as usize > cands.len() {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!(
                "replication factor {rf} needs {rf} available brokers; {} are available",
                cands.len()
            ),
        ));
    }
    Ok(place(
        cands,
        seed(name),
        first as u32,
        count as u32,
        rf as usize,
    ))
}

/// Decides CreateTopics. `new_id` supplies topic ids (random in production).
pub fn create_topics(
    image: &MetadataImage,
    req: &CreateTopicsRequest,
    defaults: TopicDefaults,
    new_id: &mut dyn FnMut() -> TopicId,
) -> (MetadataBatch, Vec<TopicResult>) {
    let mut batch = Vec::new();
    let mut results = Vec::new();
    let mut seen = BTreeSet::new();
    let counts: BTreeMap<&str, usize> = req.topics.iter().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(t.name.as_str()).or_default() += 1;
        m
    });
    for t in &req.topics {
        let explicit = t.assignments.as_ref();
        let partitions = match explicit {
            Some(a) => a.len() as i32,
            None if t.num_partitions == -1 => defaults.partitions,
            None => t.num_partitions,
        };
        let live = candidates(image).len();
        let rf = match explicit {
            Some(a) => a.first().map_or(0, Vec::len) as i16,
            None if t.replication_factor == -1 => defaults
                .replication_factor
                .unwrap_or_else(|| live.clamp(1, 3) as i16),
            None => t.replication_factor,
        };
        let decided = (|| -> Result<(TopicId, Vec<MetadataRecord>), Failure> {
            if counts[t.name.as_str()] > 1 {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("topic `{}` appears more than once", t.name),
                ));
            }
            validate_name(&t.name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
            if image.topic_ids.contains_key(&t.name) || seen.contains(&t.name) {
                return Err((
                    ResponseError::TopicAlreadyExists,
                    format!("topic `{}` already exists", t.name),
                ));
            }
            if !(1..=MAX_PARTITIONS).contains(&partitions) {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!("{partitions} partitions: must be 1..={MAX_PARTITIONS}"),
                ));
            }
            for (k, v) in &t.configs {
                configs::validate(k, v).map_err(|m| (ResponseError::InvalidConfig, m))?;
            }
            let assignment = assign(image, &t.name, 0, partitions, rf, explicit)?;
            let id = new_id();
            let mut records = vec![MetadataRecord::Topic {
                name: t.name.clone(),
                topic_id: id,
            }];
            for (k, v) in &t.configs {
                records.push(MetadataRecord::TopicConfig {
                    topic: t.name.clone(),
                    key: k.clone(),
                    value: Some(v.clone()),
                });
            }
            records.extend(new_partitions(image, id, 0, assignment));
            Ok((id, records))
        })();
        match decided {
            Ok((id, records)) => {
                seen.insert(t.name.clone());
                if !req.validate_only {
                    batch.extend(records);
                }
                results.push(result(&t.name, Some(id), None, partitions, rf));
            }
            Err(f) => results.push(result(&t.name, None, Some(f), partitions, rf)),
        }
    }
    (batch, results)
}

/// Decides DeleteTopics (by name and by id).
pub fn delete_topics(
    image: &MetadataImage,
    req: &DeleteTopicsRequest,
) -> (MetadataBatch, Vec<TopicResult>) {
    let mut batch = Vec::new();
    let mut results = Vec::new();
    let mut removed = BTreeSet::new();
    let mut remove = |id: TopicId, name: &str, batch: &mut MetadataBatch| {
        if removed.insert(id) {
            batch.push(MetadataRecord::RemoveTopic { topic_id: id });
        }
        result(name, Some(id), None, 0, 0)
    };
    for name in &req.names {
        match image.topic_ids.get(name) {
            Some(id) => results.push(remove(*id, name, &mut batch)),
            None => results.push(result(
                name,
                None,
                Some((
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic `{name}` does not exist"),
                )),
                0,
                0,
            )),
        }
    }
    for id in &req.ids {
        match image.topics.get(id) {
            Some(t) => results.push(remove(*id, &t.name.clone(), &mut batch)),
            None => results.push(result(
                "",
                Some(*id),
                Some((
                    ResponseError::UnknownTopicId,
                    format!("topic id {id} does not exist"),
                )),
                0,
                0,
            )),
        }
    }
    (batch, results)
}

/// Decides CreatePartitions.
pub fn create_partitions(
    image: &MetadataImage,
    req: &CreatePartitionsRequest,
) -> (MetadataBatch, Vec<TopicResult>) {
    let mut batch = Vec::new();
    let mut results = Vec::new();
    for inc in &req.topics {
        let decided = (|| -> Result<(TopicId, i16, Vec<MetadataRecord>), Failure> {
            let topic = image.topic_by_name(&inc.name).ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic `{}` does not exist", inc.name),
                )
            })?;
            let current = topic.partitions.len() as i32;
            if inc.count <= current || inc.count > MAX_PARTITIONS {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!("topic `{}` has {current} partitions; {} is not more (or exceeds {MAX_PARTITIONS})", inc.name, inc.count),
                ));
            }
            let rf = topic
                .partitions
                .values()
                .next()
                .map_or(1, |p| p.replicas.len()) as i16;
            let added = inc.count - current;
            if let Some(a) = &inc.assignments {
                if a.len() as i32 != added {
                    return Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!("{} assignments for {added} new partitions", a.len()),
                    ));
                }
            }
            let assignment = assign(
                image,
                &inc.name,
                current,
                added,
                rf,
                inc.assignments.as_ref(),
            )?;
            Ok((
                topic.id,
                rf,
                new_partitions(image, topic.id, current, assignment),
            ))
        })();
        match decided {
            Ok((id, rf, records)) => {
                if !req.validate_only {
                    batch.extend(records);
                }
                results.push(result(&inc.name, Some(id), None, inc.count, rf));
            }
            Err(f) => results.push(result(&inc.name, None, Some(f), inc.count, -1)),
        }
    }
    (batch, results)
}

/// Decides AlterConfigs: legacy (`replace_all`: the given set replaces every config) or
/// incremental set/delete operations.
pub fn alter_configs(
    image: &MetadataImage,
    req: &AlterConfigsRequest,
) -> (MetadataBatch, Vec<TopicResult>) {
    let mut batch = Vec::new();
    let mut results = Vec::new();
    for change in &req.topics {
        let decided = (|| -> Result<(TopicId, Vec<MetadataRecord>), Failure> {
            let topic = image.topic_by_name(&change.topic).ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic `{}` does not exist", change.topic),
                )
            })?;
            let mut target = if change.replace_all {
                BTreeMap::new()
            } else {
                topic.configs.clone()
            };
            for op in &change.ops {
                match op {
                    ConfigOp::Set { key, value } => {
                        configs::validate(key, value)
                            .map_err(|m| (ResponseError::InvalidConfig, m))?;
                        target.insert(key.clone(), value.clone());
                    }
                    ConfigOp::Delete { key } => {
                        target.remove(key);
                    }
                }
            }
            let mut records = Vec::new();
            for key in topic.configs.keys().filter(|k| !target.contains_key(*k)) {
                records.push(MetadataRecord::TopicConfig {
                    topic: change.topic.clone(),
                    key: key.clone(),
                    value: None,
                });
            }
            for (k, v) in target
                .iter()
                .filter(|(k, v)| topic.configs.get(*k) != Some(v))
            {
                records.push(MetadataRecord::TopicConfig {
                    topic: change.topic.clone(),
                    key: k.clone(),
                    value: Some(v.clone()),
                });
            }
            Ok((topic.id, records))
        })();
        match decided {
            Ok((id, records)) => {
                if !req.validate_only {
                    batch.extend(records);
                }
                results.push(result(&change.topic, Some(id), None, 0, 0));
            }
            Err(f) => results.push(result(&change.topic, None, Some(f), 0, 0)),
        }
    }
    (batch, results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testutil::*;
    use protocol::control::{NewTopic, PartitionsIncrease, TopicConfigChange, TopicConfigs};

    const DEFAULTS: TopicDefaults = TopicDefaults {
        partitions: 1,
        replication_factor: None,
    };

    fn new_topic(name: &str, partitions: i32, rf: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            assignments: None,
            configs: TopicConfigs::new(),
        }
    }

    fn create(img: &MetadataImage, topics: Vec<NewTopic>) -> (MetadataBatch, Vec<TopicResult>) {
        create_topics(
            img,
            &CreateTopicsRequest {
                topics,
                validate_only: false,
            },
            DEFAULTS,
            &mut TopicId::random,
        )
    }

    #[test]
    fn create_validates_and_places() {
        let mut img = image_with_brokers(&[1, 2, 3]);
        let mut bad_cfg = new_topic("c", 1, 1);
        bad_cfg.configs.insert("retention.ms".into(), "soon".into());
        let (batch, res) = create(
            &img,
            vec![
                new_topic("a", 3, -1),
                new_topic("bad/name", 1, 1),
                new_topic("b", 1, 4),
                bad_cfg,
                new_topic("d", 0, 1),
            ],
        );
        let codes: Vec<i16> = res.iter().map(|r| r.error).collect();
        assert_eq!(
            codes,
            vec![
                0,
                code(ResponseError::InvalidTopicException),
                code(ResponseError::InvalidReplicationFactor),
                code(ResponseError::InvalidConfig),
                code(ResponseError::InvalidPartitions)
            ]
        );
        assert_eq!(res[0].replication_factor, 3);
        apply(&mut img, &batch);
        let t = img.topic_by_name("a").unwrap();
        assert_eq!(t.partitions.len(), 3);
        let leaders: BTreeSet<_> = t.partitions.values().map(|p| p.leader.unwrap()).collect();
        assert_eq!(leaders.len(), 3, "leaders spread over brokers");
        let (_, res) = create(&img, vec![new_topic("a", 1, 1)]);
        assert_eq!(res[0].error, code(ResponseError::TopicAlreadyExists));
        let (_, res) = create(&img, vec![new_topic("x", 1, 1), new_topic("x", 1, 1)]);
        assert_eq!(res[0].error, code(ResponseError::InvalidRequest));
    }

    #[test]
    fn explicit_assignment_is_respected() {
        let img = image_with_brokers(&[1, 2, 3]);
        let mut t = new_topic("e", -1, -1);
        t.assignments = Some(vec![vec![BrokerId(3), BrokerId(1)]]);
        let (batch, res) = create(&img, vec![t]);
        assert_eq!(res[0].error, 0);
        let MetadataRecord::Partition(p) = &batch[1] else {
            panic!("partition")
        };
        assert_eq!(p.replicas, vec![BrokerId(3), BrokerId(1)]);
        assert_eq!(p.leader, Some(BrokerId(3)));
        let mut t = new_topic("f", -1, -1);
        t.assignments = Some(vec![vec![BrokerId(9)]]);
        assert_eq!(
            create(&img, vec![t]).1[0].error,
            code(ResponseError::InvalidReplicaAssignment)
        );
    }

    #[test]
    fn delete_partitions_and_configs() {
        let mut img = image_with_brokers(&[1, 2]);
        let (batch, _) = create(&img, vec![new_topic("t", 1, 2)]);
        apply(&mut img, &batch);
        let req = CreatePartitionsRequest {
            topics: vec![PartitionsIncrease {
                name: "t".into(),
                count: 3,
                assignments: None,
            }],
            validate_only: false,
        };
        let (batch, res) = create_partitions(&img, &req);
        assert_eq!(res[0].error, 0);
        apply(&mut img, &batch);
        assert_eq!(img.topic_by_name("t").unwrap().partitions.len(), 3);
        assert_eq!(
            create_partitions(&img, &req).1[0].error,
            code(ResponseError::InvalidPartitions)
        );

        let set = |k: &str, v: &str| ConfigOp::Set {
            key: k.into(),
            value: v.into(),
        };
        let alter = |replace_all, ops| AlterConfigsRequest {
            topics: vec![TopicConfigChange {
                topic: "t".into(),
                replace_all,
                ops,
            }],
            validate_only: false,
        };
        let (batch, _) = alter_configs(
            &img,
            &alter(
                false,
                vec![set("retention.ms", "5"), set("segment.bytes", "1024")],
            ),
        );
        apply(&mut img, &batch);
        let (batch, _) = alter_configs(&img, &alter(true, vec![set("retention.ms", "6")]));
        apply(&mut img, &batch);
        let cfg = &img.topic_by_name("t").unwrap().configs;
        assert_eq!(cfg.len(), 1);
        assert_eq!(cfg["retention.ms"], "6");
        assert_eq!(
            alter_configs(&img, &alter(false, vec![set("bogus", "1")])).1[0].error,
            code(ResponseError::InvalidConfig)
        );

        let (batch, res) = delete_topics(
            &img,
            &DeleteTopicsRequest {
                names: vec!["t".into(), "nope".into()],
                ids: vec![],
            },
        );
        assert_eq!(res[1].error, code(ResponseError::UnknownTopicOrPartition));
        apply(&mut img, &batch);
        assert!(img.topic_by_name("t").is_none());
    }

    #[test]
    fn names() {
        assert!(validate_name("a.b_c-1").is_ok());
        assert!(validate_name("..").is_err());
        assert!(validate_name(&"x".repeat(250)).is_err());
        assert!(validate_name("a b").is_err());
    }
}
