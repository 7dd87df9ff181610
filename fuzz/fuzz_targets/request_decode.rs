//! Fuzzes request decoding through the path a broker connection uses: `take_frame` on the
//! raw bytes, then `api::dispatch` (header, body, handler), then the deferred reply with a
//! short timeout. Any panic or abort is a bug; errors and closed connections are fine.
//!
//! Run from the repository root (nightly toolchain):
//!   cargo +nightly fuzz run request_decode fuzz/seeds -- -max_total_time=300
//! The seeds are requests captured from kcat, confluent-kafka, kafka-python and aiokafka.

#![no_main]

use bytes::BytesMut;
use gregor_broker::api::dispatch;
use gregor_broker::broker::Broker;
use gregor_broker::config::{Config, Listener};
use libfuzzer_sys::fuzz_target;
use protocol::control::{MetadataImage, MetadataRecord, PartitionState};
use protocol::frame::{put_frame, take_frame};
use protocol::ids::{
    BrokerId, LeaderEpoch, MetadataOffset, PartitionEpoch, PartitionIndex, TopicId,
};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const MAX_FRAME: usize = 1 << 20;

struct Env {
    rt: tokio::runtime::Runtime,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            node_id: BrokerId(1),
            listeners: vec![Listener {
                name: "PLAINTEXT".into(),
                bind: "127.0.0.1:0".parse().unwrap(),
                advertised_host: "127.0.0.1".into(),
                advertised_port: 9092,
            }],
            inter_broker_listener: "PLAINTEXT".into(),
            controllers: vec!["127.0.0.1:1".into()],
            data_dir: dir.path().to_path_buf(),
            rack: None,
            cluster_id: "fuzz".into(),
            heartbeat_interval: Duration::from_millis(200),
            auto_create_topics: false,
            max_connections: 16,
            max_inflight_requests: 8,
            max_frame_bytes: MAX_FRAME,
            replica_lag_time_max: Duration::from_secs(2),
            metadata_max_wait: Duration::from_millis(5),
            metrics_listen: None,
            offsets_topic_partitions: 12,
            offsets_compact_after_records: 100_000,
        };
        let broker = Arc::new(Broker::new(config));
        let mut image = MetadataImage::new("fuzz");
        let mut batch = Vec::new();
        for topic in ["cap", "t1"] {
            let id = TopicId::random();
            batch.push(MetadataRecord::Topic {
                name: topic.into(),
                topic_id: id,
            });
            for p in 0..10 {
                batch.push(MetadataRecord::Partition(PartitionState {
                    topic_id: id,
                    partition: PartitionIndex(p),
                    replicas: vec![BrokerId(1)],
                    isr: vec![BrokerId(1)],
                    leader: Some(BrokerId(1)),
                    leader_epoch: LeaderEpoch(0),
                    partition_epoch: PartitionEpoch(0),
                }));
            }
        }
        image.apply_batch(MetadataOffset(1), &batch);
        broker.partitions.apply_image(&image, 0, true);
        broker.publish_image(Arc::new(image));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Env {
            rt,
            broker,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let env = env();
    let listener: Arc<str> = Arc::from("PLAINTEXT");
    // Seeds are frame bodies: frame them, so the fuzzer mutates inside real requests.
    let mut buf = BytesMut::new();
    put_frame(&mut buf, data);
    env.rt.block_on(async {
        while let Ok(Some(frame)) = take_frame(&mut buf, MAX_FRAME) {
            match dispatch(&env.broker, &listener, frame.freeze()).await {
                Err(_) => return,
                Ok(reply) => {
                    let _ = tokio::time::timeout(Duration::from_millis(5), reply).await;
                }
            }
        }
    });
});
