//! The metadata quorum with real controller processes.

mod common;

use common::*;
use protocol::control::{ControlRequest, ControlResponse};
use protocol::ids::BrokerId;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_gregor-controller");
const LONG: Duration = Duration::from_secs(20);

async fn wait_same_images(
    c: &Cluster,
    ids: &[u64],
    limit: Duration,
) -> protocol::control::MetadataImage {
    let deadline = Instant::now() + limit;
    loop {
        let mut images = Vec::new();
        for &id in ids {
            images.push(image_of(&c.addr(id), &c.cluster_id).await);
        }
        if let Some(Some(first)) = images.first() {
            if images.iter().all(|i| {
                i.as_ref().map(|i| (&i.brokers, &i.topics)) == Some((&first.brokers, &first.topics))
            }) {
                return first.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "images did not converge within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn three_controllers_elect_and_apply_the_same_batches_in_order() {
    let c = Cluster::start(Path::new(BIN), 3, &[]);
    let leader = c.wait_leader(None, LONG).await;
    assert!((1..=3).contains(&leader));
    let mut set = c.controllers();
    for b in 1..=5 {
        register(&mut set, &c.cluster_id, b, LONG).await;
    }
    // Every controller serves the same batches at the same offsets.
    let deadline = Instant::now() + LONG;
    loop {
        let mut feeds = Vec::new();
        for id in 1..=3 {
            feeds.push(fetch(&c.addr(id), 0).await.map(|r| r.batches));
        }
        let first = feeds[0].clone();
        if first.as_ref().is_some_and(|b| b.len() >= 5) && feeds.iter().all(|f| *f == first) {
            break;
        }
        assert!(Instant::now() < deadline, "feeds differ: {feeds:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Non-active controllers refuse writes, naming the active one.
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let req = ControlRequest::DeleteTopics(protocol::control::DeleteTopicsRequest {
        names: vec![],
        ids: vec![],
    });
    let resp = gregor_controller::client::ControlClient::new(c.addr(follower))
        .call(&req, Duration::from_secs(2))
        .await
        .unwrap();
    match resp {
        ControlResponse::Error(e) => {
            assert_eq!(e.code, 41);
            assert_eq!(e.leader.unwrap().addr, c.addr(leader));
        }
        other => panic!("expected NOT_CONTROLLER, got {other:?}"),
    }
    let q = describe(&c.addr(leader)).await.unwrap();
    assert_eq!(q.voters.len(), 3);
    assert!(q.high_watermark >= 6);
}

#[tokio::test]
async fn kill_active_then_restarted_node_catches_up_through_a_snapshot() {
    let mut c = Cluster::start(Path::new(BIN), 3, &["--snapshot-every", "5"]);
    let old = c.wait_leader(None, LONG).await;
    let mut set = c.controllers();
    for b in 1..=3 {
        register(&mut set, &c.cluster_id, b, LONG).await;
    }
    c.kill(old);
    let new = c.wait_leader(Some(old), LONG).await;
    assert_ne!(new, old);
    // Far more entries than the log keeps behind a snapshot.
    for b in 4..=30 {
        register(&mut set, &c.cluster_id, b, LONG).await;
    }
    let img = image_of(&c.addr(new), &c.cluster_id).await.unwrap();
    for b in 1..=30 {
        assert!(
            img.brokers.contains_key(&BrokerId(b)),
            "broker {b} lost after failover"
        );
    }
    c.start_node(old);
    let all = wait_same_images(&c, &[1, 2, 3], LONG).await;
    assert_eq!(all.brokers.len(), 30);
    assert!(
        c.log(old).contains("installed metadata snapshot"),
        "restarted node did not install a snapshot:\n{}",
        c.log(old)
    );
}

#[tokio::test]
async fn a_lone_controller_cannot_commit() {
    let mut c = Cluster::start(Path::new(BIN), 3, &[]);
    let leader = c.wait_leader(None, LONG).await;
    let mut set = c.controllers();
    register(&mut set, &c.cluster_id, 1, LONG).await;
    for id in 1..=3 {
        if id != leader {
            c.kill(id);
        }
    }
    let before = fetch(&c.addr(leader), 0).await.unwrap().batches.len();
    let mut lone = gregor_controller::client::ControllerSet::new(&[c.addr(leader)]);
    lone.attempt_timeout = Duration::from_secs(8);
    let req = ControlRequest::BrokerRegistration(protocol::control::BrokerRegistrationRequest {
        broker_id: BrokerId(2),
        cluster_id: c.cluster_id.clone(),
        incarnation_id: uuid::Uuid::new_v4(),
        listeners: vec![],
        rack: None,
    });
    let resp = lone
        .call_active(&req, Instant::now() + Duration::from_secs(8))
        .await;
    assert!(
        !matches!(resp, Ok(ControlResponse::BrokerRegistration(ref r)) if r.error == 0),
        "a lone controller committed a write: {resp:?}"
    );
    assert_eq!(
        fetch(&c.addr(leader), 0).await.unwrap().batches.len(),
        before
    );
}
