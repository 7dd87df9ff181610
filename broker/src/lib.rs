//! `gregor-broker`: the Kafka API server and data plane of a Gregor cluster.
//!
//! ```text
//!  server.rs ──accept──> connection.rs ──frames──> api/mod.rs ──> api/<one file per API>.rs
//!                                                      │                │
//!        metadata/follower.rs ──image──> broker.rs <───┘   partition/ (logs, roles, HW)
//!        metadata/lifecycle.rs (register, heartbeat,        purgatory.rs (waiting requests)
//!                               controlled shutdown)
//! ```
//!
//! - [`config`]: flags turned into a checked [`config::Config`].
//! - [`broker`]: the state shared by connections and background tasks.
//! - [`server`] / [`connection`]: listeners, bounded connections, pipelined in-order replies;
//!   [`send`]: replies onto the socket (vectored writes, `sendfile` for record data).
//! - [`api`]: dispatch and one module per Kafka API.
//! - [`partition`]: replicas, their logs and roles; the leader's replication state machine.
//! - [`group_log`]: the group coordinator's `__consumer_offsets` log over the partitions,
//!   its creation, leadership changes and compaction.
//! - [`replication`]: follower fetchers, truncation on becoming follower, ISR changes.
//! - [`purgatory`]: fetch long-polls and acks=all produces waiting with deadlines.
//! - [`producer_ids`]: producer ids for InitProducerId, in blocks from the controller.
//! - [`metadata`]: the metadata feed follower and the registration/heartbeat lifecycle.
//! - [`healthcheck`]: the `gregor-broker healthcheck` probe.
//! - [`metrics`]: Prometheus metrics, served on `--metrics-listen`.
//!
//! [`run`] starts everything and performs a controlled shutdown when `shutdown` completes.

pub mod api;
pub mod broker;
pub mod config;
pub mod connection;
pub mod group_log;
pub mod healthcheck;
pub mod metadata;
pub mod metrics;
pub mod partition;
pub mod producer_ids;
pub mod purgatory;
pub mod replication;
pub mod send;
pub mod server;

pub use config::Config;

use broker::{now_ms, Broker};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch, Semaphore};

/// How long open connections get to finish after the listeners stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Interval of log housekeeping (time-based rolls, retention, flushes).
const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot create the data directory {path}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Metrics(#[from] ::metrics::http::BindError),
    #[error("cannot start the heartbeat thread")]
    Thread(#[source] std::io::Error),
    #[error("cannot listen on {addr} ({name})")]
    Bind {
        name: String,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Runs a broker until `shutdown` completes, then shuts down in a controlled way:
/// leadership is moved away (heartbeats with want_shutdown), connections drain, and the
/// logs are closed cleanly.
pub async fn run(mut config: Config, shutdown: impl Future) -> Result<(), RunError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| RunError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let mut listeners = Vec::new();
    for l in &mut config.listeners {
        let tcp = TcpListener::bind(l.bind)
            .await
            .map_err(|source| RunError::Bind {
                name: l.name.clone(),
                addr: l.bind,
                source,
            })?;
        if let Ok(local) = tcp.local_addr() {
            if l.advertised_port == 0 {
                l.advertised_port = local.port();
            }
            tracing::info!(
                "listener {} on {local}, advertised as {}:{}",
                l.name,
                l.advertised_host,
                l.advertised_port
            );
        }
        listeners.push((tcp, Arc::<str>::from(l.name.as_str())));
    }
    let metrics_listener = match &config.metrics_listen {
        Some(addr) => Some(::metrics::http::bind(&addr.to_string()).await?),
        None => None,
    };
    let broker = Arc::new(Broker::new(config));
    crate::metrics::install_collector(&broker);
    let metrics_server =
        metrics_listener.map(|l| ::metrics::http::spawn(l, broker.metrics.registry.clone()));
    group_log::start(&broker);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (shutdown_req_tx, shutdown_req_rx) = watch::channel(false);

    let follower = tokio::spawn(metadata::follower::run(broker.clone(), stop_rx.clone()));
    let lifecycle = spawn_dedicated(
        "gregor-heartbeat",
        metadata::lifecycle::run(broker.clone(), shutdown_req_rx),
    )
    .map_err(RunError::Thread)?;
    let replication = tokio::spawn(replication::run(broker.clone(), stop_rx.clone()));
    let ticker = tokio::spawn(housekeeping(broker.clone(), stop_rx));

    let (notify_shutdown, _) = broadcast::channel(1);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let connections = Arc::new(Semaphore::new(broker.config.max_connections));
    for (tcp, name) in listeners {
        tokio::spawn(server::serve(
            tcp,
            name,
            broker.clone(),
            connections.clone(),
            notify_shutdown.clone(),
            done_tx.clone(),
        ));
    }
    drop(done_tx);

    shutdown.await;
    tracing::info!("shutting down broker {}", broker.config.node_id);
    let _ = shutdown_req_tx.send(true);
    // Keep serving while the controller moves leadership away.
    let _ = lifecycle.await;
    let _ = notify_shutdown.send(());
    drop(notify_shutdown);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, done_rx.recv()).await;
    let _ = stop_tx.send(true);
    let _ = follower.await;
    let _ = ticker.await;
    let _ = replication.await;
    if let Some(m) = metrics_server {
        m.abort();
    }
    let b = broker.clone();
    let _ = tokio::task::spawn_blocking(move || b.partitions.close_all()).await;
    tracing::info!("broker {} stopped", broker.config.node_id);
    Ok(())
}

/// Runs `fut` on its own OS thread with a single-threaded runtime, so that request work
/// keeping the shared workers busy never delays it. The broker's registration and
/// heartbeats run there: the controller fences a broker it has not heard from within the
/// session timeout (1 s by default). The receiver resolves when `fut` ends.
fn spawn_dedicated(
    name: &str,
    fut: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    let (done, finished) = tokio::sync::oneshot::channel();
    let thread = name.to_string();
    std::thread::Builder::new()
        .name(thread.clone())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(fut),
                Err(e) => tracing::error!("{thread}: cannot build its runtime: {e}"),
            }
            let _ = done.send(());
        })?;
    Ok(finished)
}

async fn housekeeping(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TICK_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return,
        }
        let b = broker.clone();
        let _ = tokio::task::spawn_blocking(move || b.partitions.tick(now_ms())).await;
    }
}
