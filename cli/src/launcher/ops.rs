//! `gregor cluster down | kill | start`: act on the nodes recorded in `cluster.json`, and
//! only on pids that still run the node's binary.

use super::process::{live_pid, send_signal, spawn_node, stop_cluster, NodeSignal};
use super::ready::log_tail;
use super::up::STOP_GRACE;
use crate::cluster_file::{ClusterFile, NodeEntry, Role, CONTROL_ADDRESS, EXTERNAL_LISTENER};
use anyhow::{bail, Context};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// How long `cluster start` waits for the node to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Stops every node of the cluster in `dir`.
pub fn down(dir: &Path) -> anyhow::Result<()> {
    let file = ClusterFile::load(dir)?;
    let running: Vec<String> = file
        .nodes
        .iter()
        .filter(|n| live_pid(n).is_some())
        .map(|n| n.name.clone())
        .collect();
    if running.is_empty() {
        println!("no node of cluster {} is running", file.cluster_id);
        return Ok(());
    }
    let killed = stop_cluster(&file.nodes, &mut [], STOP_GRACE)?;
    println!("stopped {}", running.join(", "));
    if !killed.is_empty() {
        println!("killed after the grace period: {}", killed.join(", "));
    }
    Ok(())
}

/// Sends `signal` to one node. Besides node names, `active-controller` and
/// `leader:TOPIC-PARTITION` name the node that currently has that role.
pub async fn kill(dir: &Path, name: &str, signal: NodeSignal) -> anyhow::Result<()> {
    let file = ClusterFile::load(dir)?;
    let name = resolve_alias(&file, name).await?;
    let node = file.node(&name)?;
    let Some(pid) = live_pid(node) else {
        bail!("{name} is not running");
    };
    send_signal(pid, signal)?;
    println!(
        "sent SIG{} to {name} (pid {pid})",
        format!("{signal:?}").to_uppercase()
    );
    Ok(())
}

/// Where a role alias points to a node name; `Some(topic, partition)` for `leader:T-P`.
pub fn parse_alias(name: &str) -> anyhow::Result<Option<Alias>> {
    if name == "active-controller" {
        return Ok(Some(Alias::ActiveController));
    }
    let Some(tp) = name.strip_prefix("leader:") else {
        return Ok(None);
    };
    let parsed = tp
        .rsplit_once('-')
        .and_then(|(t, p)| Some((t.to_string(), p.parse::<i32>().ok()?)))
        .filter(|(t, _)| !t.is_empty());
    match parsed {
        Some((topic, partition)) => Ok(Some(Alias::Leader { topic, partition })),
        None => bail!("expected leader:TOPIC-PARTITION, e.g. leader:orders-0, not '{name}'"),
    }
}

/// A node named by its current role.
#[derive(Debug, PartialEq, Eq)]
pub enum Alias {
    ActiveController,
    Leader { topic: String, partition: i32 },
}

async fn resolve_alias(file: &ClusterFile, name: &str) -> anyhow::Result<String> {
    let Some(alias) = parse_alias(name)? else {
        return Ok(name.to_string());
    };
    let mut controllers = crate::control::Controllers::new(&file.controller_addrs())?;
    let limit = Duration::from_secs(5);
    match alias {
        Alias::ActiveController => {
            let q = controllers.describe_quorum(limit).await?;
            let Some(leader) = q.leader_id else {
                bail!("the quorum has no leader right now")
            };
            Ok(super::plan::node_name(Role::Controller, leader.0 as i64))
        }
        Alias::Leader { topic, partition } => {
            let image = controllers.fetch_image(limit).await?;
            let Some(t) = image.topic_by_name(&topic) else {
                bail!("unknown topic '{topic}'")
            };
            let Some(p) = t.partitions.get(&protocol::ids::PartitionIndex(partition)) else {
                bail!("unknown partition {partition} of topic '{topic}'");
            };
            let Some(leader) = p.leader else {
                bail!("{topic}-{partition} has no leader right now")
            };
            Ok(super::plan::node_name(Role::Broker, i64::from(leader.0)))
        }
    }
}

/// Restarts one node with its data and records its new pid.
pub async fn start(dir: &Path, name: &str) -> anyhow::Result<()> {
    let mut file = ClusterFile::load(dir)?;
    let node = file.node(name)?.clone();
    if let Some(pid) = live_pid(&node) {
        bail!("{name} is already running (pid {pid})");
    }
    let mut child = spawn_node(&node)?;
    let pid = child.id();
    file.node_mut(name)?.pid = Some(pid);
    file.save(dir)?;
    let addr = node_addr(&node)?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "{name} exited ({status}) right after start; its log is {}{}",
                node.log_file.display(),
                log_tail(&node.log_file)
            );
        }
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "{name} (pid {pid}) does not accept connections on {addr} after {}s; its log is {}",
                START_TIMEOUT.as_secs(),
                node.log_file.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("started {name} (pid {pid}), listening on {addr}");
    Ok(())
}

/// The address that shows a node is up: a controller's control port, a broker's client port.
fn node_addr(node: &NodeEntry) -> anyhow::Result<String> {
    let key = match node.role {
        Role::Controller => CONTROL_ADDRESS,
        Role::Broker => EXTERNAL_LISTENER,
    };
    node.addresses
        .get(key)
        .cloned()
        .with_context(|| format!("{} has no {key} address in cluster.json", node.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_aliases_parse() {
        assert_eq!(parse_alias("broker-1").unwrap(), None);
        assert_eq!(
            parse_alias("active-controller").unwrap(),
            Some(Alias::ActiveController)
        );
        assert_eq!(
            parse_alias("leader:my-topic-12").unwrap(),
            Some(Alias::Leader {
                topic: "my-topic".into(),
                partition: 12
            })
        );
        assert!(parse_alias("leader:orders").is_err());
        assert!(parse_alias("leader:-1").is_err());
    }
}
