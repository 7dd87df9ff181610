//! Waiting for a freshly started cluster: the quorum has a leader and every broker is
//! registered and unfenced. A node that exits meanwhile fails the wait at once, naming the
//! node and showing the end of its log.

use crate::cluster_file::{ClusterFile, NodeEntry, Role};
use crate::control::Controllers;
use anyhow::bail;
use protocol::control::MetadataImage;
use protocol::ids::BrokerId;
use std::path::Path;
use std::process::Child;
use std::time::Duration;
use tokio::time::Instant;

/// Lines of a failed node's log shown in the error.
const LOG_TAIL_LINES: usize = 15;

/// Waits until the cluster in `file` is ready, or fails naming what it was still waiting
/// for. `children` are the processes of `file.nodes`, in the same order.
pub async fn wait_ready(
    file: &ClusterFile,
    children: &mut [Child],
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut controllers = Controllers::new(&file.controller_addrs())?;
    loop {
        check_children(file, children)?;
        let waiting_for = match readiness(&mut controllers, file).await {
            Ok(None) => return Ok(()),
            Ok(Some(what)) => what,
            Err(e) => format!("the controllers to answer ({e:#})"),
        };
        if Instant::now() >= deadline {
            bail!(
                "cluster not ready after {}s: still waiting for {waiting_for}; node logs are in {}",
                limit.as_secs(),
                log_dirs(file)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `None` when ready, else what is missing.
async fn readiness(
    controllers: &mut Controllers,
    file: &ClusterFile,
) -> anyhow::Result<Option<String>> {
    let limit = Duration::from_secs(2);
    let quorum = controllers.describe_quorum(limit).await?;
    if quorum.leader_id.is_none() {
        return Ok(Some("the quorum to elect a leader".into()));
    }
    let image = controllers.fetch_image(limit).await?;
    Ok(brokers_missing(file, &image))
}

/// Which brokers of `file` are not yet registered and unfenced in `image`.
pub fn brokers_missing(file: &ClusterFile, image: &MetadataImage) -> Option<String> {
    let mut missing = Vec::new();
    for node in file.nodes.iter().filter(|n| n.role == Role::Broker) {
        let Ok(id) = i32::try_from(node.id) else {
            continue;
        };
        match image.brokers.get(&BrokerId(id)) {
            None => missing.push(format!("{} to register", node.name)),
            Some(b) if b.fenced => missing.push(format!("{} to be unfenced", node.name)),
            Some(_) => {}
        }
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

fn check_children(file: &ClusterFile, children: &mut [Child]) -> anyhow::Result<()> {
    for (node, child) in file.nodes.iter().zip(children.iter_mut()) {
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "{} exited ({status}) before the cluster was ready; its log is {}{}",
                node.name,
                node.log_file.display(),
                log_tail(&node.log_file)
            );
        }
    }
    Ok(())
}

/// The last lines of a log file, indented, for an error message.
pub fn log_tail(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    if start == lines.len() {
        return String::new();
    }
    let mut out = String::from(":\n");
    for l in &lines[start..] {
        out.push_str("    ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

fn log_dirs(file: &ClusterFile) -> String {
    let logs: Vec<String> = file
        .nodes
        .iter()
        .map(|n: &NodeEntry| n.log_file.display().to_string())
        .collect();
    logs.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launcher::plan::{plan, PlanInput};
    use protocol::control::BrokerImage;
    use protocol::ids::BrokerEpoch;

    #[test]
    fn reports_unregistered_and_fenced_brokers() {
        let file = plan(&PlanInput {
            dir: "/c".into(),
            cluster_id: "c".into(),
            controllers: 1,
            brokers: 2,
            controller_bin: "/c".into(),
            broker_bin: "/b".into(),
            ports: vec![1, 2, 3, 4, 5, 6, 7, 8],
        });
        let mut image = MetadataImage::new("c");
        assert_eq!(
            brokers_missing(&file, &image).unwrap(),
            "broker-1 to register, broker-2 to register"
        );
        for (id, fenced) in [(1, false), (2, true)] {
            image.brokers.insert(
                BrokerId(id),
                BrokerImage {
                    id: BrokerId(id),
                    epoch: BrokerEpoch(3),
                    incarnation_id: uuid::Uuid::nil(),
                    listeners: vec![],
                    rack: None,
                    fenced,
                    shutting_down: false,
                },
            );
        }
        assert_eq!(
            brokers_missing(&file, &image).unwrap(),
            "broker-2 to be unfenced"
        );
        image.brokers.get_mut(&BrokerId(2)).unwrap().fenced = false;
        assert_eq!(brokers_missing(&file, &image), None);
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let text: String = (0..40).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let tail = log_tail(&p);
        assert!(
            tail.contains("line 39") && tail.contains("line 25") && !tail.contains("line 24\n"),
            "{tail}"
        );
        assert_eq!(log_tail(&dir.path().join("missing")), "");
    }
}
