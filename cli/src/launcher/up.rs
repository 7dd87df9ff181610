//! `gregor cluster up`: lay out, start and wait for a local cluster; in the foreground,
//! stop it again on Ctrl-C or SIGTERM.

use super::plan::{plan, random_cluster_id, PlanInput};
use super::process::{live_pid, spawn_node, stop_cluster};
use super::ready::wait_ready;
use crate::cluster_file::{ClusterFile, Role, METRICS_ADDRESS};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

/// Options of `gregor cluster up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Number of controllers (the Raft quorum).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub controllers: u32,
    /// Number of brokers.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub brokers: u32,
    /// Start the nodes, wait until the cluster is ready, and return (nodes keep running).
    #[arg(long)]
    pub detach: bool,
    /// Where gregor-controller and gregor-broker are (default: next to this executable,
    /// then PATH).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// The cluster id (default: a fresh random one).
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// How long to wait for the quorum and the brokers, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    /// Remove the node directories of a previous cluster in DIR and start a new cluster.
    #[arg(long)]
    pub fresh: bool,
}

/// Grace period between SIGTERM and SIGKILL when stopping nodes.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

pub async fn run(dir: &Path, args: &UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let mut file = match ClusterFile::load_if_exists(&dir)? {
        Some(old) => reuse_or_replace(&dir, old, args)?,
        None => new_cluster(&dir, args)?,
    };

    let mut children = Vec::new();
    let started = start_all(&mut file, &mut children);
    file.save(&dir)?;
    let result = match started {
        Ok(()) => {
            let limit = Duration::from_secs(args.timeout_secs);
            // A Ctrl-C while waiting must not leave nodes running without a cluster file
            // anyone looks at: treat it as a failed start.
            tokio::select! {
                r = wait_ready(&file, &mut children, limit) => r,
                r = wait_for_shutdown_signal() => r.and_then(|_| Err(anyhow::anyhow!("interrupted"))),
            }
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        eprintln!("cluster did not come up; stopping the nodes that started");
        let _ = stop_cluster(&file.nodes, &mut children, STOP_GRACE);
        return Err(e);
    }
    print_summary(&dir, &file);
    if args.detach {
        return Ok(());
    }
    println!("running in the foreground; Ctrl-C stops every node");
    wait_for_shutdown_signal().await?;
    println!("stopping the cluster");
    // Reload: `gregor cluster start` may have restarted nodes under new pids meanwhile.
    let current = ClusterFile::load(&dir).unwrap_or(file);
    let killed = stop_cluster(&current.nodes, &mut children, STOP_GRACE)?;
    if !killed.is_empty() {
        println!("killed after the grace period: {}", killed.join(", "));
    }
    println!("stopped");
    Ok(())
}

/// A previous cluster in `dir`: restart it when none of its nodes runs, or start over with
/// `--fresh`.
fn reuse_or_replace(dir: &Path, old: ClusterFile, args: &UpArgs) -> anyhow::Result<ClusterFile> {
    let running: Vec<_> = old
        .nodes
        .iter()
        .filter(|n| live_pid(n).is_some())
        .map(|n| n.name.clone())
        .collect();
    if !running.is_empty() {
        bail!(
            "a cluster is already running in {} (nodes up: {}); stop it with `gregor cluster down --dir {}`",
            dir.display(),
            running.join(", "),
            dir.display()
        );
    }
    if args.fresh {
        for node in &old.nodes {
            let node_dir = dir.join(&node.name);
            if node_dir.exists() {
                std::fs::remove_dir_all(&node_dir)
                    .with_context(|| format!("cannot remove {}", node_dir.display()))?;
            }
        }
        return new_cluster(dir, args);
    }
    println!(
        "restarting the existing cluster {} in {} with its data (use --fresh to start over)",
        old.cluster_id,
        dir.display()
    );
    Ok(old)
}

fn new_cluster(dir: &Path, args: &UpArgs) -> anyhow::Result<ClusterFile> {
    let controller_bin = find_binary(Role::Controller.binary_name(), args.bin_dir.as_deref())?;
    let broker_bin = find_binary(Role::Broker.binary_name(), args.bin_dir.as_deref())?;
    let ports = free_ports(PlanInput::ports_needed(args.controllers, args.brokers))?;
    Ok(plan(&PlanInput {
        dir: dir.to_path_buf(),
        cluster_id: args.cluster_id.clone().unwrap_or_else(random_cluster_id),
        controllers: args.controllers,
        brokers: args.brokers,
        controller_bin,
        broker_bin,
        ports,
    }))
}

/// Starts controllers first, then brokers (the order of the file), recording their pids.
fn start_all(file: &mut ClusterFile, children: &mut Vec<Child>) -> anyhow::Result<()> {
    for node in file.nodes.iter_mut() {
        let child = spawn_node(node)?;
        node.pid = Some(child.id());
        children.push(child);
    }
    Ok(())
}

/// Finds a node binary: `--bin-dir`, else next to the running executable, else PATH.
pub fn find_binary(name: &str, bin_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(d) = bin_dir {
        let p = d.join(name);
        if p.is_file() {
            return p
                .canonicalize()
                .with_context(|| format!("cannot resolve {}", p.display()));
        }
        bail!("{name} not found in --bin-dir {}", d.display());
    }
    let exe = std::env::current_exe().ok();
    if let Some(p) = exe.as_ref().and_then(|e| e.parent()).map(|d| d.join(name)) {
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!(
        "cannot find {name}: not next to {} and not on PATH \
         (build it with `cargo build -p gregor-controller -p gregor-broker`, or pass --bin-dir)",
        exe.map(|e| e.display().to_string())
            .unwrap_or_else(|| "this executable".into())
    )
}

/// `n` distinct free loopback ports. All listeners stay open until every port is chosen,
/// so no port is handed out twice; a node may still lose its port to another process
/// before it binds, which shows as a start-up failure naming the node and its log.
pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot bind a free loopback port")?;
    listeners
        .iter()
        .map(|l| {
            Ok(l.local_addr()
                .context("local address of a free port")?
                .port())
        })
        .collect()
}

fn print_summary(dir: &Path, file: &ClusterFile) {
    let controllers = file
        .nodes
        .iter()
        .filter(|n| n.role == Role::Controller)
        .count();
    let brokers = file.nodes.iter().filter(|n| n.role == Role::Broker).count();
    println!(
        "cluster {} is up: {controllers} controllers, {brokers} brokers",
        file.cluster_id
    );
    println!("bootstrap:   {}", file.bootstrap_addrs().join(","));
    println!("controllers: {}", file.controller_addrs().join(","));
    let metrics: Vec<String> = file
        .nodes
        .iter()
        .filter_map(|n| {
            let addr = n.addresses.get(METRICS_ADDRESS)?;
            Some(format!("{}=http://{addr}/metrics", n.name))
        })
        .collect();
    if !metrics.is_empty() {
        println!("metrics:     {}", metrics.join(" "));
    }
    println!("cluster file: {}", ClusterFile::path(dir).display());
}

async fn wait_for_shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let mut ports = free_ports(8).unwrap();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 8);
    }

    #[test]
    fn missing_binary_error_says_how_to_build_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_binary("gregor-nonexistent", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not found in --bin-dir"), "{err}");
        let err = find_binary("gregor-nonexistent-xyz", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cargo build -p gregor-controller"), "{err}");
    }
}
