//! `--bootstrap` and `--controllers`: given on the command line, else taken from
//! `DIR/cluster.json`, else (for brokers) `127.0.0.1:9092`.

use crate::cluster_file::ClusterFile;
use anyhow::bail;
use std::path::Path;

/// The broker address used when nothing else is known (Kafka's default port).
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

/// Brokers to bootstrap from.
#[derive(Debug, Clone, clap::Args)]
pub struct BootstrapArgs {
    /// Brokers to bootstrap from, `host:port,...` (default: the EXTERNAL addresses in
    /// DIR/cluster.json, then 127.0.0.1:9092).
    #[arg(long, value_delimiter = ',', env = "GREGOR_BOOTSTRAP")]
    pub bootstrap: Vec<String>,
}

/// Controllers to ask.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    /// Controllers' control-protocol addresses, `host:port,...` (default: from
    /// DIR/cluster.json).
    #[arg(long, value_delimiter = ',', env = "GREGOR_CONTROLLERS")]
    pub controllers: Vec<String>,
}

impl BootstrapArgs {
    pub fn resolve(&self, dir: &Path) -> anyhow::Result<Vec<String>> {
        if !self.bootstrap.is_empty() {
            return Ok(self.bootstrap.clone());
        }
        if let Some(file) = ClusterFile::load_if_exists(dir)? {
            let addrs = file.bootstrap_addrs();
            if !addrs.is_empty() {
                return Ok(addrs);
            }
        }
        Ok(vec![DEFAULT_BOOTSTRAP.to_string()])
    }
}

impl ControllerArgs {
    pub fn resolve(&self, dir: &Path) -> anyhow::Result<Vec<String>> {
        if !self.controllers.is_empty() {
            return Ok(self.controllers.clone());
        }
        if let Some(file) = ClusterFile::load_if_exists(dir)? {
            let addrs = file.controller_addrs();
            if !addrs.is_empty() {
                return Ok(addrs);
            }
        }
        bail!(
            "no controllers: pass --controllers host:port,... or start a local cluster \
             (no cluster.json in {})",
            dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launcher::plan::{plan, PlanInput};

    #[test]
    fn flags_win_then_cluster_file_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let b = BootstrapArgs { bootstrap: vec![] };
        let c = ControllerArgs {
            controllers: vec![],
        };
        assert_eq!(b.resolve(dir.path()).unwrap(), vec![DEFAULT_BOOTSTRAP]);
        assert!(c
            .resolve(dir.path())
            .unwrap_err()
            .to_string()
            .contains("--controllers"));

        let file = plan(&PlanInput {
            dir: dir.path().into(),
            cluster_id: "c".into(),
            controllers: 1,
            brokers: 1,
            controller_bin: "/c".into(),
            broker_bin: "/b".into(),
            ports: vec![10, 11, 12, 13, 14],
        });
        file.save(dir.path()).unwrap();
        assert_eq!(b.resolve(dir.path()).unwrap(), vec!["127.0.0.1:12"]);
        assert_eq!(c.resolve(dir.path()).unwrap(), vec!["127.0.0.1:10"]);

        let b = BootstrapArgs {
            bootstrap: vec!["h:1".into()],
        };
        assert_eq!(b.resolve(dir.path()).unwrap(), vec!["h:1"]);
    }
}
