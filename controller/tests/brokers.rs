//! Broker registration, heartbeats, fencing and controlled shutdown over the wire, with
//! `ControlClient` playing the broker.

mod common;

use common::*;
use gregor_controller::client::ControllerSet;
use protocol::control::{
    BrokerHeartbeatRequest, BrokerHeartbeatResponse, ControlRequest, ControlResponse, MetadataImage,
};
use protocol::ids::{BrokerEpoch, BrokerId, MetadataOffset, PartitionIndex};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_gregor-controller");
const LONG: Duration = Duration::from_secs(20);

async fn heartbeat(
    set: &mut ControllerSet,
    b: i32,
    epoch: BrokerEpoch,
    offset: u64,
    want_shutdown: bool,
) -> BrokerHeartbeatResponse {
    let req = ControlRequest::BrokerHeartbeat(BrokerHeartbeatRequest {
        broker_id: BrokerId(b),
        broker_epoch: epoch,
        current_metadata_offset: MetadataOffset(offset),
        want_fence: false,
        want_shutdown,
    });
    match set
        .call_active(&req, Instant::now() + LONG)
        .await
        .expect("heartbeat")
    {
        ControlResponse::BrokerHeartbeat(r) => r,
        other => panic!("unexpected answer to heartbeat: {other:?}"),
    }
}

