//! `DIR/cluster.json`: what `gregor cluster up` started, so that later commands can find,
//! stop and restart the nodes and default their `--bootstrap` and `--controllers`.
//!
//! The file is rewritten atomically (write to a temporary file, then rename), so a reader
//! never sees half of it.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The name of the file inside the cluster directory.
pub const CLUSTER_FILE: &str = "cluster.json";

/// The listener clients use; `--bootstrap` defaults to these addresses.
pub const EXTERNAL_LISTENER: &str = "EXTERNAL";
/// The listener brokers replicate over.
pub const INTERNAL_LISTENER: &str = "INTERNAL";
/// The address key of a controller's control-protocol listener.
pub const CONTROL_ADDRESS: &str = "control";
/// The address key of a node's Prometheus endpoint (`http://ADDR/metrics`).
pub const METRICS_ADDRESS: &str = "metrics";

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Controller,
    Broker,
}

impl Role {
    /// The binary that runs this role.
    pub fn binary_name(self) -> &'static str {
        match self {
            Role::Controller => "gregor-controller",
            Role::Broker => "gregor-broker",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Controller => "controller",
            Role::Broker => "broker",
        }
    }
}

/// One node of a local cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// `controller-1`, `broker-2`.
    pub name: String,
    pub role: Role,
    /// The controller's node id or the broker's broker id (separate namespaces).
    pub id: i64,
    /// The pid of the last start; may be stale (always check before signalling it).
    pub pid: Option<u32>,
    /// `control` for a controller; listener name → `host:port` for a broker; `metrics` for
    /// both (absent in files written before metrics existed).
    pub addresses: BTreeMap<String, String>,
    pub data_dir: PathBuf,
    /// Where the node's stdout and stderr go (appended on every start).
    pub log_file: PathBuf,
    /// The exact command line that starts it; `argv[0]` is the binary's absolute path.
    pub argv: Vec<String>,
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    pub cluster_id: String,
    pub nodes: Vec<NodeEntry>,
}

impl ClusterFile {
    /// The path of the file inside `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CLUSTER_FILE)
    }

    /// Reads `dir/cluster.json`.
    pub fn load(dir: &Path) -> anyhow::Result<ClusterFile> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (start a cluster with `gregor cluster up`)",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid cluster file", path.display()))
    }

    /// Reads `dir/cluster.json` if it exists.
    pub fn load_if_exists(dir: &Path) -> anyhow::Result<Option<ClusterFile>> {
        if Self::path(dir).exists() {
            Self::load(dir).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Writes `dir/cluster.json` atomically.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = Self::path(dir);
        let tmp = dir.join(format!("{CLUSTER_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).context("encoding cluster.json")?;
        std::fs::write(&tmp, text + "\n")
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }

    /// The node with this name, or an error listing the names there are.
    pub fn node(&self, name: &str) -> anyhow::Result<&NodeEntry> {
        match self.nodes.iter().find(|n| n.name == name) {
            Some(n) => Ok(n),
            None => bail!(
                "unknown node '{name}' (nodes: {})",
                self.node_names().join(", ")
            ),
        }
    }

    /// The node with this name, mutable.
    pub fn node_mut(&mut self, name: &str) -> anyhow::Result<&mut NodeEntry> {
        let names = self.node_names().join(", ");
        match self.nodes.iter_mut().find(|n| n.name == name) {
            Some(n) => Ok(n),
            None => bail!("unknown node '{name}' (nodes: {names})"),
        }
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// The brokers' client (EXTERNAL) addresses.
    pub fn bootstrap_addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.role == Role::Broker)
            .filter_map(|n| n.addresses.get(EXTERNAL_LISTENER).cloned())
            .collect()
    }

    /// The controllers' control-protocol addresses.
    pub fn controller_addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.role == Role::Controller)
            .filter_map(|n| n.addresses.get(CONTROL_ADDRESS).cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ClusterFile {
        let controller = NodeEntry {
            name: "controller-1".into(),
            role: Role::Controller,
            id: 1,
            pid: Some(42),
            addresses: BTreeMap::from([(
                CONTROL_ADDRESS.to_string(),
                "127.0.0.1:7000".to_string(),
            )]),
            data_dir: "/tmp/c1/data".into(),
            log_file: "/tmp/c1/log".into(),
            argv: vec![
                "/bin/gregor-controller".into(),
                "--node-id".into(),
                "1".into(),
            ],
        };
        let broker = NodeEntry {
            name: "broker-1".into(),
            role: Role::Broker,
            id: 1,
            pid: None,
            addresses: BTreeMap::from([
                (INTERNAL_LISTENER.to_string(), "127.0.0.1:7001".to_string()),
                (EXTERNAL_LISTENER.to_string(), "127.0.0.1:7002".to_string()),
            ]),
            data_dir: "/tmp/b1/data".into(),
            log_file: "/tmp/b1/log".into(),
            argv: vec!["/bin/gregor-broker".into()],
        };
        ClusterFile {
            cluster_id: "abc".into(),
            nodes: vec![controller, broker],
        }
    }

    #[test]
    fn round_trip_through_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = sample();
        file.save(dir.path()).unwrap();
        assert_eq!(ClusterFile::load(dir.path()).unwrap(), file);
        assert!(!dir.path().join("cluster.json.tmp").exists());
    }

    #[test]
    fn default_addresses_come_from_the_file() {
        let file = sample();
        assert_eq!(file.bootstrap_addrs(), vec!["127.0.0.1:7002"]);
        assert_eq!(file.controller_addrs(), vec!["127.0.0.1:7000"]);
    }

    #[test]
    fn unknown_node_names_the_known_ones() {
        let err = sample().node("broker-9").unwrap_err().to_string();
        assert!(err.contains("unknown node 'broker-9'"), "{err}");
        assert!(err.contains("controller-1, broker-1"), "{err}");
    }

    #[test]
    fn missing_file_says_how_to_create_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ClusterFile::load_if_exists(dir.path()).unwrap().is_none());
        let err = format!("{:#}", ClusterFile::load(dir.path()).unwrap_err());
        assert!(err.contains("gregor cluster up"), "{err}");
    }
}
