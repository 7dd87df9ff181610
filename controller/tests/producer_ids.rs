//! AllocateProducerIds against real controller processes: concurrent requests get disjoint
//! blocks, a stale broker epoch is refused, and blocks keep moving forward after every
//! controller restarts from its snapshot and log.

mod common;

use common::*;
use gregor_controller::client::ControllerSet;
use protocol::control::{AllocateProducerIdsResponse, PRODUCER_ID_BLOCK_SIZE};
use protocol::ids::{BrokerEpoch, BrokerId};
use protocol::kafka::ResponseError;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_gregor-controller");
const LONG: Duration = Duration::from_secs(20);

async fn allocate(
    set: &mut ControllerSet,
    b: i32,
    epoch: BrokerEpoch,
) -> AllocateProducerIdsResponse {
    set.allocate_producer_ids(BrokerId(b), epoch, Instant::now() + LONG)
        .await
        .expect("AllocateProducerIds")
}

/// `n` blocks for broker `b`, one request after another on its own connections.
async fn blocks(addrs: Vec<String>, b: i32, epoch: BrokerEpoch, n: usize) -> Vec<(i64, i64)> {
    let mut set = ControllerSet::new(&addrs);
    set.attempt_timeout = Duration::from_millis(500);
    let mut out = Vec::new();
    for _ in 0..n {
        let r = allocate(&mut set, b, epoch).await;
        assert_eq!(r.error, 0, "broker {b}: {r:?}");
        assert_eq!(r.producer_id_len, PRODUCER_ID_BLOCK_SIZE);
        out.push((
            r.producer_id_start,
            r.producer_id_start + i64::from(r.producer_id_len),
        ));
    }
    out
}

fn assert_disjoint(all: &[(i64, i64)]) {
    let mut sorted = all.to_vec();
    sorted.sort();
    for w in sorted.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "overlapping blocks {:?} and {:?}",
            w[0],
            w[1]
        );
    }
}

fn logs(c: &Cluster) -> Vec<String> {
    c.nodes.iter().map(|n| c.log(n.id)).collect()
}

#[tokio::test]
async fn blocks_are_disjoint_checked_and_survive_a_full_restart() {
    let mut c = Cluster::start(Path::new(BIN), 3, &["--snapshot-every", "5"]);
    c.wait_leader(None, LONG).await;
    let mut set = c.controllers();
    let e1 = register(&mut set, &c.cluster_id, 1, LONG).await;
    let e2 = register(&mut set, &c.cluster_id, 2, LONG).await;

    // Two brokers ask at the same time, each on its own connections.
    let (a, b) = tokio::join!(
        tokio::spawn(blocks(c.addrs(), 1, e1, 8)),
        tokio::spawn(blocks(c.addrs(), 2, e2, 8)),
    );
    let mut all: Vec<(i64, i64)> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    assert_disjoint(&all);
    assert_eq!(all.iter().map(|b| b.0).min(), Some(0));

    // A stale epoch and an unregistered broker are refused, and use up no ids.
    let stale = ResponseError::StaleBrokerEpoch.code();
    let r = allocate(&mut set, 1, BrokerEpoch(e1.0 + 1000)).await;
    assert_eq!(
        (r.error, r.producer_id_start, r.producer_id_len),
        (stale, -1, 0)
    );
    let r = allocate(&mut set, 9, e1).await;
    assert_eq!(r.error, stale);
    let next = all.iter().map(|b| b.1).max().unwrap();
    let r = allocate(&mut set, 1, e1).await;
    assert_eq!(r.producer_id_start, next, "refusals moved the next id");
    all.push((r.producer_id_start, r.producer_id_start + 1000));

    // Every controller has written a snapshot holding the next id (more than 5 entries).
    let deadline = Instant::now() + LONG;
    while !logs(&c)
        .iter()
        .all(|l| l.contains("wrote metadata snapshot"))
    {
        assert!(Instant::now() < deadline, "no snapshot on every controller");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in 1..=3 {
        c.kill(id);
    }
    for id in 1..=3 {
        c.start_node(id);
    }
    c.wait_leader(None, LONG).await;
    assert!(
        logs(&c)
            .iter()
            .any(|l| l.contains("loaded metadata snapshot")),
        "no controller restarted from a snapshot"
    );
    let mut set = c.controllers();
    let high = all.iter().map(|b| b.1).max().unwrap();
    // The registrations survived too: the same epochs are still current.
    let after = blocks(c.addrs(), 2, e2, 2).await;
    assert!(
        after.iter().all(|b| b.0 >= high),
        "{after:?} repeats ids below {high}"
    );
    all.extend(after);
    let r = allocate(&mut set, 1, e1).await;
    assert_eq!(r.error, 0);
    all.push((r.producer_id_start, r.producer_id_start + 1000));
    assert_disjoint(&all);
}