/// Polls the image from `addr` until `cond` holds.
async fn wait_image(
    addr: &str,
    cluster_id: &str,
    what: &str,
    cond: impl Fn(&MetadataImage) -> bool,
) -> MetadataImage {
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(img) = image_of(addr, cluster_id).await {
            if cond(&img) {
                return img;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn register_unfence_fence_on_silence_and_return() {
    let c = Cluster::start(
        Path::new(BIN),
        3,
        &[
            "--broker-session-timeout-ms",
            "3000",
            "--broker-heartbeat-interval-ms",
            "100",
        ],
    );
    c.wait_leader(None, LONG).await;
    let mut set = c.controllers();
    let e1 = register(&mut set, &c.cluster_id, 1, LONG).await;
    let e2 = register(&mut set, &c.cluster_id, 2, LONG).await;
    // Not caught up: stays fenced.
    let r = heartbeat(&mut set, 1, e1, 0, false).await;
    assert!(r.is_fenced && !r.is_caught_up);
    let r = heartbeat(&mut set, 1, e1, e2.0 as u64, false).await;
    assert!(!r.is_fenced && r.is_caught_up);
    let r = heartbeat(&mut set, 2, e2, e2.0 as u64, false).await;
    assert!(!r.is_fenced);
    create_ok(&mut set, &["t".to_string()], 2, LONG).await;
    let addr = c.addr(1);
    let img = wait_image(&addr, &c.cluster_id, "topic t", |i| {
        i.topic_by_name("t").is_some()
    })
    .await;
    let p = img.topic_by_name("t").unwrap().partitions[&PartitionIndex(0)].clone();
    assert_eq!(p.isr.len(), 2);
    let leader = p.leader.unwrap();
    // The leader goes silent; the other keeps heartbeating: the leader is fenced and leadership moves.
    let other = if leader == BrokerId(1) {
        (2, e2)
    } else {
        (1, e1)
    };
    let deadline = Instant::now() + LONG;
    let img = loop {
        heartbeat(&mut set, other.0, other.1, e2.0 as u64, false).await;
        let img = image_of(&addr, &c.cluster_id).await.unwrap();
        if img.brokers[&leader].fenced {
            break img;
        }
        assert!(Instant::now() < deadline, "silent broker was not fenced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let p2 = img.topic_by_name("t").unwrap().partitions[&PartitionIndex(0)].clone();
    assert_eq!(p2.leader, Some(BrokerId(other.0)));
    assert_eq!(p2.isr, vec![BrokerId(other.0)]);
    assert!(p2.leader_epoch > p.leader_epoch);
    // Controlled shutdown of the remaining leader: it is the last ISR member, so the
    // partition goes offline and the broker may stop.
    let r = heartbeat(&mut set, other.0, other.1, img.offset.0, true).await;
    assert!(!r.should_shutdown);
    let img = wait_image(&addr, &c.cluster_id, "shutting down", |i| {
        i.brokers[&BrokerId(other.0)].shutting_down
    })
    .await;
    let r = heartbeat(&mut set, other.0, other.1, img.offset.0, true).await;
    assert!(r.should_shutdown, "{r:?}");
    let p3 = img.topic_by_name("t").unwrap().partitions[&PartitionIndex(0)].clone();
    assert_eq!((p3.leader, p3.isr.clone()), (None, vec![BrokerId(other.0)]));
}

#[tokio::test]
async fn registration_with_wrong_cluster_id_is_refused() {
    let c = Cluster::start(Path::new(BIN), 1, &[]);
    c.wait_leader(None, LONG).await;
    let mut set = c.controllers();
    let req = ControlRequest::BrokerRegistration(protocol::control::BrokerRegistrationRequest {
        broker_id: BrokerId(1),
        cluster_id: "other".into(),
        incarnation_id: uuid::Uuid::new_v4(),
        listeners: vec![],
        rack: None,
    });
    match set.call_active(&req, Instant::now() + LONG).await.unwrap() {
        ControlResponse::BrokerRegistration(r) => assert_eq!(r.error, 104),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn alter_partition_over_the_wire() {
    use protocol::control::{AlterPartitionItem, AlterPartitionRequest, FetchMetadataRequest};
    // Sessions long enough that the silent test brokers are never fenced.
    let flags = [
        "--broker-session-timeout-ms",
        "600000",
        "--broker-heartbeat-interval-ms",
        "1000",
    ];
    let c = Cluster::start(Path::new(BIN), 3, &flags);
    c.wait_leader(None, LONG).await;
    let mut set = c.controllers();
    let e1 = register(&mut set, &c.cluster_id, 1, LONG).await;
    let e2 = register(&mut set, &c.cluster_id, 2, LONG).await;
    heartbeat(&mut set, 1, e1, e2.0 as u64, false).await;
    heartbeat(&mut set, 2, e2, e2.0 as u64, false).await;
    let mut t = protocol::control::NewTopic {
        name: "ap".into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: Some(vec![vec![BrokerId(1), BrokerId(2)]]),
        configs: Default::default(),
    };
    t.configs.insert("min.insync.replicas".into(), "1".into());
    let req = ControlRequest::CreateTopics(protocol::control::CreateTopicsRequest {
        topics: vec![t],
        validate_only: false,
    });
    set.call_active(&req, Instant::now() + LONG).await.unwrap();
    let img = wait_image(&c.addr(2), &c.cluster_id, "topic ap", |i| {
        i.topic_by_name("ap").is_some()
    })
    .await;
    let p = img.topic_by_name("ap").unwrap().partitions[&PartitionIndex(0)].clone();
    let alter = |partition_epoch, isr: Vec<i32>| {
        ControlRequest::AlterPartition(AlterPartitionRequest {
            broker_id: BrokerId(1),
            broker_epoch: e1,
            partitions: vec![AlterPartitionItem {
                topic_id: p.topic_id,
                partition: PartitionIndex(0),
                leader_epoch: p.leader_epoch,
                partition_epoch,
                new_isr: isr.into_iter().map(BrokerId).collect(),
            }],
        })
    };
    let resp = set
        .call_active(&alter(p.partition_epoch, vec![1]), Instant::now() + LONG)
        .await
        .unwrap();
    let ControlResponse::AlterPartition(r) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(r.partitions[0].error, 0);
    let shrunk = r.partitions[0].state.clone().unwrap();
    assert_eq!(shrunk.isr, vec![BrokerId(1)]);
    // The old partition epoch is refused.
    let resp = set
        .call_active(&alter(p.partition_epoch, vec![1, 2]), Instant::now() + LONG)
        .await
        .unwrap();
    let ControlResponse::AlterPartition(r) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(r.partitions[0].error, 95);
    // Any controller serves the change, and records the fetching broker as an observer.
    let fetch = ControlRequest::FetchMetadata(FetchMetadataRequest {
        broker_id: Some(BrokerId(2)),
        after: MetadataOffset(0),
        max_wait_ms: 0,
        max_bytes: 1 << 20,
    });
    let follower = gregor_controller::client::ControlClient::new(c.addr(3))
        .call(&fetch, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(matches!(follower, ControlResponse::FetchMetadata(_)));
    let q = describe(&c.addr(3)).await.unwrap();
    assert!(q.observers.iter().any(|o| o.replica_id == 2), "{q:?}");
}
