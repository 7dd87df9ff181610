//! `meta.properties`: the cluster id and node id a data dir belongs to.
//!
//! Written on first start; on every later start a mismatch with the flags is refused, so a
//! controller never joins another cluster's log or takes another node's identity.

use crate::raft::frame_file;
use std::io;
use std::path::{Path, PathBuf};

/// Why the data dir cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is malformed: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("{path} belongs to cluster `{found}`, but --cluster-id is `{expected}`")]
    ClusterMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{path} belongs to node {found}, but --node-id is {expected}")]
    NodeMismatch {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
}

/// Checks (or, on a fresh dir, writes) `dir/meta.properties`.
pub fn check_or_write(dir: &Path, cluster_id: &str, node_id: u64) -> Result<(), MetaError> {
    let path = dir.join("meta.properties");
    let io_err = |source| MetaError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let body = format!("version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n");
            frame_file::write_atomic(&path, body.as_bytes()).map_err(io_err)?;
            return Ok(());
        }
        Err(e) => return Err(io_err(e)),
    };
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
    };
    let malformed = |m: &str| MetaError::Malformed {
        path: path.clone(),
        message: m.to_string(),
    };
    let found_cluster = get("cluster.id").ok_or_else(|| malformed("no cluster.id"))?;
    let found_node: u64 = get("node.id")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| malformed("no numeric node.id"))?;
    if found_cluster != cluster_id {
        return Err(MetaError::ClusterMismatch {
            path,
            found: found_cluster,
            expected: cluster_id.into(),
        });
    }
    if found_node != node_id {
        return Err(MetaError::NodeMismatch {
            path,
            found: found_node,
            expected: node_id,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_checked() {
        let dir = tempfile::tempdir().unwrap();
        check_or_write(dir.path(), "c1", 1).unwrap();
        check_or_write(dir.path(), "c1", 1).unwrap();
        assert!(matches!(
            check_or_write(dir.path(), "c2", 1),
            Err(MetaError::ClusterMismatch { .. })
        ));
        assert!(matches!(
            check_or_write(dir.path(), "c1", 2),
            Err(MetaError::NodeMismatch { .. })
        ));
    }
}
