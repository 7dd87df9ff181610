"""Real Kafka clients produce keyed records with headers and read them back unchanged.

confluent-kafka (librdkafka) and kafka-python each produce 100,000 records once per
compression codec to a 6-partition topic, then consume everything back from the start:
keys, values, headers and timestamps must be identical, in order within each partition.
aiokafka produces and consumes once.
"""

import asyncio
import time
from collections import defaultdict

import pytest

N = 100_000
PARTITIONS = 6
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
# Recent timestamps: records older than retention.ms (7 days) are deleted, as in Kafka.
BASE_TS = int(time.time() * 1000) - 10 * N


def create_topic(bootstrap, name, partitions=PARTITIONS, rf=1):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf)])[name]
    fut.result(timeout=30)
    # The topic is usable once every partition has a leader in the metadata.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=10).topics[name]
        if md.error is None and len(md.partitions) == partitions and all(
            p.leader >= 0 for p in md.partitions.values()
        ):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topic {name} has no leaders for all partitions")


def record(i, codec):
    key = f"key-{i % 977}".encode()
    value = (f"value-{i}-" + "x" * (i % 200)).encode()
    headers = [("seq", str(i).encode()), ("codec", codec.encode())]
    return key, value, headers, BASE_TS + i


def check_partitions(acked, consumed, n):
    """acked/consumed: partition -> list of (offset, key, value, headers, ts)."""
    assert sum(len(v) for v in acked.values()) == n, "not every record was acknowledged"
    assert sum(len(v) for v in consumed.values()) == n, (
        f"consumed {sum(len(v) for v in consumed.values())} records, produced {n}"
    )
    for p, got in consumed.items():
        want = sorted(acked[p])
        assert [g[0] for g in got] == [w[0] for w in want], f"partition {p}: offsets differ"
        for g, w in zip(got, want):
            assert g == w, f"partition {p} offset {g[0]}: consumed {g!r}, acknowledged {w!r}"
        seqs = [int(dict(g[3])["seq"]) for g in got]
        assert seqs == sorted(seqs), f"partition {p}: records out of produce order"


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_kafka_roundtrip(cluster, codec):
    from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING

    topic = f"rt-confluent-{codec}"
    create_topic(cluster.bootstrap, topic)
    producer = Producer({
        "bootstrap.servers": cluster.bootstrap,
        "compression.type": codec,
        "linger.ms": 5,
        "acks": "all",
    })
    acked, errors = defaultdict(list), []

    def on_delivery(err, msg, sent):
        # librdkafka's delivery reports carry no headers: record what was sent, at the
        # partition and offset the broker assigned.
        if err is not None:
            errors.append(err)
        else:
            key, value, headers, ts = sent
            assert (msg.key(), msg.value()) == (key, value)
            acked[msg.partition()].append((msg.offset(), key, value, headers, ts))

    for i in range(N):
        key, value, headers, ts = record(i, codec)
        while True:
            try:
                producer.produce(topic, key=key, value=value, headers=headers, timestamp=ts,
                                 on_delivery=lambda e, m, sent=(key, value, headers, ts): on_delivery(e, m, sent))
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0, "records still in flight after 120 s"
    assert not errors, f"delivery errors: {errors[:5]}"

    consumer = Consumer({
        "bootstrap.servers": cluster.bootstrap,
        "group.id": f"unused-{topic}",
        "enable.auto.commit": False,
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    consumed = defaultdict(list)
    total, deadline = 0, time.monotonic() + 120
    while total < N and time.monotonic() < deadline:
        for msg in consumer.consume(10_000, timeout=1.0):
            assert msg.error() is None, msg.error()
            consumed[msg.partition()].append(
                (msg.offset(), msg.key(), msg.value(), [(k, v) for k, v in (msg.headers() or [])], msg.timestamp()[1])
            )
            total += 1
    consumer.close()
    check_partitions(acked, consumed, N)


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_roundtrip(cluster, codec):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = f"rt-kafkapython-{codec}"
    create_topic(cluster.bootstrap, topic)
    producer = KafkaProducer(
        bootstrap_servers=cluster.bootstrap.split(","),
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
        acks="all",
        batch_size=64 * 1024,
    )
    futures = []
    for i in range(N):
        key, value, headers, ts = record(i, codec)
        futures.append((producer.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts),
                        key, value, headers, ts))
    producer.flush(120)
    acked = defaultdict(list)
    for fut, key, value, headers, ts in futures:
        md = fut.get(timeout=60)
        acked[md.partition].append((md.offset, key, value, headers, ts))
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap.split(","), enable_auto_commit=False,
                             group_id=None, max_poll_records=5000)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    consumed = defaultdict(list)
    total, deadline = 0, time.monotonic() + 180
    while total < N and time.monotonic() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=1000).items():
            for m in msgs:
                consumed[tp.partition].append((m.offset, m.key, m.value, list(m.headers), m.timestamp))
                total += 1
    consumer.close()
    check_partitions(acked, consumed, N)


def test_aiokafka_roundtrip(cluster):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    topic = "rt-aiokafka"
    create_topic(cluster.bootstrap, topic)
    n = 5_000

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
        await producer.start()
        acked = defaultdict(list)
        try:
            for i in range(n):
                key, value, headers, ts = record(i, "aio")
                md = await (await producer.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts))
                acked[md.partition].append((md.offset, key, value, headers, ts))
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        consumed = defaultdict(list)
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
            await consumer.seek_to_beginning()
            total, deadline = 0, time.monotonic() + 60
            while total < n and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, msgs in batches.items():
                    for m in msgs:
                        consumed[tp.partition].append((m.offset, m.key, m.value, list(m.headers), m.timestamp))
                        total += 1
        finally:
            await consumer.stop()
        return acked, consumed

    acked, consumed = asyncio.run(run())
    check_partitions(acked, consumed, n)
