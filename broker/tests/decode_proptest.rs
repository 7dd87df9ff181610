//! Bad input from the network: random and mutated real request frames go through the same
//! path a connection uses (`take_frame`, then `api::dispatch`, then the deferred reply),
//! and must give an error reply or a "close the connection" answer, never a panic.
//!
//! The real frames are the captures in `fuzz/seeds/` (recorded from kcat, confluent-kafka,
//! kafka-python and aiokafka through a recording proxy). This is the stable-toolchain
//! stand-in for the cargo-fuzz target in `fuzz/fuzz_targets/request_decode.rs`.

use bytes::BytesMut;
use gregor_broker::api::{dispatch, Reply};
use gregor_broker::broker::Broker;
use gregor_broker::config::{Config, Listener};
use proptest::prelude::*;
use protocol::control::{MetadataImage, MetadataRecord, PartitionState};
use protocol::frame::{put_frame, take_frame};
use protocol::ids::{
    BrokerId, LeaderEpoch, MetadataOffset, PartitionEpoch, PartitionIndex, TopicId,
};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const MAX_FRAME: usize = 1 << 20;

fn seeds() -> &'static Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        out.sort();
        assert!(
            out.len() >= 20,
            "expected the captured seeds in {}",
            dir.display()
        );
        out
    })
}

struct Env {
    rt: tokio::runtime::Runtime,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

/// A broker with no controllers reachable, leading every partition of the topics the
/// seeds use, so produce frames reach the log's validation.
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
            auto_create_topics: true,
            max_connections: 16,
            max_inflight_requests: 8,
            max_frame_bytes: MAX_FRAME,
            replica_lag_time_max: Duration::from_secs(2),
            metadata_max_wait: Duration::from_millis(20),
            metrics_listen: None,
            offsets_topic_partitions: 12,
            offsets_compact_after_records: 100_000,
        };
        let broker = Arc::new(Broker::new(config));
        let mut image = MetadataImage::new("fuzz");
        let mut batch = vec![MetadataRecord::RegisterBroker {
            broker_id: BrokerId(1),
            incarnation_id: uuid::Uuid::nil(),
            listeners: vec![],
            rack: None,
        }];
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
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
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

/// Feeds `bytes` as a stream of frames through the connection's path.
fn feed(bytes: &[u8]) {
    let env = env();
    let listener: Arc<str> = Arc::from("PLAINTEXT");
    env.rt.block_on(async {
        let mut buf = BytesMut::from(bytes);
        while let Ok(Some(frame)) = take_frame(&mut buf, MAX_FRAME) {
            match dispatch(&env.broker, &listener, frame.freeze()).await {
                Err(_) => return, // the connection would close
                Ok(reply) => match tokio::time::timeout(Duration::from_millis(20), reply).await {
                    Ok(Reply::Frame(f)) => assert!(
                        f.len() >= 8,
                        "a response frame has a size and a correlation id"
                    ),
                    Ok(Reply::Pieces(p)) => assert!(
                        p.iter().map(|b| b.len()).sum::<usize>() >= 8,
                        "a response frame has a size and a correlation id"
                    ),
                    Ok(Reply::None) | Ok(Reply::Close) | Err(_) => {}
                },
            }
        }
    });
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    put_frame(&mut out, body);
    out.to_vec()
}

#[test]
fn every_seed_is_answered() {
    let env = env();
    let listener: Arc<str> = Arc::from("PLAINTEXT");
    for seed in seeds() {
        let reply = env.rt.block_on(async {
            let r = dispatch(&env.broker, &listener, bytes::Bytes::from(seed.clone()))
                .await
                .expect("a real request decodes");
            tokio::time::timeout(Duration::from_secs(2), r).await
        });
        match reply {
            Ok(Reply::Frame(_)) | Ok(Reply::Pieces(_)) | Ok(Reply::None) => {}
            other => panic!("seed of api {:?} not answered: {other:?}", &seed[..4]),
        }
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, xor: u8 },
    Set { at: usize, value: u8 },
    SetI32 { at: usize, value: i32 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        (
            any::<usize>(),
            prop_oneof![Just(i32::MAX), Just(-1), Just(0x7fff_fff0), any::<i32>()]
        )
            .prop_map(|(at, value)| Mutation::SetI32 { at, value }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in mutations {
        if b.is_empty() {
            break;
        }
        let n = b.len();
        match m {
            Mutation::Flip { at, xor } => b[at % n] ^= xor,
            Mutation::Set { at, value } => b[at % n] = *value,
            Mutation::SetI32 { at, value } => {
                let at = at % n;
                for (i, x) in value.to_be_bytes().iter().enumerate() {
                    if at + i < n {
                        b[at + i] = *x;
                    }
                }
            }
            Mutation::Truncate { at } => b.truncate(at % n),
            Mutation::Insert { at, bytes } => {
                let at = at % n;
                b.splice(at..at, bytes.iter().copied());
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_real_requests_never_panic(idx in any::<usize>(), mutations in proptest::collection::vec(mutation(), 1..6)) {
        let seeds = seeds();
        let body = apply(&seeds[idx % seeds.len()], &mutations);
        // The mutated body as one well-sized frame, and the raw bytes as a stream (so the
        // size prefix itself is attacked too).
        feed(&framed(&body));
        feed(&body);
    }

    #[test]
    fn random_frames_never_panic(key in 0i16..70, version in -1i16..20, rest in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut body = Vec::new();
        body.extend_from_slice(&key.to_be_bytes());
        body.extend_from_slice(&version.to_be_bytes());
        body.extend_from_slice(&7i32.to_be_bytes());
        body.extend_from_slice(&rest);
        feed(&framed(&body));
    }
}

/// A few bytes claiming a huge array must not reserve memory for it (this aborted the
/// process before the vendored kafka-protocol fix).
#[test]
fn huge_array_lengths_are_decode_errors() {
    for (key, version) in [(3i16, 0i16), (3, 12), (0, 9), (1, 12), (19, 7)] {
        let mut body = Vec::new();
        body.extend_from_slice(&key.to_be_bytes());
        body.extend_from_slice(&version.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
        let api = kafka_protocol::messages::ApiKey::try_from(key).unwrap();
        if api.request_header_version(version) >= 2 {
            body.push(0); // header tagged fields
        }
        body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xf0, 0xff, 0xff, 0xff, 0x0f]);
        feed(&framed(&body));
    }
}
