//! Broker lifecycle with real processes: controlled shutdown on SIGTERM, restart with log
//! recovery, and topic deletion removing the partition directories.

mod common;

use bytes::Bytes;
use common::{now_ms, record_batch, wait_for, Client, Cluster};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use std::time::Duration;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch(tag: &str, n: usize) -> Bytes {
    let records = (0..n).map(|i| {
        let key = Bytes::from(format!("{tag}-{i}"));
        (Some(key), Some(Bytes::from_static(b"value")))
    });
    record_batch(records, now_ms(), Compression::Lz4)
}

fn partitions(c: &mut Client, topic: &str) -> Vec<(i32, i32)> {
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(name(topic));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    let m: MetadataResponse = c.call(ApiKey::Metadata, 12, &req);
    m.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect()
}

fn produce(addr: &str, topic: &str, partition: i32, records: Bytes) -> i16 {
    let mut c = Client::connect(addr).unwrap();
    let mut p = produce_request::PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = produce_request::TopicProduceData::default();
    t.name = name(topic);
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = vec![t];
    let r: ProduceResponse = c.call(ApiKey::Produce, 9, &req);
    r.responses[0].partition_responses[0].error_code
}

fn fetch_keys(addr: &str, topic: &str, partition: i32) -> Result<Vec<String>, i16> {
    let mut c = Client::connect(addr).unwrap();
    let mut p = fetch_request::FetchPartition::default();
    p.partition = partition;
    p.partition_max_bytes = 1 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = name(topic);
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_bytes = 1 << 20;
    req.topics = vec![t];
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &req);
    let pd = &r.responses[0].partitions[0];
    if pd.error_code != 0 {
        return Err(pd.error_code);
    }
    let mut records = pd.records.clone().unwrap_or_default();
    let mut keys = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut records).unwrap() {
        for r in set.records {
            keys.push(String::from_utf8(r.key.unwrap().to_vec()).unwrap());
        }
    }
    Ok(keys)
}

#[test]
fn controlled_shutdown_restart_recovery_and_delete() {
    let mut cluster = Cluster::start(3);
    let addrs = cluster.broker_addrs.clone();
    let mut c = Client::connect(&addrs[1]).unwrap();
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = name("life");
    t.num_partitions = 3;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(r.topics[0].error_code, 0);

    let parts = partitions(&mut c, "life");
    for &(p, leader) in &parts {
        // The leader may apply the new topic a moment after the broker that answered.
        wait_for("the first produce", Duration::from_secs(10), || {
            (produce(
                &addrs[leader as usize - 1],
                "life",
                p,
                batch(&format!("p{p}"), 5),
            ) == 0)
                .then_some(())
        });
    }
    let (on_1, _) = *parts
        .iter()
        .find(|(_, l)| *l == 1)
        .expect("broker 1 leads a partition");

    // SIGTERM: a controlled shutdown, a clean exit.
    let status = cluster.stop_broker(1);
    assert!(
        status.success(),
        "broker 1 exited with {status}; log:\n{}",
        cluster.broker_log(1)
    );
    let log = cluster.broker_log(1);
    assert!(log.contains("controlled shutdown granted"), "log:\n{log}");
    wait_for(
        "broker 1 to leave the metadata",
        Duration::from_secs(20),
        || {
            let parts = partitions(&mut c, "life");
            parts.iter().all(|(_, l)| *l != 1).then_some(())
        },
    );

    // Restart: the log is reopened and serves the same records.
    cluster.restart_broker(1);
    cluster.wait_for_brokers(3);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let keys = loop {
        let ps = partitions(&mut c, "life");
        let fetched = fetch_keys(&addrs[0], "life", on_1);
        if ps.iter().any(|(p, l)| *p == on_1 && *l == 1) {
            if let Ok(keys) = &fetched {
                break keys.clone();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "broker 1 did not lead partition {on_1} again: metadata {ps:?}, fetch {fetched:?}; broker 1 log:\n{}",
            cluster.broker_log(1)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let expected: Vec<String> = (0..5).map(|i| format!("p{on_1}-{i}")).collect();
    assert_eq!(keys, expected);
    assert_eq!(produce(&addrs[0], "life", on_1, batch("again", 2)), 0);
    assert_eq!(fetch_keys(&addrs[0], "life", on_1).unwrap().len(), 7);

    // Delete: every partition directory goes away, first renamed to `-delete` and then
    // removed by each broker's deleter thread.
    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![name("life")];
    let r: DeleteTopicsResponse = c.call(ApiKey::DeleteTopics, 5, &req);
    assert_eq!(r.responses[0].error_code, 0);
    wait_for(
        "partition directories to be deleted",
        Duration::from_secs(10),
        || {
            let left = (1..=3).any(|b| {
                std::fs::read_dir(cluster.dir.path().join(format!("b{b}")))
                    .unwrap()
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("life-"))
            });
            (!left).then_some(())
        },
    );
}

#[test]
fn healthcheck_and_flag_errors() {
    let bin = env!("CARGO_BIN_EXE_gregor-broker");
    // Missing or bad flags: a non-zero exit naming the flag.
    let out = std::process::Command::new(bin)
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--node-id"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(bin)
        .env_clear()
        .args([
            "--node-id",
            "1",
            "--listeners",
            "PLAINTEXT://0.0.0.0:9092",
            "--controllers",
            "127.0.0.1:1",
        ])
        .args(["--data-dir", "/tmp/unused", "--cluster-id", "c"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--advertised-listeners"));

    let cluster = Cluster::start(3);
    let status = std::process::Command::new(bin)
        .args([
            "healthcheck",
            "--addr",
            &cluster.broker_addrs[1],
            "--node-id",
            "2",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let status = std::process::Command::new(bin)
        .args([
            "healthcheck",
            "--addr",
            &cluster.broker_addrs[1],
            "--node-id",
            "7",
            "--timeout-ms",
            "2000",
        ])
        .status()
        .unwrap();
    assert!(!status.success(), "broker 7 does not exist");
    let status = std::process::Command::new(bin)
        .args([
            "healthcheck",
            "--addr",
            "127.0.0.1:1",
            "--timeout-ms",
            "2000",
        ])
        .status()
        .unwrap();
    assert!(!status.success());
}
