//! Property test: any sequence of fencing, unfencing, controlled shutdowns and preferred
//! elections keeps every partition's invariants (ISR never empty, ISR within replicas, a
//! leader is an ISR member and usable, epochs only grow and every change bumps the
//! partition epoch).

use super::brokers::{fence, periodic, shutdown, unfence};
use super::sessions::Sessions;
use super::testutil::{add_topic, apply, image_with_brokers};
use super::usable;
use proptest::prelude::*;
use protocol::control::{MetadataImage, MetadataRecord};
use protocol::ids::BrokerId;

#[derive(Clone, Debug)]
enum Op {
    Fence(i32),
    Unfence(i32),
    Shutdown(i32),
    Prefer,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..=4i32).prop_map(Op::Fence),
        (1..=4i32).prop_map(Op::Unfence),
        (1..=4i32).prop_map(Op::Shutdown),
        Just(Op::Prefer),
    ]
}

fn batch_for(img: &MetadataImage, op: &Op) -> Vec<MetadataRecord> {
    let epoch = |b: i32| img.brokers[&BrokerId(b)].epoch;
    match *op {
        Op::Fence(b) if !img.brokers[&BrokerId(b)].fenced => fence(img, BrokerId(b), epoch(b)),
        Op::Unfence(b) if img.brokers[&BrokerId(b)].fenced => unfence(img, BrokerId(b), epoch(b)),
        Op::Shutdown(b) if usable(img, BrokerId(b)) => shutdown(img, BrokerId(b), epoch(b)),
        Op::Prefer => {
            // Sessions far in the future: only preferred elections happen.
            let mut s = Sessions::new(u64::MAX / 4);
            s.reset(img, 0);
            periodic(img, &mut s, 1).map(|(_, b)| b).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

fn check(before: &MetadataImage, after: &MetadataImage, batch: &[MetadataRecord]) {
    for rec in batch {
        let MetadataRecord::Partition(p) = rec else {
            continue;
        };
        let old = before
            .partition(p.topic_id, p.partition)
            .expect("existing partition");
        assert!(
            p.partition_epoch > old.partition_epoch,
            "partition epoch bumps"
        );
        assert!(
            p.leader_epoch >= old.leader_epoch,
            "leader epoch never drops"
        );
        assert_eq!(
            p.leader != old.leader,
            p.leader_epoch > old.leader_epoch,
            "leader epoch bumps iff leader changes"
        );
    }
    for t in after.topics.values() {
        for p in t.partitions.values() {
            assert!(!p.isr.is_empty(), "ISR never empty: {p:?}");
            assert!(
                p.isr.iter().all(|b| p.replicas.contains(b)),
                "ISR within replicas"
            );
            if let Some(l) = p.leader {
                assert!(p.isr.contains(&l), "leader in ISR: {p:?}");
                assert!(usable(after, l), "leader usable: {p:?}");
            }
        }
    }
}

proptest! {
    #[test]
    fn partition_invariants_hold(ops in proptest::collection::vec(op(), 1..40)) {
        let mut img = image_with_brokers(&[1, 2, 3, 4]);
        add_topic(&mut img, "a", &[&[1, 2, 3], &[2, 3, 4], &[4, 1]]);
        add_topic(&mut img, "b", &[&[3], &[1, 4, 2]]);
        for op in &ops {
            let batch = batch_for(&img, op);
            let before = img.clone();
            apply(&mut img, &batch);
            check(&before, &img, &batch);
        }
    }
}
