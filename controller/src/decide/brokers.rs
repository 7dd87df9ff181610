//! Broker lifecycle decisions: registration, heartbeats, fencing, unfencing, controlled
//! shutdown and preferred-leader election.

use super::partition::{elect_if_offline, elect_preferred, remove_broker, unclean_allowed};
use super::sessions::{Session, Sessions};
use super::{code, usable};
use protocol::control::{
    BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerRegistrationRequest, ErrorCode,
    MetadataBatch, MetadataImage, MetadataRecord,
};
use protocol::ids::{BrokerEpoch, BrokerId};
use protocol::kafka::ResponseError;

/// Partition records taking `broker` out of every ISR and leadership.
pub fn detach(image: &MetadataImage, broker: BrokerId) -> MetadataBatch {
    let ok = |b: BrokerId| b != broker && usable(image, b);
    let mut out = Vec::new();
    for topic in image.topics.values() {
        let unclean = unclean_allowed(&topic.configs);
        for p in topic.partitions.values() {
            if let Some(n) = remove_broker(p, broker, &ok, unclean) {
                out.push(MetadataRecord::Partition(n));
            }
        }
    }
    out
}

/// Fences `broker` (session expired or it asked to be).
pub fn fence(image: &MetadataImage, broker: BrokerId, epoch: BrokerEpoch) -> MetadataBatch {
    let mut batch = vec![MetadataRecord::FenceBroker {
        broker_id: broker,
        epoch,
    }];
    batch.extend(detach(image, broker));
    batch
}

/// Starts a controlled shutdown of `broker`: leadership moves away, it leaves the ISRs.
pub fn shutdown(image: &MetadataImage, broker: BrokerId, epoch: BrokerEpoch) -> MetadataBatch {
    let mut batch = vec![MetadataRecord::BrokerShuttingDown {
        broker_id: broker,
        epoch,
    }];
    batch.extend(detach(image, broker));
    batch
}

/// Unfences `broker` and elects it where it is the only eligible ISR member of an offline
/// partition.
pub fn unfence(image: &MetadataImage, broker: BrokerId, epoch: BrokerEpoch) -> MetadataBatch {
    let ok = |b: BrokerId| b == broker || usable(image, b);
    let mut batch = vec![MetadataRecord::UnfenceBroker {
        broker_id: broker,
        epoch,
    }];
    for topic in image.topics.values() {
        let unclean = unclean_allowed(&topic.configs);
        for p in topic.partitions.values() {
            if let Some(n) = elect_if_offline(p, &ok, unclean) {
                batch.push(MetadataRecord::Partition(n));
            }
        }
    }
    batch
}

/// Whether `broker` leads any partition.
pub fn leads_any(image: &MetadataImage, broker: BrokerId) -> bool {
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .any(|p| p.leader == Some(broker))
}

/// The outcome of a registration.
#[derive(Debug, PartialEq, Eq)]
pub enum Registration {
    /// The same incarnation registered before: its epoch stands, nothing to write.
    Existing(BrokerEpoch),
    /// Write this batch; the broker's epoch is the offset it commits at.
    New(MetadataBatch),
}

/// Decides a BrokerRegistration. A new incarnation replaces the old registration, leaving
/// every ISR and leadership the old one held (it starts fenced).
pub fn register(
    image: &MetadataImage,
    req: &BrokerRegistrationRequest,
) -> Result<Registration, (ErrorCode, String)> {
    if req.cluster_id != image.cluster_id {
        return Err((
            code(ResponseError::InconsistentClusterId),
            format!(
                "broker cluster id `{}` is not `{}`",
                req.cluster_id, image.cluster_id
            ),
        ));
    }
    if let Some(b) = image.brokers.get(&req.broker_id) {
        if b.incarnation_id == req.incarnation_id {
            return Ok(Registration::Existing(b.epoch));
        }
    }
    let mut batch = vec![MetadataRecord::RegisterBroker {
        broker_id: req.broker_id,
        incarnation_id: req.incarnation_id,
        listeners: req.listeners.clone(),
        rack: req.rack.clone(),
    }];
    batch.extend(detach(image, req.broker_id));
    Ok(Registration::New(batch))
}

/// What a heartbeat changes, and the answer once `records` commit.
#[derive(Debug, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    pub records: MetadataBatch,
    pub reply: BrokerHeartbeatResponse,
    /// The records start a controlled shutdown (record their offset in the session).
    pub starts_shutdown: bool,
}

