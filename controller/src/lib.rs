//! `gregor-controller`: one member of the KRaft-style metadata quorum.
//!
//! Three controllers run openraft over a replicated log of metadata batches. The Raft
//! leader is the **active controller**: it alone decides (broker sessions and fencing,
//! leader election from the ISR, replica placement, AlterPartition, topic admin) and writes
//! its decisions as batches; every controller applies committed batches to the same
//! [`protocol::control::MetadataImage`] and serves the metadata feed to brokers.
//!
//! Layout:
//! - [`config`] — flags (`GREGOR_*` env too) and `Config::validate`.
//! - [`meta_dir`] — `meta.properties` (cluster id and node id of the data dir).
//! - [`raft`] — openraft type config, durable log/vote ([`raft::log_store`]), the image state
//!   machine with snapshots ([`raft::state_machine`]), peer RPCs ([`raft::network`]),
//!   checksummed file frames ([`raft::frame_file`]).
//! - [`feed`] — the applied image, a window of recent batches, long-polled FetchMetadata.
//! - [`decide`] — pure decision logic (no I/O, logical time), unit-tested.
//! - [`failover`] — starts an election right after a silent leader's lease.
//! - [`active`] — the controller task that serializes decisions and writes them.
//! - [`server`] — the framed TCP listener shared by brokers and peer controllers.
//! - [`quorum`] — DescribeQuorum.
//! - [`client`] — `ControlClient` / `ControllerSet`, used by brokers, the CLI and peers.
//! - [`metrics`] — Prometheus metrics, served on `--metrics-listen`.
//!
//! [`run`] wires these together; `main.rs` only parses flags.

pub mod active;
pub mod client;
pub mod config;
pub mod decide;
pub mod failover;
pub mod feed;
pub mod meta_dir;
pub mod metrics;
pub mod quorum;
pub mod raft;
pub mod server;

