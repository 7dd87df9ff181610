//! Controller failover figure: starts 3 controllers, kills the active one with SIGKILL ten
//! times (restarting it each time), and prints the time from the kill until a new active
//! controller commits a write, as median and max.
//!
//! ```text
//! cargo build --release -p gregor-controller
//! cargo run --release -p gregor-controller --example failover
//! ```
//! Extra arguments are passed to every controller, e.g.
//! `-- --raft-election-timeout-ms 300`.
//! The controller binary is taken from `GREGOR_CONTROLLER_BIN`, or from next to this
//! example's directory (`target/<profile>/gregor-controller`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use gregor_controller::client::ControlClient;
use protocol::control::{BrokerRegistrationRequest, ControlRequest, ControlResponse};
use protocol::ids::BrokerId;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

const KILLS: usize = 10;
const LIMIT: Duration = Duration::from_secs(30);

fn controller_bin() -> PathBuf {
    if let Ok(p) = std::env::var("GREGOR_CONTROLLER_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("gregor-controller");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release -p gregor-controller` first",
        bin.display()
    );
    bin
}

/// Tries the write on every running controller until one commits it.
async fn write_anywhere(c: &Cluster, broker: i32) -> Instant {
    let req = ControlRequest::BrokerRegistration(BrokerRegistrationRequest {
        broker_id: BrokerId(broker),
        cluster_id: c.cluster_id.clone(),
        incarnation_id: uuid::Uuid::new_v4(),
        listeners: vec![],
        rack: None,
    });
    let deadline = Instant::now() + LIMIT;
    let mut clients: Vec<ControlClient> = c
        .running()
        .into_iter()
        .map(|id| ControlClient::new(c.addr(id)))
        .collect();
    loop {
        for client in &mut clients {
            if let Ok(ControlResponse::BrokerRegistration(r)) =
                client.call(&req, Duration::from_millis(300)).await
            {
                if r.error == 0 {
                    return Instant::now();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no controller committed a write within {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_caught_up(c: &Cluster, id: u64, leader: u64) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let want = describe(&c.addr(leader)).await.map(|q| q.high_watermark);
        let have = describe(&c.addr(id)).await.map(|q| q.high_watermark);
        if want.is_some() && have >= want {
            return;
        }
        assert!(Instant::now() < deadline, "node {id} did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() {
    let extra: Vec<String> = std::env::args().skip(1).collect();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut c = Cluster::start(&controller_bin(), 3, &extra);
    let mut leader = c.wait_leader(None, LIMIT).await;
    write_anywhere(&c, 1).await;
    let mut times = Vec::new();
    for round in 0..KILLS {
        c.kill(leader);
        let killed = Instant::now();
        let done = write_anywhere(&c, round as i32 + 2).await;
        let took = done - killed;
        let new = c.wait_leader(Some(leader), LIMIT).await;
        println!("kill {:2}: controller {leader} killed, controller {new} active and committing after {:4} ms", round + 1, took.as_millis());
        times.push(took);
        c.start_node(leader);
        wait_caught_up(&c, leader, new).await;
        leader = new;
    }
    times.sort();
    let median = (times[KILLS / 2 - 1] + times[KILLS / 2]) / 2;
    println!(
        "controller failover over {KILLS} kills: median {} ms, max {} ms (target: median <= 1500 ms)",
        median.as_millis(),
        times.last().unwrap().as_millis()
    );
}
