//! `gregor-broker`: parses flags (each also from `GREGOR_<NAME>`), sets up tracing and runs
//! the broker until SIGTERM or Ctrl-C. `gregor-broker healthcheck` probes a running broker.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use gregor_broker::config::build_listeners;
use gregor_broker::group_log;
use gregor_broker::Config;
use protocol::ids::BrokerId;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "gregor-broker",
    version,
    about = "Gregor broker: Kafka API server and data plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Exit 0 iff the broker at --addr answers and is registered and unfenced.
    Healthcheck {
        #[arg(
            long,
            env = "GREGOR_HEALTHCHECK_ADDR",
            default_value = "127.0.0.1:9092"
        )]
        addr: String,
        /// The broker's id; default: any broker advertising --addr's port.
        #[arg(long, env = "GREGOR_NODE_ID")]
        node_id: Option<i32>,
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// This broker's id.
    #[arg(long, env = "GREGOR_NODE_ID")]
    node_id: Option<i32>,
    /// Listeners: NAME://ip:port,... (e.g. INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:19092).
    #[arg(long, env = "GREGOR_LISTENERS")]
    listeners: Option<String>,
    /// Addresses given to clients per listener: NAME://host:port,... (default: the bind address).
    #[arg(long, env = "GREGOR_ADVERTISED_LISTENERS")]
    advertised_listeners: Option<String>,
    /// The listener other brokers use (default: the first listener).
    #[arg(long, env = "GREGOR_INTER_BROKER_LISTENER")]
    inter_broker_listener: Option<String>,
    /// Controllers' control-protocol addresses: host:port,...
    #[arg(long, env = "GREGOR_CONTROLLERS")]
    controllers: Option<String>,
    /// Directory holding the partition logs.
    #[arg(long, env = "GREGOR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Rack id reported in metadata.
    #[arg(long, env = "GREGOR_RACK")]
    rack: Option<String>,
    /// Cluster id; must match the controllers'.
    #[arg(long, env = "GREGOR_CLUSTER_ID")]
    cluster_id: Option<String>,
    #[arg(long, env = "GREGOR_HEARTBEAT_INTERVAL_MS", default_value_t = 200)]
    heartbeat_interval_ms: u64,
    /// Create unknown topics on Metadata requests that allow it.
    #[arg(long, env = "GREGOR_AUTO_CREATE_TOPICS", default_value_t = false)]
    auto_create_topics: bool,
    #[arg(long, env = "GREGOR_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Requests a connection may have in flight (pipelined) at once.
    #[arg(long, env = "GREGOR_MAX_INFLIGHT_REQUESTS", default_value_t = 32)]
    max_inflight_requests: usize,
    #[arg(long, env = "GREGOR_MAX_FRAME_BYTES", default_value_t = 100 * 1024 * 1024)]
    max_frame_bytes: usize,
    /// A follower lagging longer than this leaves the ISR (Kafka: 30000; Gregor: 2000).
    #[arg(long, env = "GREGOR_REPLICA_LAG_TIME_MAX_MS", default_value_t = 2000)]
    replica_lag_time_max_ms: u64,
    /// How long a forwarded admin request waits for its change to reach this broker.
    #[arg(long, env = "GREGOR_METADATA_MAX_WAIT_MS", default_value_t = 10_000)]
    metadata_max_wait_ms: u64,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics (default: no metrics endpoint).
    #[arg(long, env = "GREGOR_METRICS_LISTEN", value_name = "HOST:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Partitions of `__consumer_offsets`, created with the first group (Kafka:
    /// offsets.topic.num.partitions, 50). Use the same value on every broker.
    #[arg(long, env = "GREGOR_OFFSETS_TOPIC_PARTITIONS", default_value_t = group_log::DEFAULT_OFFSETS_PARTITIONS)]
    offsets_topic_partitions: i32,
    /// Compact a `__consumer_offsets` partition this broker leads once it holds this many
    /// records since its start and its last compaction (at least 100).
    #[arg(long, env = "GREGOR_OFFSETS_COMPACT_AFTER_RECORDS", default_value_t = group_log::COMPACT_AFTER_RECORDS)]
    offsets_compact_after_records: i64,
    /// Threads serving requests (default: one per CPU core). Several brokers sharing a
    /// small machine may do better with their share of the cores each.
    #[arg(long, env = "GREGOR_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    worker_threads: Option<u16>,
}

fn required<T>(v: Option<T>, flag: &str) -> anyhow::Result<T> {
    v.with_context(|| {
        format!(
            "--{flag} (or GREGOR_{}) is required",
            flag.to_uppercase().replace('-', "_")
        )
    })
}

fn config(a: RunArgs) -> anyhow::Result<Config> {
    let node_id = required(a.node_id, "node-id")?;
    let listeners = build_listeners(
        &required(a.listeners, "listeners")?,
        a.advertised_listeners.as_deref(),
    )?;
    let controllers: Vec<String> = required(a.controllers, "controllers")?
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = controllers.iter().find(|c| {
        c.rsplit_once(':')
            .is_none_or(|(_, p)| p.parse::<u16>().is_err())
    }) {
        anyhow::bail!("--controllers: `{bad}` is not host:port");
    }
    let config = Config {
        node_id: BrokerId(node_id),
        inter_broker_listener: a
            .inter_broker_listener
            .unwrap_or_else(|| listeners[0].name.clone()),
        listeners,
        controllers,
        data_dir: required(a.data_dir, "data-dir")?,
        rack: a.rack,
        cluster_id: required(a.cluster_id, "cluster-id")?,
        heartbeat_interval: Duration::from_millis(a.heartbeat_interval_ms),
        auto_create_topics: a.auto_create_topics,
        max_connections: a.max_connections,
        max_inflight_requests: a.max_inflight_requests,
        max_frame_bytes: a.max_frame_bytes,
        replica_lag_time_max: Duration::from_millis(a.replica_lag_time_max_ms),
        metadata_max_wait: Duration::from_millis(a.metadata_max_wait_ms),
        metrics_listen: a.metrics_listen,
        offsets_topic_partitions: a.offsets_topic_partitions,
        offsets_compact_after_records: a.offsets_compact_after_records,
    };
    config.validate()?;
    Ok(config)
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Raises the soft limit of open files to the hard limit: every partition keeps its
/// active segment and up to `max_mapped_segments` older ones open (fetches send from the
/// files), as Kafka keeps its segment files open, and a default soft limit of 1024 is
/// reached with a few hundred partitions.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    // `None` is no limit.
    let below_hard = match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) => soft < hard,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!("cannot raise the open files limit: {e}");
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.run.worker_threads {
        builder.worker_threads(usize::from(n));
    }
    raise_open_files_limit();
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        match cli.command {
            Some(Command::Healthcheck {
                addr,
                node_id,
                timeout_ms,
            }) => {
                gregor_broker::healthcheck::check(
                    &addr,
                    node_id,
                    Duration::from_millis(timeout_ms),
                )
                .await?;
                Ok(())
            }
            None => {
                let config = config(cli.run)?;
                gregor_broker::run(config, terminated()).await?;
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
