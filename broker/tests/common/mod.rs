//! Test harness: a real cluster of `gregor-controller` and `gregor-broker` processes on
//! free localhost ports, killed on drop, and a raw Kafka-protocol client over a blocking
//! socket that uses `kafka-protocol`'s encoders.

#![allow(dead_code)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions};
use protocol::records::plain_record;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CLUSTER_ID: &str = "test-cluster";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn controller_bin() -> PathBuf {
    let broker = Path::new(env!("CARGO_BIN_EXE_gregor-broker"));
    let c = broker.parent().unwrap().join("gregor-controller");
    assert!(
        c.exists(),
        "{} is missing: build it first with `cargo build -p gregor-controller` (same CARGO_TARGET_DIR)",
        c.display()
    );
    c
}

/// A running cluster; every process is killed when this is dropped.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub controller_addrs: Vec<String>,
    pub broker_addrs: Vec<String>,
    controllers: Vec<Child>,
    brokers: Vec<Option<Child>>,
}

impl Cluster {
    /// Starts 3 controllers and `brokers` brokers (ids 1..=brokers) and waits until every
    /// broker is listed as live.
    pub fn start(brokers: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let cports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let controller_addrs: Vec<String> =
            cports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let voters: Vec<String> = controller_addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}@{a}", i + 1))
            .collect();
        let mut controllers = Vec::new();
        for (i, addr) in controller_addrs.iter().enumerate() {
            let log = std::fs::File::create(dir.path().join(format!("controller-{}.log", i + 1)))
                .unwrap();
            let child = Command::new(controller_bin())
                .args([
                    "--node-id",
                    &(i + 1).to_string(),
                    "--listen",
                    addr,
                    "--voters",
                    &voters.join(","),
                ])
                .arg("--data-dir")
                .arg(dir.path().join(format!("c{}", i + 1)))
                .args(["--cluster-id", CLUSTER_ID])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn gregor-controller");
            controllers.push(child);
        }
        let broker_addrs: Vec<String> = (0..brokers)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let mut c = Cluster {
            dir,
            controller_addrs,
            broker_addrs,
            controllers,
            brokers: Vec::new(),
        };
        for i in 0..brokers {
            let child = c.spawn_broker(i + 1);
            c.brokers.push(Some(child));
        }
        c.wait_for_brokers(brokers);
        c
    }

    fn spawn_broker(&self, id: usize) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("broker-{id}.log")))
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_gregor-broker"))
            .args(["--node-id", &id.to_string()])
            .args([
                "--listeners",
                &format!("PLAINTEXT://{}", self.broker_addrs[id - 1]),
            ])
            .args(["--controllers", &self.controller_addrs.join(",")])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("b{id}")))
            .args(["--cluster-id", CLUSTER_ID])
            .args(["--max-frame-bytes", "1048576"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn gregor-broker")
    }

    /// The log of broker `id` (for failure messages).
    pub fn broker_log(&self, id: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("broker-{id}.log")))
            .unwrap_or_default()
    }

    /// The last lines of each controller's log (for failure messages).
    pub fn controller_logs(&self) -> String {
        (1..=self.controllers.len())
            .map(|i| {
                let path = self.dir.path().join(format!("controller-{i}.log"));
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                format!("controller {i} log (last 30 lines):\n{tail}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until broker 1's metadata lists `n` live brokers.
    pub fn wait_for_brokers(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut c) = Client::connect(&self.broker_addrs[0]) {
                let mut req = MetadataRequest::default();
                req.topics = Some(vec![]);
                if let Ok(m) = c.try_call::<_, MetadataResponse>(ApiKey::Metadata, 1, &req) {
                    if m.brokers.len() >= n {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "brokers did not come up; broker 1 log:\n{}\n{}",
                self.broker_log(1),
                self.controller_logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM to broker `id` and waits for it to exit.
    pub fn stop_broker(&mut self, id: usize) -> std::process::ExitStatus {
        let mut child = self.brokers[id - 1].take().expect("broker running");
        send_signal(child.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "broker {id} did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts broker `id` again (same data dir).
    pub fn restart_broker(&mut self, id: usize) {
        assert!(self.brokers[id - 1].is_none(), "broker {id} is running");
        let child = self.spawn_broker(id);
        self.brokers[id - 1] = Some(child);
    }
}

/// Sends a signal to `pid` with the `kill` command (keeps `unsafe` out of the tests).
fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self
            .brokers
            .iter_mut()
            .flatten()
            .chain(self.controllers.iter_mut())
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A blocking Kafka-protocol client for one connection.
pub struct Client {
    pub stream: TcpStream,
    next_correlation_id: i32,
}

impl Client {
    pub fn connect(addr: &str) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            next_correlation_id: 1,
        })
    }

    /// Encodes a request frame (size prefix included).
    pub fn frame<Req: Encodable>(
        key: ApiKey,
        version: i16,
        correlation_id: i32,
        req: &Req,
    ) -> BytesMut {
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = correlation_id;
        header.client_id = Some(StrBytes::from_static_str("gregor-test"));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, key.request_header_version(version))
            .unwrap();
        req.encode(&mut body, version).unwrap();
        let mut out = BytesMut::new();
        out.put_i32(body.len() as i32);
        out.extend_from_slice(&body);
        out
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one response frame body, or `None` if the broker closed the connection.
    pub fn recv_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).ok()?;
        let size = i32::from_be_bytes(size) as usize;
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    /// Sends one request and decodes its response.
    pub fn try_call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp, String> {
        let cid = self.next_correlation_id;
        self.next_correlation_id += 1;
        self.send_raw(&Self::frame(key, version, cid, req))
            .map_err(|e| e.to_string())?;
        let mut body = self.recv_frame().ok_or("connection closed")?;
        Self::decode_response(key, version, cid, &mut body)
    }

    pub fn decode_response<Resp: Decodable>(
        key: ApiKey,
        version: i16,
        cid: i32,
        body: &mut Bytes,
    ) -> Result<Resp, String> {
        if body.get_i32() != cid {
            return Err("correlation id mismatch".into());
        }
        if key.response_header_version(version) >= 1 {
            let tagged = body.get_u8();
            assert_eq!(tagged, 0, "no tagged fields in response headers expected");
        }
        let resp = Resp::decode(body, version).map_err(|e| format!("{key:?} v{version}: {e}"))?;
        if body.has_remaining() {
            return Err(format!(
                "{key:?} v{version}: {} trailing bytes",
                body.remaining()
            ));
        }
        Ok(resp)
    }

    pub fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        self.try_call(key, version, req)
            .unwrap_or_else(|e| panic!("{key:?} v{version} failed: {e}"))
    }

    /// Whether the broker closed the connection (reads EOF or an error).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A v2 record batch of `(key, value)` records with offsets from 0 and timestamps
/// `first_ts`, `first_ts + 1`, ... (recent ones: old records would be deleted by retention).
pub fn record_batch(
    records: impl IntoIterator<Item = (Option<Bytes>, Option<Bytes>)>,
    first_ts: i64,
    compression: Compression,
) -> Bytes {
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| plain_record(i, first_ts + i as i64, key, value))
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
