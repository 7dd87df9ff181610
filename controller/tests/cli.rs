//! The `gregor-controller` binary's flags, data-dir checks and healthcheck.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gregor-controller");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run gregor-controller")
}

#[test]
fn invalid_settings_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let voters = format!("1@{addr}");
    let data = dir.path().to_str().unwrap();
    let base = [
        "--node-id",
        "1",
        "--listen",
        &addr,
        "--voters",
        &voters,
        "--data-dir",
        data,
        "--cluster-id",
        "c1",
    ];
    let mut args = base.to_vec();
    args.extend([
        "--broker-session-timeout-ms",
        "500",
        "--broker-heartbeat-interval-ms",
        "200",
    ]);
    let out = run(&args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--broker-heartbeat-interval-ms"), "{err}");
    let mut args = base.to_vec();
    args[1] = "4";
    let err = String::from_utf8_lossy(&run(&args).stderr).to_string();
    assert!(err.contains("--node-id"), "{err}");
}

#[tokio::test]
async fn healthcheck_and_data_dir_identity() {
    let mut c = Cluster::start(Path::new(BIN), 1, &[]);
    c.wait_leader(None, Duration::from_secs(20)).await;
    let addr = c.addr(1);
    assert!(run(&["healthcheck", "--addr", &addr]).status.success());
    let nobody = format!("127.0.0.1:{}", free_port());
    assert!(
        !run(&["healthcheck", "--addr", &nobody, "--timeout-ms", "300"])
            .status
            .success()
    );
    c.kill(1);
    // The data dir belongs to cluster `test-cluster`: another cluster id is refused.
    let data = c.nodes[0].data_dir.to_str().unwrap().to_string();
    let voters = format!("1@{addr}");
    let args = [
        "--node-id",
        "1",
        "--listen",
        &addr,
        "--voters",
        &voters,
        "--data-dir",
        &data,
        "--cluster-id",
        "other",
    ];
    let out = run(&args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to cluster `test-cluster`"), "{err}");
    // A restart with the right identity comes back with its state.
    c.start_node(1);
    c.wait_leader(None, Duration::from_secs(20)).await;
}
