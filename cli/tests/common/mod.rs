//! Shared harness of the CLI's end-to-end tests: run the real `gregor` binary with a time
//! limit, and a detached local cluster in a temp dir that `cluster down` always stops
//! (drop guard).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const GREGOR: &str = env!("CARGO_BIN_EXE_gregor");
/// Limit of one `gregor` invocation.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

pub fn bin_dir() -> PathBuf {
    Path::new(GREGOR)
        .parent()
        .expect("gregor has a parent dir")
        .to_path_buf()
}

/// The controller and broker binaries must sit beside `gregor` (same target dir).
pub fn require_node_binaries() {
    for name in ["gregor-controller", "gregor-broker"] {
        let p = bin_dir().join(name);
        assert!(
            p.is_file(),
            "{} is missing: build the node binaries into the same target dir first \
             (cargo build -p gregor-controller -p gregor-broker)",
            p.display()
        );
    }
}

/// Runs `gregor --dir DIR args...` with `stdin`, killing it after [`COMMAND_TIMEOUT`].
pub fn gregor_with_input(dir: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(GREGOR)
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gregor");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "gregor {args:?} did not finish in {COMMAND_TIMEOUT:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn gregor(dir: &Path, args: &[&str]) -> Output {
    gregor_with_input(dir, args, "")
}

/// Runs gregor with `stdin` and returns stdout, failing the test (with stderr) on a
/// non-zero exit.
pub fn ok_with_input(dir: &Path, args: &[&str], stdin: &str) -> String {
    let out = gregor_with_input(dir, args, stdin);
    assert!(
        out.status.success(),
        "gregor {args:?} failed ({})\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs gregor and returns stdout, failing the test (with stderr) on a non-zero exit.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    ok_with_input(dir, args, "")
}

/// Polls `cond` until it holds or `limit` passes.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A detached local cluster in a temp dir; `cluster down` on drop, whatever happened.
pub struct Cluster {
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub fn up(controllers: u32, brokers: u32) -> Cluster {
        require_node_binaries();
        let cluster = Cluster {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let (c, b) = (controllers.to_string(), brokers.to_string());
        let out = ok(
            cluster.path(),
            &[
                "cluster",
                "up",
                "--detach",
                "--controllers",
                &c,
                "--brokers",
                &b,
                "--timeout-secs",
                "60",
            ],
        );
        assert!(out.contains("bootstrap:"), "{out}");
        cluster
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The nodes of cluster.json.
    pub fn nodes(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.path().join("cluster.json")).expect("cluster.json");
        let file: serde_json::Value = serde_json::from_str(&text).expect("json");
        file["nodes"].as_array().expect("nodes").clone()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = gregor(self.path(), &["cluster", "down"]);
    }
}
