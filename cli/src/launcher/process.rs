//! Node processes: start one (own process group, output appended to its log file), tell
//! whether a pid still runs the node's binary, send signals, and stop a set of nodes
//! (SIGTERM, then SIGKILL after a deadline).

use crate::cluster_file::NodeEntry;
use anyhow::{bail, Context};
use rustix::process::{kill_process, Pid, Signal};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The signals `gregor cluster kill` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NodeSignal {
    Kill,
    Term,
    Stop,
    Cont,
}

impl NodeSignal {
    fn to_signal(self) -> Signal {
        match self {
            NodeSignal::Kill => Signal::KILL,
            NodeSignal::Term => Signal::TERM,
            NodeSignal::Stop => Signal::STOP,
            NodeSignal::Cont => Signal::CONT,
        }
    }
}

/// Starts a node from its recorded command line. The node gets its own process group, so
/// a Ctrl-C in the terminal that ran `gregor cluster up --detach` does not reach it.
pub fn spawn_node(node: &NodeEntry) -> anyhow::Result<Child> {
    let Some((program, args)) = node.argv.split_first() else {
        bail!(
            "node {} has an empty command line in cluster.json",
            node.name
        );
    };
    if let Some(parent) = node.log_file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::create_dir_all(&node.data_dir)
        .with_context(|| format!("cannot create {}", node.data_dir.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&node.log_file)
        .with_context(|| format!("cannot open {}", node.log_file.display()))?;
    let log_err = log
        .try_clone()
        .context("cannot duplicate the log file handle")?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {} ({program})", node.name))
}

/// Whether `pid` is alive (not a zombie) and runs the binary at `binary` (compared by
/// file name, so a reused pid of an unrelated process never matches).
pub fn runs_binary(pid: u32, binary: &str) -> bool {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may itself contain spaces.
    let Some((head, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let state = rest.split_whitespace().next();
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    if cmdline.is_empty() {
        // A process in the middle of exec has no command line yet; its command name (the
        // file name cut to 15 bytes) is already the new one.
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or_default();
        let want = file_name(binary);
        return comm == want.get(..15).unwrap_or(want);
    }
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0);
    file_name(&argv0) == file_name(binary)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The node's pid, if it is recorded and still runs the node's binary.
pub fn live_pid(node: &NodeEntry) -> Option<u32> {
    let pid = node.pid?;
    let binary = node.argv.first()?;
    runs_binary(pid, binary).then_some(pid)
}

/// Sends `signal` to `pid`.
pub fn send_signal(pid: u32, signal: NodeSignal) -> anyhow::Result<()> {
    let raw = i32::try_from(pid).context("pid out of range")?;
    let pid = Pid::from_raw(raw).context("pid 0 is not a process")?;
    kill_process(pid, signal.to_signal()).with_context(|| format!("cannot signal pid {raw}"))
}

/// Stops every listed node that still runs: SIGTERM, wait up to `grace`, then SIGKILL and
/// wait up to `grace` again. `children` are reaped when the nodes are our own children.
/// Returns the names of nodes that had to be killed.
pub fn stop_nodes(
    nodes: &[NodeEntry],
    children: &mut [Child],
    grace: Duration,
) -> anyhow::Result<Vec<String>> {
    let running: Vec<(&NodeEntry, u32)> = nodes
        .iter()
        .filter_map(|n| live_pid(n).map(|p| (n, p)))
        .collect();
    for (node, pid) in &running {
        // A CONT first, so that a node stopped by `cluster kill --signal STOP` can act on TERM.
        let _ = send_signal(*pid, NodeSignal::Cont);
        if let Err(e) = send_signal(*pid, NodeSignal::Term) {
            eprintln!("warning: {}: {e:#}", node.name);
        }
    }
    let still = wait_gone(&running, children, grace);
    let mut killed = Vec::new();
    for (node, pid) in &still {
        let _ = send_signal(*pid, NodeSignal::Kill);
        killed.push(node.name.clone());
    }
    let left = wait_gone(&still, children, grace);
    if !left.is_empty() {
        let names: Vec<_> = left
            .iter()
            .map(|(n, p)| format!("{} (pid {p})", n.name))
            .collect();
        bail!("still running after SIGKILL: {}", names.join(", "));
    }
    Ok(killed)
}

/// Stops a whole cluster: brokers first, so that their controlled shutdown can still reach
/// the controllers, then the controllers. Returns the names of nodes that had to be killed.
pub fn stop_cluster(
    nodes: &[NodeEntry],
    children: &mut [Child],
    grace: Duration,
) -> anyhow::Result<Vec<String>> {
    let (brokers, controllers): (Vec<NodeEntry>, Vec<NodeEntry>) = nodes
        .iter()
        .cloned()
        .partition(|n| n.role == crate::cluster_file::Role::Broker);
    let mut killed = stop_nodes(&brokers, children, grace)?;
    killed.extend(stop_nodes(&controllers, children, grace)?);
    Ok(killed)
}

/// Waits until none of `nodes` runs any more or `limit` passes; returns those still running.
fn wait_gone<'a>(
    nodes: &[(&'a NodeEntry, u32)],
    children: &mut [Child],
    limit: Duration,
) -> Vec<(&'a NodeEntry, u32)> {
    let deadline = Instant::now() + limit;
    loop {
        for c in children.iter_mut() {
            let _ = c.try_wait();
        }
        let left: Vec<_> = nodes
            .iter()
            .copied()
            .filter(|(n, p)| runs_binary(*p, &n.argv[0]))
            .collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_process_matches_only_its_own_binary() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(runs_binary(pid, "/usr/bin/sleep"));
        assert!(runs_binary(pid, "sleep"));
        assert!(!runs_binary(pid, "/usr/bin/gregor-broker"));
        send_signal(pid, NodeSignal::Kill).unwrap();
        child.wait().unwrap();
        assert!(!runs_binary(pid, "sleep"));
    }

    #[test]
    fn stop_nodes_terminates_and_reaps() {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeEntry {
            name: "broker-1".into(),
            role: crate::cluster_file::Role::Broker,
            id: 1,
            pid: None,
            addresses: Default::default(),
            data_dir: dir.path().join("data"),
            log_file: dir.path().join("log"),
            argv: vec!["sleep".into(), "30".into()],
        };
        let child = spawn_node(&node).unwrap();
        let node = NodeEntry {
            pid: Some(child.id()),
            ..node
        };
        assert_eq!(live_pid(&node), Some(child.id()));
        let mut children = vec![child];
        let killed = stop_nodes(
            std::slice::from_ref(&node),
            &mut children,
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(killed.is_empty(), "sleep exits on TERM");
        assert_eq!(live_pid(&node), None);
        assert!(dir.path().join("log").exists());
    }
}
