//! The controller's Prometheus metrics (see docs/operations.md, "Metrics"), all computed
//! when scraped: from openraft's metrics (role, term, log indexes, each voter's replication
//! on the leader) and from the applied metadata image (brokers, fencing, topics, offline
//! partitions).

use crate::feed::Feed;
use crate::raft::Raft;
use ::metrics::{Kind, Registry, Writer};
use protocol::control::MetadataImage;
use std::sync::Arc;

/// A registry whose collector describes this controller.
pub fn registry(raft: Raft, feed: Arc<Feed>, voter_ids: Vec<u64>) -> Arc<Registry> {
    let registry = Arc::new(Registry::new());
    registry.collector(move |w| {
        write_raft(w, &raft, &voter_ids);
        let applied = feed.applied().0;
        w.gauge(
            "controller_metadata_offset",
            "The metadata offset this controller has applied to its image.",
            applied as f64,
        );
        feed.with_image(|image| write_image(w, image));
    });
    registry
}

fn write_raft(w: &mut Writer, raft: &Raft, voter_ids: &[u64]) {
    let m = raft.metrics().borrow().clone();
    let active = m.current_leader == Some(m.id);
    w.gauge(
        "controller_active",
        "1 if this controller is the Raft leader (the active controller), else 0.",
        if active { 1.0 } else { 0.0 },
    );
    w.gauge(
        "controller_raft_term",
        "The current Raft term.",
        m.current_term as f64,
    );
    let last_log = m.last_log_index.unwrap_or(0);
    w.gauge(
        "controller_raft_last_log_index",
        "The index of the last entry in this controller's Raft log.",
        last_log as f64,
    );
    w.gauge(
        "controller_raft_applied_index",
        "The index of the last Raft entry applied to the state machine.",
        m.last_applied.map_or(0, |l| l.index) as f64,
    );
    if !active {
        return;
    }
    let Some(replication) = m.replication.as_ref() else {
        return;
    };
    let mut matched: Vec<u64> = Vec::with_capacity(voter_ids.len());
    w.family(
        "controller_voter_lag",
        "On the active controller: entries each voter's log is behind the leader's.",
        Kind::Gauge,
    );
    for id in voter_ids {
        let index = if *id == m.id {
            last_log
        } else {
            replication
                .get(id)
                .cloned()
                .flatten()
                .map_or(0, |l| l.index)
        };
        matched.push(index);
        let voter = id.to_string();
        w.sample(
            "controller_voter_lag",
            &[("voter", &voter)],
            last_log.saturating_sub(index) as f64,
        );
    }
    // The highest index a majority of voters holds.
    matched.sort_unstable_by(|a, b| b.cmp(a));
    if let Some(committed) = matched.get(voter_ids.len() / 2) {
        w.gauge(
            "controller_raft_committed_index",
            "On the active controller: the highest Raft index a majority of voters holds.",
            *committed as f64,
        );
    }
}

fn write_image(w: &mut Writer, image: &MetadataImage) {
    let fenced = image.brokers.values().filter(|b| b.fenced).count();
    let (mut partitions, mut offline) = (0u64, 0u64);
    for t in image.topics.values() {
        for p in t.partitions.values() {
            partitions += 1;
            if p.leader.is_none() {
                offline += 1;
            }
        }
    }
    w.gauge(
        "controller_registered_brokers",
        "Brokers registered in the metadata (fenced or not).",
        image.brokers.len() as f64,
    );
    w.gauge(
        "controller_fenced_brokers",
        "Registered brokers that are fenced.",
        fenced as f64,
    );
    w.gauge("controller_topics", "Topics.", image.topics.len() as f64);
    w.gauge(
        "controller_partitions",
        "Partitions of all topics.",
        partitions as f64,
    );
    w.gauge(
        "controller_offline_partitions",
        "Partitions without a leader.",
        offline as f64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::control::{BrokerImage, PartitionState, TopicImage};
    use protocol::ids::TopicId;
    use protocol::ids::{BrokerEpoch, BrokerId, LeaderEpoch, PartitionEpoch, PartitionIndex};

    #[test]
    fn image_counts() {
        let mut img = MetadataImage::new("c");
        for (id, fenced) in [(1, false), (2, true)] {
            img.brokers.insert(
                BrokerId(id),
                BrokerImage {
                    id: BrokerId(id),
                    epoch: BrokerEpoch(1),
                    incarnation_id: uuid::Uuid::nil(),
                    listeners: vec![],
                    rack: None,
                    fenced,
                    shutting_down: false,
                },
            );
        }
        let tid = TopicId(uuid::Uuid::nil());
        let part = |i: i32, leader: Option<i32>| PartitionState {
            topic_id: tid,
            partition: PartitionIndex(i),
            replicas: vec![BrokerId(1)],
            isr: vec![BrokerId(1)],
            leader: leader.map(BrokerId),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: PartitionEpoch(0),
        };
        img.topics.insert(
            tid,
            TopicImage {
                id: tid,
                name: "t".into(),
                partitions: [
                    (PartitionIndex(0), part(0, Some(1))),
                    (PartitionIndex(1), part(1, None)),
                ]
                .into(),
                configs: Default::default(),
            },
        );
        let mut w = Writer::new();
        write_image(&mut w, &img);
        let text = w.finish();
        for line in [
            "gregor_controller_registered_brokers 2\n",
            "gregor_controller_fenced_brokers 1\n",
            "gregor_controller_topics 1\n",
            "gregor_controller_partitions 2\n",
            "gregor_controller_offline_partitions 1\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
