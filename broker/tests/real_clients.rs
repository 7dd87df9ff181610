//! Real Kafka clients against a real cluster (3 controllers, 3 brokers): kcat,
//! confluent-kafka, kafka-python and aiokafka produce and consume keyed records with
//! headers through every compression codec.
//!
//! Needs `kcat` on the PATH and the Python clients in `/work/main/.venv` (or the venv named
//! by `GREGOR_VENV`); the test fails, rather than skips, when one is missing. It is
//! `#[ignore]`d so that `cargo test` works without them:
//!   cargo test -p gregor-broker --test real_clients -- --ignored

mod common;

use common::{Client, Cluster};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const PARTITIONS: i32 = 6;

fn python() -> PathBuf {
    let venv = std::env::var("GREGOR_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv"));
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: create the venv with confluent-kafka, kafka-python, aiokafka",
        py.display()
    );
    py
}

fn create_topic(addr: &str, topic: &str) {
    let mut c = Client::connect(addr).unwrap();
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.num_partitions = PARTITIONS;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);
    // Let every broker apply the new topic before the clients start.
    std::thread::sleep(std::time::Duration::from_millis(500));
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs kcat and the Python clients; run with --ignored"]
fn kcat_and_python_clients_round_trip_every_codec() {
    let cluster = Cluster::start(3);
    let bootstrap = cluster.broker_addrs.join(",");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/roundtrip.py");
    let py = python();

    // kcat -L lists the 3 brokers and the topic.
    create_topic(&cluster.broker_addrs[0], "clients");
    let listing = run(
        Command::new("kcat").args(["-L", "-b", &cluster.broker_addrs[0]]),
        "kcat -L",
    );
    assert!(listing.contains(" 3 brokers:"), "{listing}");
    assert!(
        listing.contains("topic \"clients\" with 6 partitions"),
        "{listing}"
    );

    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        // kcat: 2000 keyed records in, then all of them back out.
        let topic = format!("kcat-{codec}");
        create_topic(&cluster.broker_addrs[0], &topic);
        let mut child = Command::new("kcat")
            .args([
                "-P", "-b", &bootstrap, "-t", &topic, "-K:", "-z", codec, "-X", "acks=all",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("kcat is on the PATH");
        let input: String = (0..2000).map(|i| format!("key{i}:value{i}\n")).collect();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "kcat -P with {codec}");
        let out = run(
            Command::new("kcat").args([
                "-C",
                "-b",
                &bootstrap,
                "-t",
                &topic,
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%k=%s\\n",
            ]),
            "kcat -C",
        );
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        let mut expected: Vec<String> = (0..2000).map(|i| format!("key{i}=value{i}")).collect();
        expected.sort();
        assert_eq!(lines, expected, "kcat round trip with {codec}");

        for client in ["confluent", "kafka-python"] {
            run(
                Command::new(&py)
                    .arg(&script)
                    .args([client, &bootstrap, "clients", "6", codec, "3000"]),
                &format!("{client} with {codec}"),
            );
        }
    }
    run(
        Command::new(&py)
            .arg(&script)
            .args(["aiokafka", &bootstrap, "clients", "6", "gzip", "1000"]),
        "aiokafka",
    );
}
