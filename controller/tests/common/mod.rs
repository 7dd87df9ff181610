//! A local cluster of real `gregor-controller` processes for tests and the failover figure.
//!
//! Every process binds a free loopback port, writes its log to a file in the cluster's
//! temp dir, and is killed when the [`Cluster`] drops. Waits poll with deadlines.
#![allow(dead_code)]

use gregor_controller::client::{ControlClient, ControllerSet};
use protocol::control::{
    ControlRequest, ControlResponse, CreateTopicsRequest, FetchMetadataRequest,
    FetchMetadataResponse, MetadataImage, NewTopic, QuorumStatus, TopicConfigs,
};
use protocol::ids::MetadataOffset;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One controller process.
#[derive(Debug)]
pub struct Node {
    pub id: u64,
    pub addr: String,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
}

/// Controllers of one cluster; kills them all on drop.
#[derive(Debug)]
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    bin: PathBuf,
    voters: String,
    extra: Vec<String>,
    pub cluster_id: String,
}

impl Cluster {
    /// Starts `n` controllers with `extra` flags.
    pub fn start(bin: &Path, n: u64, extra: &[&str]) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("gregor-controllers")
            .tempdir()
            .unwrap();
        let nodes: Vec<Node> = (1..=n)
            .map(|id| Node {
                id,
                addr: format!("127.0.0.1:{}", free_port()),
                data_dir: dir.path().join(format!("c{id}")),
                log_path: dir.path().join(format!("c{id}.log")),
                child: None,
            })
            .collect();
        let voters = nodes
            .iter()
            .map(|n| format!("{}@{}", n.id, n.addr))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = Cluster {
            dir,
            nodes,
            bin: bin.to_path_buf(),
            voters,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            cluster_id: "test-cluster".into(),
        };
        for id in 1..=n {
            c.start_node(id);
        }
        c
    }

    fn node(&mut self, id: u64) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).expect("node id")
    }

    /// (Re)starts node `id` with its data dir.
    pub fn start_node(&mut self, id: u64) {
        let (bin, voters, extra, cluster_id) = (
            self.bin.clone(),
            self.voters.clone(),
            self.extra.clone(),
            self.cluster_id.clone(),
        );
        let node = self.node(id);
        assert!(node.child.is_none(), "node {id} already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .unwrap();
        let child = Command::new(bin)
            .arg("--node-id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(&node.addr)
            .arg("--voters")
            .arg(&voters)
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--cluster-id")
            .arg(&cluster_id)
            .args(&extra)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn gregor-controller");
        node.child = Some(child);
    }

    /// kill -9 of node `id`.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.node(id).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn addr(&self, id: u64) -> String {
        self.nodes.iter().find(|n| n.id == id).unwrap().addr.clone()
    }

    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(&self.nodes.iter().find(|n| n.id == id).unwrap().log_path)
            .unwrap_or_default()
    }

    pub fn controllers(&self) -> ControllerSet {
        let mut set = ControllerSet::new(&self.addrs());
        set.attempt_timeout = Duration::from_millis(500);
        set
    }

    /// Waits until every running node reports the same leader, not in `exclude`.
    pub async fn wait_leader(&self, exclude: Option<u64>, limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        loop {
            let mut leaders = Vec::new();
            for id in self.running() {
                leaders.push(
                    describe(&self.addr(id))
                        .await
                        .and_then(|q| q.leader_id)
                        .map(|l| l.0),
                );
            }
            if let Some(Some(l)) = leaders.first() {
                if leaders.iter().all(|x| *x == Some(*l)) && Some(*l) != exclude {
                    return *l;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader within {limit:?}: {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// DescribeQuorum of one node, `None` when it does not answer.
pub async fn describe(addr: &str) -> Option<QuorumStatus> {
    match ControlClient::new(addr)
        .call(&ControlRequest::DescribeQuorum, Duration::from_millis(500))
        .await
    {
        Ok(ControlResponse::DescribeQuorum(q)) => Some(q),
        _ => None,
    }
}

/// One FetchMetadata call.
pub async fn fetch(addr: &str, after: u64) -> Option<FetchMetadataResponse> {
    let req = ControlRequest::FetchMetadata(FetchMetadataRequest {
        broker_id: None,
        after: MetadataOffset(after),
        max_wait_ms: 0,
        max_bytes: 64 << 20,
    });
    match ControlClient::new(addr)
        .call(&req, Duration::from_secs(2))
        .await
    {
        Ok(ControlResponse::FetchMetadata(r)) => Some(r),
        _ => None,
    }
}

/// The image a broker following `addr` from scratch would build.
pub async fn image_of(addr: &str, cluster_id: &str) -> Option<MetadataImage> {
    let mut img = MetadataImage::new(cluster_id);
    loop {
        let r = fetch(addr, img.offset.0).await?;
        if let Some(s) = r.snapshot {
            img = s;
            continue;
        }
        if r.batches.is_empty() {
            return Some(img);
        }
        for (o, b) in &r.batches {
            img.apply_batch(*o, b);
        }
    }
}

/// A CreateTopics request for single-partition topics.
pub fn create_topics(names: &[String], rf: i16) -> ControlRequest {
    ControlRequest::CreateTopics(CreateTopicsRequest {
        topics: names
            .iter()
            .map(|n| NewTopic {
                name: n.clone(),
                num_partitions: 1,
                replication_factor: rf,
                assignments: None,
                configs: TopicConfigs::new(),
            })
            .collect(),
        validate_only: false,
    })
}

/// Creates topics through the active controller; panics unless all succeed.
pub async fn create_ok(set: &mut ControllerSet, names: &[String], rf: i16, limit: Duration) {
    let resp = set
        .call_active(&create_topics(names, rf), Instant::now() + limit)
        .await
        .expect("create topics");
    match resp {
        ControlResponse::CreateTopics(results) => {
            for r in results {
                assert_eq!(r.error, 0, "create {}: {:?}", r.name, r.message);
            }
        }
        other => panic!("unexpected answer to CreateTopics: {other:?}"),
    }
}

/// Registers broker `id` (a fresh incarnation, so it always writes a batch); returns its epoch.
pub async fn register(
    set: &mut ControllerSet,
    cluster_id: &str,
    id: i32,
    limit: Duration,
) -> protocol::ids::BrokerEpoch {
    let req = ControlRequest::BrokerRegistration(protocol::control::BrokerRegistrationRequest {
        broker_id: protocol::ids::BrokerId(id),
        cluster_id: cluster_id.into(),
        incarnation_id: uuid::Uuid::new_v4(),
        listeners: vec![protocol::control::Endpoint {
            listener: "INTERNAL".into(),
            host: "127.0.0.1".into(),
            port: 9092,
        }],
        rack: None,
    });
    match set
        .call_active(&req, Instant::now() + limit)
        .await
        .expect("register")
    {
        ControlResponse::BrokerRegistration(r) if r.error == 0 => r.broker_epoch,
        other => panic!("unexpected answer to BrokerRegistration: {other:?}"),
    }
}
