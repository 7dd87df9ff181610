//! AlterPartition: a partition leader asks to change its ISR.
//!
//! Checked in Kafka's order: broker epoch (STALE_BROKER_EPOCH), the partition exists, the
//! sender leads it, leader epoch (FENCED_LEADER_EPOCH), partition epoch
//! (INVALID_UPDATE_VERSION), the new ISR is a set of replicas holding the leader
//! (INVALID_REQUEST), and every added member is unfenced and not shutting down
//! (INELIGIBLE_REPLICA).

use super::{code, usable};
use protocol::control::{
    AlterPartitionItem, AlterPartitionRequest, AlterPartitionResult, ErrorCode, MetadataBatch,
    MetadataImage, MetadataRecord, PartitionState,
};
use protocol::ids::BrokerId;
use protocol::kafka::ResponseError;
use std::collections::BTreeSet;

fn check(
    image: &MetadataImage,
    broker: BrokerId,
    item: &AlterPartitionItem,
) -> Result<PartitionState, (ErrorCode, Option<PartitionState>)> {
    let Some(state) = image.partition(item.topic_id, item.partition) else {
        return Err((code(ResponseError::UnknownTopicOrPartition), None));
    };
    let fail = |e: ResponseError| Err((code(e), Some(state.clone())));
    if state.leader != Some(broker) {
        return fail(ResponseError::NotLeaderOrFollower);
    }
    if item.leader_epoch != state.leader_epoch {
        return fail(ResponseError::FencedLeaderEpoch);
    }
    if item.partition_epoch != state.partition_epoch {
        return fail(ResponseError::InvalidUpdateVersion);
    }
    let set: BTreeSet<BrokerId> = item.new_isr.iter().copied().collect();
    if set.len() != item.new_isr.len()
        || !set.contains(&broker)
        || !set.iter().all(|b| state.replicas.contains(b))
    {
        return fail(ResponseError::InvalidRequest);
    }
    if item
        .new_isr
        .iter()
        .any(|b| !state.isr.contains(b) && !usable(image, *b))
    {
        return fail(ResponseError::IneligibleReplica);
    }
    let mut new = state.clone();
    // Keep replica order in the ISR, so equal sets compare equal.
    new.isr = state
        .replicas
        .iter()
        .copied()
        .filter(|b| set.contains(b))
        .collect();
    Ok(new)
}

/// Decides an AlterPartition request: the records to write and per-partition results (the
/// state in each result is what the partition will be once the records commit).
pub fn alter_partition(
    image: &MetadataImage,
    req: &AlterPartitionRequest,
) -> (MetadataBatch, Vec<AlterPartitionResult>) {
    let stale = image
        .brokers
        .get(&req.broker_id)
        .is_none_or(|b| b.epoch != req.broker_epoch);
    let mut batch = Vec::new();
    let mut results = Vec::new();
    for item in &req.partitions {
        let outcome = if stale {
            Err((code(ResponseError::StaleBrokerEpoch), None))
        } else {
            check(image, req.broker_id, item)
        };
        let (error, state) = match outcome {
            Ok(mut new) => {
                let old = image
                    .partition(item.topic_id, item.partition)
                    .expect("checked");
                if new.isr != old.isr {
                    new.partition_epoch = old.partition_epoch.next();
                    batch.push(MetadataRecord::Partition(new.clone()));
                }
                (0, Some(new))
            }
            Err((e, state)) => (e, state),
        };
        results.push(AlterPartitionResult {
            topic_id: item.topic_id,
            partition: item.partition,
            error,
            state,
        });
    }
    (batch, results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testutil::*;
    use protocol::ids::*;

    fn req(
        t: TopicId,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[i32],
        broker_epoch: i64,
    ) -> AlterPartitionRequest {
        AlterPartitionRequest {
            broker_id: BrokerId(1),
            broker_epoch: BrokerEpoch(broker_epoch),
            partitions: vec![AlterPartitionItem {
                topic_id: t,
                partition: PartitionIndex(0),
                leader_epoch: LeaderEpoch(leader_epoch),
                partition_epoch: PartitionEpoch(partition_epoch),
                new_isr: isr.iter().map(|&b| BrokerId(b)).collect(),
            }],
        }
    }

    #[test]
    fn shrink_then_checks() {
        let mut img = image_with_brokers(&[1, 2, 3]);
        let t = add_topic(&mut img, "t", &[&[1, 2, 3]]);
        let (batch, res) = alter_partition(&img, &req(t, 0, 0, &[1, 2], 1));
        assert_eq!(res[0].error, 0);
        assert_eq!(
            res[0].state.as_ref().unwrap().partition_epoch,
            PartitionEpoch(1)
        );
        apply(&mut img, &batch);
        let e = |img: &MetadataImage, r: AlterPartitionRequest| alter_partition(img, &r).1[0].error;
        assert_eq!(
            e(&img, req(t, 0, 0, &[1], 1)),
            code(ResponseError::InvalidUpdateVersion)
        );
        assert_eq!(
            e(&img, req(t, 1, 1, &[1], 1)),
            code(ResponseError::FencedLeaderEpoch)
        );
        assert_eq!(
            e(&img, req(t, 0, 1, &[1], 2)),
            code(ResponseError::StaleBrokerEpoch)
        );
        assert_eq!(
            e(&img, req(t, 0, 1, &[2], 1)),
            code(ResponseError::InvalidRequest)
        );
        assert_eq!(
            e(&img, req(t, 0, 1, &[1, 9], 1)),
            code(ResponseError::InvalidRequest)
        );
        // Broker 3 is fenced: it cannot rejoin.
        img.brokers.get_mut(&BrokerId(3)).unwrap().fenced = true;
        assert_eq!(
            e(&img, req(t, 0, 1, &[1, 2, 3], 1)),
            code(ResponseError::IneligibleReplica)
        );
        img.brokers.get_mut(&BrokerId(3)).unwrap().fenced = false;
        assert_eq!(e(&img, req(t, 0, 1, &[3, 1, 2], 1)), 0);
    }
}
