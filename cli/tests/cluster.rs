//! End-to-end tests of the real `gregor` binary against a real local cluster:
//! `cluster up --detach`, `quorum describe`, topics, produce → consume, `cluster kill` /
//! `cluster start`, and `cluster down` (always, from a drop guard).
//!
//! The controller and broker binaries must be in the same target dir as `gregor`:
//! `cargo build -p gregor-controller -p gregor-broker` first.

mod common;

use common::{gregor, gregor_with_input, ok, require_node_binaries, wait_until, Cluster, GREGOR};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The pids of every node, from cluster.json.
fn pids(cluster: &Cluster) -> Vec<u32> {
    cluster
        .nodes()
        .iter()
        .filter_map(|n| n["pid"].as_u64())
        .map(|p| p as u32)
        .collect()
}

fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !matches!(
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().next()),
                Some("Z") | Some("X")
            )
        })
        .unwrap_or(false)
}

fn status_line(dir: &Path, prefix: &str) -> String {
    let out = gregor(dir, &["cluster", "status"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn local_cluster_round_trip_kill_and_restart() {
    let cluster = Cluster::up(3, 3);
    let dir = cluster.path();

    // The quorum, in kafka-metadata-quorum's words.
    let status = ok(dir, &["quorum", "describe", "--status"]);
    assert!(status.contains("CurrentVoters:        [1,2,3]"), "{status}");
    let leader_line = status
        .lines()
        .find(|l| l.starts_with("LeaderId:"))
        .expect("LeaderId line");
    assert!(!leader_line.ends_with("-1"), "{status}");
    let replication = ok(dir, &["quorum", "describe", "--replication"]);
    assert!(
        replication.starts_with("NodeId  LogEndOffset  Lag"),
        "{replication}"
    );
    assert_eq!(
        replication
            .lines()
            .filter(|l| l.ends_with("Leader"))
            .count(),
        1,
        "{replication}"
    );

    // Topics: placement over all three brokers is visible in describe.
    assert!(ok(
        dir,
        &[
            "topic",
            "create",
            "wide",
            "--partitions",
            "3",
            "--replication-factor",
            "3"
        ]
    )
    .contains("Created topic wide."));
    let described = ok(dir, &["topic", "describe", "wide"]);
    assert!(
        described.contains("PartitionCount: 3\tReplicationFactor: 3"),
        "{described}"
    );
    assert_eq!(
        described.matches("\tLeaderEpoch: ").count(),
        3,
        "{described}"
    );
    assert!(ok(dir, &["topic", "list"]).lines().any(|l| l == "wide"));

    // Produce → consume. Replication factor 1 keeps this independent of follower fetching.
    ok(
        dir,
        &[
            "topic",
            "create",
            "events",
            "--partitions",
            "2",
            "--replication-factor",
            "1",
        ],
    );
    let input: String = (0..6).map(|i| format!("key{i}|value {i}\n")).collect();
    let out = gregor_with_input(
        dir,
        &[
            "produce",
            "events",
            "--key-separator",
            "|",
            "--acks",
            "1",
            "--compression",
            "gzip",
            "--print-acks",
        ],
        &input,
    );
    assert!(
        out.status.success(),
        "produce failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One acknowledgement per record: partition, offset, value; offsets unique per partition.
    let acks = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut seen: Vec<(String, i64)> = acks
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "{acks}");
            (f[0].to_string(), f[1].parse::<i64>().expect("offset"))
        })
        .collect();
    assert_eq!(seen.len(), 6, "{acks}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6, "{acks}");
    let consumed = ok(
        dir,
        &[
            "consume",
            "events",
            "--from-beginning",
            "--max-messages",
            "6",
            "--format",
            "{key}={value} p{partition}",
        ],
    );
    let mut got: Vec<String> = consumed
        .lines()
        .map(|l| l.split(" p").next().unwrap_or_default().to_string())
        .collect();
    got.sort();
    let want: Vec<String> = (0..6).map(|i| format!("key{i}=value {i}")).collect();
    assert_eq!(got, want, "{consumed}");

    // Perf tools print Kafka-style summaries.
    let perf = ok(
        dir,
        &[
            "perf",
            "produce",
            "events",
            "--num-records",
            "3000",
            "--record-size",
            "50",
            "--acks",
            "1",
        ],
    );
    assert!(
        perf.contains("3000 records sent,") && perf.contains("ms 99.9th."),
        "{perf}"
    );
    let perf = ok(
        dir,
        &[
            "perf",
            "consume",
            "events",
            "--num-records",
            "3006",
            "--timeout-ms",
            "20000",
        ],
    );
    assert!(perf.contains("3006 records consumed,"), "{perf}");

    // Configs change; deleted topics are gone.
    ok(
        dir,
        &[
            "topic",
            "alter-config",
            "events",
            "--set",
            "retention.ms=86400000",
            "--delete",
            "cleanup.policy",
        ],
    );
    assert!(ok(dir, &["topic", "delete", "wide"]).contains("Deleted topic wide."));
    assert!(!ok(dir, &["topic", "list"]).lines().any(|l| l == "wide"));

    // Errors name the problem.
    let unknown = gregor(dir, &["consume", "nosuch", "--max-messages", "1"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown topic 'nosuch'"));

    // Kill a broker: it gets fenced; start it again: it is unfenced with a new epoch.
    ok(dir, &["cluster", "kill", "broker-2"]);
    wait_until("broker-2 fenced", Duration::from_secs(30), || {
        status_line(dir, "broker-2").contains("FENCED")
    });
    let again = gregor(dir, &["cluster", "kill", "broker-2"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("broker-2 is not running"));
    ok(dir, &["cluster", "start", "broker-2"]);
    wait_until("broker-2 unfenced", Duration::from_secs(30), || {
        status_line(dir, "broker-2").contains("unfenced")
    });

    // Stop the active controller: another one takes over; start it again.
    let killed = ok(
        dir,
        &["cluster", "kill", "active-controller", "--signal", "TERM"],
    );
    let name = killed
        .split_whitespace()
        .nth(3)
        .expect("node name")
        .to_string();
    assert!(name.starts_with("controller-"), "{killed}");
    wait_until("a new active controller", Duration::from_secs(30), || {
        let now = status_line(dir, "Active controller:");
        now.contains("controller-") && !now.contains(&format!("{name} "))
    });
    ok(dir, &["cluster", "start", &name]);
    let watch = ok(
        dir,
        &[
            "cluster",
            "watch",
            "--iterations",
            "2",
            "--interval-ms",
            "200",
            "--no-clear",
        ],
    );
    assert_eq!(watch.matches("gregor cluster watch").count(), 2, "{watch}");

    // Down stops every node.
    let pids = pids(&cluster);
    assert_eq!(pids.len(), 6);
    ok(dir, &["cluster", "down"]);
    assert!(
        pids.iter().all(|p| !is_running(*p)),
        "a node survived cluster down"
    );
}

#[test]
fn missing_binaries_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = gregor(
        dir.path(),
        &[
            "cluster",
            "up",
            "--detach",
            "--bin-dir",
            empty.path().to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gregor-controller not found in --bin-dir"),
        "{err}"
    );
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["cluster", "up", "--help"],
        vec!["cluster", "watch", "--help"],
        vec!["quorum", "describe", "--help"],
        vec!["topic", "create", "--help"],
        vec!["produce", "--help"],
        vec!["consume", "--help"],
        vec!["perf", "produce", "--help"],
    ] {
        let out = ok(dir.path(), &args);
        assert!(out.contains("Usage:"), "{args:?}: {out}");
    }
}

#[test]
fn no_broker_reachable_names_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = gregor(dir.path(), &["topic", "list", "--bootstrap", "127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no broker reachable at 127.0.0.1:1"));
}

/// Failover with replication: acks=all records survive killing the partition leader.
#[test]
fn acknowledged_records_survive_a_leader_kill() {
    let cluster = Cluster::up(3, 3);
    let dir = cluster.path();
    ok(
        dir,
        &[
            "topic",
            "create",
            "safe",
            "--partitions",
            "1",
            "--replication-factor",
            "3",
            "--config",
            "min.insync.replicas=2",
        ],
    );
    let first: String = (0..50).map(|i| format!("a{i}\n")).collect();
    let out = gregor_with_input(dir, &["produce", "safe", "--acks", "all"], &first);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let killed = ok(dir, &["cluster", "kill", "leader:safe-0"]);
    assert!(killed.contains("broker-"), "{killed}");
    let second: String = (0..50).map(|i| format!("b{i}\n")).collect();
    let out = gregor_with_input(dir, &["produce", "safe", "--acks", "all"], &second);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let consumed = ok(
        dir,
        &[
            "consume",
            "safe",
            "--from-beginning",
            "--max-messages",
            "100",
        ],
    );
    let expected: Vec<String> = (0..50)
        .map(|i| format!("a{i}"))
        .chain((0..50).map(|i| format!("b{i}")))
        .collect();
    assert_eq!(consumed.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn foreground_cluster_stops_every_node_on_sigterm() {
    use std::io::BufRead;
    require_node_binaries();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(GREGOR)
        .arg("--dir")
        .arg(dir.path())
        .args([
            "cluster",
            "up",
            "--controllers",
            "1",
            "--brokers",
            "1",
            "--timeout-secs",
            "60",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A guard in case the test fails before gregor stops the nodes itself.
    let guard = Cluster { dir };
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("running in the foreground") => break,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("cluster up did not reach the foreground: {e}");
            }
        }
    }
    let pids = pids(&guard);
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|p| is_running(*p)));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "gregor did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.wait().unwrap().success());
    assert!(
        pids.iter().all(|p| !is_running(*p)),
        "a node survived the foreground stop"
    );
}