/// Decides a heartbeat; `session` is the broker's session after this heartbeat.
pub fn heartbeat(
    image: &MetadataImage,
    session: &Session,
    req: &BrokerHeartbeatRequest,
) -> Result<HeartbeatOutcome, ErrorCode> {
    let Some(b) = image.brokers.get(&req.broker_id) else {
        return Err(code(ResponseError::BrokerIdNotRegistered));
    };
    if b.epoch != req.broker_epoch {
        return Err(code(ResponseError::StaleBrokerEpoch));
    }
    let caught_up = req.current_metadata_offset.0 >= b.epoch.0 as u64;
    let mut reply = BrokerHeartbeatResponse {
        error: 0,
        is_caught_up: caught_up,
        is_fenced: b.fenced,
        should_shutdown: false,
    };
    let mut records = Vec::new();
    let mut starts_shutdown = false;
    if req.want_shutdown {
        if b.fenced {
            reply.should_shutdown = true;
        } else if !b.shutting_down {
            records = shutdown(image, b.id, b.epoch);
            starts_shutdown = true;
        } else {
            let reached = session
                .shutdown_offset
                .is_none_or(|o| req.current_metadata_offset >= o);
            reply.should_shutdown = reached && !leads_any(image, b.id);
        }
    } else if req.want_fence {
        if !b.fenced {
            records = fence(image, b.id, b.epoch);
            reply.is_fenced = true;
        }
    } else if b.fenced && caught_up && !b.shutting_down {
        records = unfence(image, b.id, b.epoch);
        reply.is_fenced = false;
    }
    Ok(HeartbeatOutcome {
        records,
        reply,
        starts_shutdown,
    })
}

