//! The layout of a local cluster: node names, ports, data dirs, log files and the exact
//! command line of every node. Pure: no processes, no sockets.

use crate::cluster_file::{
    ClusterFile, NodeEntry, Role, CONTROL_ADDRESS, EXTERNAL_LISTENER, INTERNAL_LISTENER,
    METRICS_ADDRESS,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a cluster looks like before it starts.
#[derive(Clone, Debug)]
pub struct PlanInput {
    /// The cluster directory, absolute.
    pub dir: PathBuf,
    pub cluster_id: String,
    pub controllers: u32,
    pub brokers: u32,
    pub controller_bin: PathBuf,
    pub broker_bin: PathBuf,
    /// Free loopback ports: one per controller, then three (internal, external, metrics)
    /// per broker, then the controllers' metrics ports.
    pub ports: Vec<u16>,
}

impl PlanInput {
    /// How many ports [`plan`] needs.
    pub fn ports_needed(controllers: u32, brokers: u32) -> usize {
        2 * controllers as usize + 3 * brokers as usize
    }
}

/// The node name of a role and id: `controller-1`, `broker-2`.
pub fn node_name(role: Role, id: i64) -> String {
    format!("{}-{id}", role.as_str())
}

/// The directory of one node inside the cluster directory.
pub fn node_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Lays out the cluster: every node with its addresses and command line (pids unset).
pub fn plan(input: &PlanInput) -> ClusterFile {
    assert_eq!(
        input.ports.len(),
        PlanInput::ports_needed(input.controllers, input.brokers),
        "two ports per controller and three per broker"
    );
    let host = "127.0.0.1";
    let mut ports = input.ports.iter().copied();
    let mut next_addr = || format!("{host}:{}", ports.next().expect("length checked above"));

    let controller_addrs: Vec<String> = (0..input.controllers).map(|_| next_addr()).collect();
    let voters = controller_addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}@{a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");

    let mut nodes = Vec::new();
    for (i, addr) in controller_addrs.iter().enumerate() {
        let id = i as i64 + 1;
        let name = node_name(Role::Controller, id);
        let ndir = node_dir(&input.dir, &name);
        let data_dir = ndir.join("data");
        let argv = vec![
            input.controller_bin.display().to_string(),
            "--node-id".into(),
            id.to_string(),
            "--listen".into(),
            addr.clone(),
            "--voters".into(),
            voters.clone(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            // `=` form: a random base64url cluster id may start with '-', which a separate
            // argument would make clap read as a flag.
            format!("--cluster-id={}", input.cluster_id),
        ];
        nodes.push(NodeEntry {
            name,
            role: Role::Controller,
            id,
            pid: None,
            addresses: BTreeMap::from([(CONTROL_ADDRESS.to_string(), addr.clone())]),
            data_dir,
            log_file: ndir.join("log"),
            argv,
        });
    }

    let controllers_flag = controller_addrs.join(",");
    for i in 0..input.brokers {
        let id = i as i64 + 1;
        let name = node_name(Role::Broker, id);
        let ndir = node_dir(&input.dir, &name);
        let data_dir = ndir.join("data");
        let internal = next_addr();
        let external = next_addr();
        let metrics = next_addr();
        let listeners =
            format!("{INTERNAL_LISTENER}://{internal},{EXTERNAL_LISTENER}://{external}");
        let argv = vec![
            input.broker_bin.display().to_string(),
            "--node-id".into(),
            id.to_string(),
            "--listeners".into(),
            listeners.clone(),
            "--advertised-listeners".into(),
            listeners,
            "--inter-broker-listener".into(),
            INTERNAL_LISTENER.into(),
            "--controllers".into(),
            controllers_flag.clone(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            // `=` form: a random base64url cluster id may start with '-', which a separate
            // argument would make clap read as a flag.
            format!("--cluster-id={}", input.cluster_id),
            "--metrics-listen".into(),
            metrics.clone(),
        ];
        nodes.push(NodeEntry {
            name,
            role: Role::Broker,
            id,
            pid: None,
            addresses: BTreeMap::from([
                (INTERNAL_LISTENER.to_string(), internal),
                (EXTERNAL_LISTENER.to_string(), external),
                (METRICS_ADDRESS.to_string(), metrics),
            ]),
            data_dir,
            log_file: ndir.join("log"),
            argv,
        });
    }
    // The controllers' metrics ports come last, so the other ports keep their places.
    for node in nodes.iter_mut().filter(|n| n.role == Role::Controller) {
        let metrics = next_addr();
        node.argv.push("--metrics-listen".into());
        node.argv.push(metrics.clone());
        node.addresses.insert(METRICS_ADDRESS.to_string(), metrics);
    }
    ClusterFile {
        cluster_id: input.cluster_id.clone(),
        nodes,
    }
}

/// A fresh cluster id: 16 random bytes, URL-safe base64 without padding (22 characters),
/// the same shape as `kafka-storage random-uuid`.
pub fn random_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = String::with_capacity(22);
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> PlanInput {
        PlanInput {
            dir: "/c".into(),
            cluster_id: "cid".into(),
            controllers: 3,
            brokers: 2,
            controller_bin: "/bin/gregor-controller".into(),
            broker_bin: "/bin/gregor-broker".into(),
            ports: vec![1, 2, 3, 11, 12, 13, 21, 22, 23, 4, 5, 6],
        }
    }

    #[test]
    fn controllers_get_the_voter_list_and_their_own_port() {
        let file = plan(&input());
        let c2 = file.node("controller-2").unwrap();
        assert_eq!(
            c2.argv.join(" "),
            "/bin/gregor-controller --node-id 2 --listen 127.0.0.1:2 \
             --voters 1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3 --data-dir /c/controller-2/data \
             --cluster-id=cid --metrics-listen 127.0.0.1:5"
        );
        assert_eq!(c2.log_file, PathBuf::from("/c/controller-2/log"));
        assert_eq!(c2.addresses[METRICS_ADDRESS], "127.0.0.1:5");
        assert_eq!(
            file.controller_addrs(),
            vec!["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
        );
    }

    #[test]
    fn brokers_get_internal_and_external_listeners() {
        let file = plan(&input());
        let b2 = file.node("broker-2").unwrap();
        assert_eq!(b2.id, 2);
        assert_eq!(
            b2.argv.join(" "),
            "/bin/gregor-broker --node-id 2 \
             --listeners INTERNAL://127.0.0.1:21,EXTERNAL://127.0.0.1:22 \
             --advertised-listeners INTERNAL://127.0.0.1:21,EXTERNAL://127.0.0.1:22 \
             --inter-broker-listener INTERNAL \
             --controllers 127.0.0.1:1,127.0.0.1:2,127.0.0.1:3 --data-dir /c/broker-2/data \
             --cluster-id=cid --metrics-listen 127.0.0.1:23"
        );
        assert_eq!(b2.addresses[METRICS_ADDRESS], "127.0.0.1:23");
        assert_eq!(file.bootstrap_addrs(), vec!["127.0.0.1:12", "127.0.0.1:22"]);
        assert_eq!(file.nodes.len(), 5);
    }

    #[test]
    fn a_cluster_id_starting_with_a_dash_stays_one_value() {
        let mut i = input();
        i.cluster_id = "-3abc".into();
        let file = plan(&i);
        for node in &file.nodes {
            assert!(node.argv.iter().any(|a| a == "--cluster-id=-3abc"));
        }
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let a = random_cluster_id();
        assert_eq!(a.len(), 22);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, random_cluster_id());
    }
}