use crate::active::{Controller, Settings, QUEUE_DEPTH};
use crate::config::Config;
use crate::decide::topics::TopicDefaults;
use crate::feed::Feed;
use crate::raft::log_store::LogStore;
use crate::raft::network::{Contacts, Network};
use crate::raft::state_machine::StateMachine;
use crate::raft::Raft;
use openraft::{BasicNode, SnapshotPolicy};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why the controller could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Meta(#[from] meta_dir::MetaError),
    #[error("cannot open the Raft storage in {dir}: {source}")]
    Storage { dir: String, source: std::io::Error },
    #[error("openraft refused its configuration: {0}")]
    RaftConfig(String),
    #[error("openraft failed: {0}")]
    Raft(String),
    #[error(transparent)]
    Metrics(#[from] ::metrics::http::BindError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

fn raft_config(config: &Config) -> Result<openraft::Config, ControllerError> {
    openraft::Config {
        cluster_name: config.cluster_id.clone(),
        heartbeat_interval: config.raft_heartbeat_ms,
        election_timeout_min: config.raft_election_timeout_ms,
        election_timeout_max: config.raft_election_timeout_ms * 2,
        install_snapshot_timeout: 5000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
        max_in_snapshot_log_to_keep: config.snapshot_every,
        replication_lag_threshold: config.snapshot_every.max(1000) * 2,
        ..Default::default()
    }
    .validate()
    .map_err(|e| ControllerError::RaftConfig(e.to_string()))
}

/// Runs one controller until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ControllerError> {
    config.validate()?;
    meta_dir::check_or_write(&config.data_dir, &config.cluster_id, config.node_id)?;
    let raft_dir = config.data_dir.join("raft");
    let storage_err = |source| ControllerError::Storage {
        dir: raft_dir.display().to_string(),
        source,
    };
    let feed = Feed::new(&config.cluster_id);
    let log = LogStore::open(&raft_dir).map_err(storage_err)?;
    let sm = StateMachine::open(&raft_dir, feed.clone()).map_err(storage_err)?;
    let contacts = Arc::new(Contacts::default());
    let network = Network {
        node_id: config.node_id,
        contacts: contacts.clone(),
    };
    let raft = Raft::new(
        config.node_id,
        Arc::new(raft_config(&config)?),
        network,
        log,
        sm,
    )
    .await
    .map_err(|e| ControllerError::Raft(e.to_string()))?;

    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| ControllerError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
    let metrics_listener = match &config.metrics_listen {
        Some(addr) => Some(::metrics::http::bind(addr).await?),
        None => None,
    };
    let voters: BTreeMap<u64, String> = config
        .voters
        .iter()
        .map(|v| (v.id, v.addr.clone()))
        .collect();
    tracing::info!(node_id = config.node_id, listen = %config.listen, voters = ?voters, "controller starting");

    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE_DEPTH);
    let settings = Settings {
        node_id: config.node_id,
        voters: voters.clone(),
        session_timeout_ms: config.broker_session_timeout_ms,
        defaults: TopicDefaults {
            partitions: config.default_partitions,
            replication_factor: config.default_replication_factor,
        },
    };
    let controller = tokio::spawn(Controller::new(raft.clone(), feed.clone(), settings).run(rx));
    // openraft's leader lease is the maximum election timeout.
    let lease = Duration::from_millis(config.raft_election_timeout_ms * 2);
    let leader_watch = Arc::new(failover::LeaderWatch::default());
    let voter_ids: Vec<u64> = voters.keys().copied().collect();
    let metrics_server = metrics_listener.map(|l| {
        let registry = crate::metrics::registry(raft.clone(), feed.clone(), voter_ids.clone());
        ::metrics::http::spawn(l, registry)
    });
    let failover = tokio::spawn(failover::watch(
        raft.clone(),
        leader_watch.clone(),
        config.node_id,
        voter_ids,
        lease,
    ));
    let node = Arc::new(server::Node {
        node_id: config.node_id,
        raft: raft.clone(),
        feed,
        contacts,
        voters: voters.clone(),
        commands: tx,
        quorum_lease: lease,
        leader_watch: leader_watch.clone(),
    });
    let server = tokio::spawn(server::serve(listener, node));
    let watcher = tokio::spawn(log_leadership(raft.clone()));

    // A stop asked for while the quorum is still being initialized (a slow disk) is
    // honoured at once.
    let mut shutdown = std::pin::pin!(shutdown);
    let mut stopping = false;
    if config.node_id == *voters.keys().next().expect("validated voters") {
        tokio::select! {
            r = initialize(&raft, &voters) => r?,
            () = &mut shutdown => stopping = true,
        }
    }
    if !stopping {
        shutdown.await;
    }
    tracing::info!(node_id = config.node_id, "controller shutting down");
    server.abort();
    controller.abort();
    watcher.abort();
    failover.abort();
    if let Some(m) = metrics_server {
        m.abort();
    }
    let _ = raft.shutdown().await;
    Ok(())
}

/// The lowest-id voter initializes a fresh cluster; a restart finds it initialized.
async fn initialize(raft: &Raft, voters: &BTreeMap<u64, String>) -> Result<(), ControllerError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| ControllerError::Raft(e.to_string()))?;
    if initialized {
        return Ok(());
    }
    let members: BTreeMap<u64, BasicNode> = voters
        .iter()
        .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
        .collect();
    match raft.initialize(members).await {
        Ok(()) => {
            tracing::info!(voters = ?voters.keys().collect::<Vec<_>>(), "initialized a new metadata quorum")
        }
        // Another path got there first (e.g. a vote arrived): nothing to do.
        Err(e) => tracing::info!(error = %e, "quorum initialization skipped"),
    }
    Ok(())
}

/// Logs elections and leadership changes as openraft reports them.
async fn log_leadership(raft: Raft) {
    let mut metrics = raft.metrics();
    let mut last: Option<(Option<u64>, u64)> = None;
    loop {
        let now = {
            let m = metrics.borrow_and_update();
            (m.current_leader, m.current_term)
        };
        if last != Some(now) {
            let (leader, term) = now;
            match leader {
                Some(l) => tracing::info!(leader = l, term, "quorum leader elected"),
                None => tracing::info!(term, "quorum has no leader (election in progress)"),
            }
            last = Some(now);
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// `gregor-controller healthcheck`: true iff the node at `addr` answers DescribeQuorum and
/// knows a leader.
pub async fn healthcheck(addr: &str, limit: Duration) -> bool {
    let mut client = client::ControlClient::new(addr);
    matches!(
        client.call(&protocol::control::ControlRequest::DescribeQuorum, limit).await,
        Ok(protocol::control::ControlResponse::DescribeQuorum(q)) if q.leader_id.is_some()
    )
}