/// One periodic change the active controller should make at `now_ms`, with a label for the
/// log: fence a broker whose session expired, else move leaderships back to preferred
/// replicas. `None` when nothing needs doing.
pub fn periodic(
    image: &MetadataImage,
    sessions: &mut Sessions,
    now_ms: u64,
) -> Option<(String, MetadataBatch)> {
    if let Some((broker, epoch)) = sessions.expired(image, now_ms).into_iter().next() {
        return Some((
            format!("fence broker {broker} (epoch {epoch}): session expired"),
            fence(image, broker, epoch),
        ));
    }
    let ok = |b: BrokerId| usable(image, b);
    let batch: MetadataBatch = image
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .filter_map(|p| elect_preferred(p, &ok).map(MetadataRecord::Partition))
        .collect();
    (!batch.is_empty()).then(|| ("preferred leader election".to_string(), batch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testutil::*;
    use protocol::ids::*;

    fn hb(b: i32, epoch: i64, offset: u64) -> BrokerHeartbeatRequest {
        BrokerHeartbeatRequest {
            broker_id: BrokerId(b),
            broker_epoch: BrokerEpoch(epoch),
            current_metadata_offset: MetadataOffset(offset),
            want_fence: false,
            want_shutdown: false,
        }
    }

    fn session() -> Session {
        Session {
            epoch: BrokerEpoch(1),
            deadline_ms: 0,
            metadata_offset: MetadataOffset(0),
            shutdown_offset: None,
        }
    }

    #[test]
    fn fencing_moves_leadership_and_keeps_last_isr_member() {
        let mut img = image_with_brokers(&[1, 2]);
        let t = add_topic(&mut img, "t", &[&[1, 2], &[1]]);
        let batch = fence(&img, BrokerId(1), BrokerEpoch(1));
        apply(&mut img, &batch);
        let p0 = img.partition(t, PartitionIndex(0)).unwrap();
        assert_eq!(
            (p0.leader, p0.isr.clone()),
            (Some(BrokerId(2)), vec![BrokerId(2)])
        );
        let p1 = img.partition(t, PartitionIndex(1)).unwrap();
        assert_eq!((p1.leader, p1.isr.clone()), (None, vec![BrokerId(1)]));
        assert!(img.brokers[&BrokerId(1)].fenced);
        // Back and caught up: unfenced, and the offline partition is led again.
        let out = heartbeat(&img, &session(), &hb(1, 1, 1)).unwrap();
        assert!(!out.reply.is_fenced);
        apply(&mut img, &out.records);
        assert_eq!(
            img.partition(t, PartitionIndex(1)).unwrap().leader,
            Some(BrokerId(1))
        );
        assert_eq!(
            img.partition(t, PartitionIndex(1)).unwrap().leader_epoch,
            LeaderEpoch(2)
        );
    }

    #[test]
    fn heartbeat_errors_and_catch_up() {
        let mut img = image_with_brokers(&[1]);
        assert_eq!(
            heartbeat(&img, &session(), &hb(9, 1, 0)),
            Err(code(ResponseError::BrokerIdNotRegistered))
        );
        assert_eq!(
            heartbeat(&img, &session(), &hb(1, 0, 0)),
            Err(code(ResponseError::StaleBrokerEpoch))
        );
        img.brokers.get_mut(&BrokerId(1)).unwrap().fenced = true;
        img.brokers.get_mut(&BrokerId(1)).unwrap().epoch = BrokerEpoch(10);
        let out = heartbeat(&img, &session(), &hb(1, 10, 9)).unwrap();
        assert!(!out.reply.is_caught_up && out.reply.is_fenced && out.records.is_empty());
        let out = heartbeat(&img, &session(), &hb(1, 10, 10)).unwrap();
        assert!(out.reply.is_caught_up && !out.reply.is_fenced);
        assert_eq!(
            out.records[0],
            MetadataRecord::UnfenceBroker {
                broker_id: BrokerId(1),
                epoch: BrokerEpoch(10)
            }
        );
    }

    #[test]
    fn controlled_shutdown_moves_leadership_then_allows_stop() {
        let mut img = image_with_brokers(&[1, 2]);
        let t = add_topic(&mut img, "t", &[&[1, 2]]);
        let mut req = hb(1, 1, 5);
        req.want_shutdown = true;
        let out = heartbeat(&img, &session(), &req).unwrap();
        assert!(out.starts_shutdown && !out.reply.should_shutdown);
        apply(&mut img, &out.records);
        let at = img.offset;
        assert_eq!(
            img.partition(t, PartitionIndex(0)).unwrap().leader,
            Some(BrokerId(2))
        );
        let mut s = session();
        s.shutdown_offset = Some(at);
        req.current_metadata_offset = MetadataOffset(at.0 - 1);
        assert!(!heartbeat(&img, &s, &req).unwrap().reply.should_shutdown);
        req.current_metadata_offset = at;
        assert!(heartbeat(&img, &s, &req).unwrap().reply.should_shutdown);
    }

    #[test]
    fn registration_checks_cluster_and_detaches_old_incarnation() {
        let mut img = image_with_brokers(&[1, 2]);
        add_topic(&mut img, "t", &[&[1, 2]]);
        let mut req = BrokerRegistrationRequest {
            broker_id: BrokerId(1),
            cluster_id: "other".into(),
            incarnation_id: uuid::Uuid::nil(),
            listeners: vec![],
            rack: None,
        };
        assert!(register(&img, &req).is_err());
        req.cluster_id = "c1".into();
        assert_eq!(
            register(&img, &req).unwrap(),
            Registration::Existing(BrokerEpoch(1))
        );
        req.incarnation_id = uuid::Uuid::new_v4();
        let Registration::New(batch) = register(&img, &req).unwrap() else {
            panic!("new")
        };
        assert_eq!(batch.len(), 2);
    }

    #[test]
    fn periodic_fences_then_prefers() {
        let mut img = image_with_brokers(&[1, 2]);
        let t = add_topic(&mut img, "t", &[&[1, 2]]);
        let mut s = Sessions::new(100);
        s.reset(&img, 0);
        s.heartbeat(BrokerId(2), BrokerEpoch(1), MetadataOffset(0), 50);
        let (_, batch) = periodic(&img, &mut s, 120).unwrap();
        apply(&mut img, &batch);
        assert_eq!(
            img.partition(t, PartitionIndex(0)).unwrap().leader,
            Some(BrokerId(2))
        );
        assert!(periodic(&img, &mut s, 120).is_none());
        // Broker 1 returns and rejoins the ISR: leadership goes back to it.
        let mut p = img.partition(t, PartitionIndex(0)).unwrap().clone();
        p.isr.push(BrokerId(1));
        apply(
            &mut img,
            &[
                MetadataRecord::UnfenceBroker {
                    broker_id: BrokerId(1),
                    epoch: BrokerEpoch(1),
                },
                MetadataRecord::Partition(p),
            ],
        );
        s.heartbeat(BrokerId(1), BrokerEpoch(1), MetadataOffset(0), 120);
        let (label, batch) = periodic(&img, &mut s, 130).unwrap();
        assert_eq!(label, "preferred leader election");
        apply(&mut img, &batch);
        assert_eq!(
            img.partition(t, PartitionIndex(0)).unwrap().leader,
            Some(BrokerId(1))
        );
    }
}
