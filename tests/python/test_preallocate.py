"""Topic config `preallocate` through a real admin client and producer.

A topic made with preallocate=true and 1 MiB segments on three replicas: every replica's
first segment is allocated on disk when the topic is made, the next one once the active
segment is half full (by the maintenance tick), and the roll writes on into it; acks=all
writes from confluent-kafka read back in order, and a bad value is refused with
INVALID_CONFIG naming the key.
"""

import os
import time
from pathlib import Path

import pytest
from gregor_cluster import wait_for

SEGMENT = 1 << 20
HALF = 600  # 1 KiB records: past half a segment


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def test_preallocated_segments_roll_and_read_back(cluster):
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    topic = "prealloc"
    configs = {"preallocate": "true", "segment.bytes": str(SEGMENT)}
    admin.create_topics([NewTopic(topic, 1, 3, config=configs)])[topic].result(30)
    described = admin.describe_configs([ConfigResource("topic", topic)])
    assert list(described.values())[0].result(30)["preallocate"].value == "true"

    bad = {"preallocate": "sometimes"}
    with pytest.raises(KafkaException) as refused:
        admin.create_topics([NewTopic("prealloc-bad", 1, 1, config=bad)])["prealloc-bad"].result(30)
    assert "INVALID_CONFIG" in str(refused.value) and "preallocate" in str(refused.value)

    dirs = [Path(b["data_dir"]) / f"{topic}-0" for b in cluster.nodes("broker")]
    first = f"{0:020}.log"
    wait_for(lambda: all((d / first).exists() for d in dirs), 30, "every replica's log")
    for d in dirs:
        assert allocated(d / first) >= SEGMENT, f"{d}: the first segment is sparse"

    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
    errors = []
    sent = 0

    def produce(n):
        nonlocal sent
        for _ in range(n):
            producer.produce(topic, value=f"{sent:08d}".encode() + b"x" * 1016,
                             on_delivery=lambda e, m: errors.append(e) if e else None)
            sent += 1
        assert producer.flush(60) == 0 and not errors, errors[:3]

    def spares(d):
        return [p for p in d.glob("next-segment.*.tmp") if allocated(p) >= SEGMENT]

    # Past half the segment, each replica's maintenance tick allocates the next one.
    produce(HALF)
    wait_for(lambda: all(spares(d) for d in dirs), 30, "a segment allocated ahead on every replica")
    # The roll renames it: the new active segment is allocated in full, the spare is gone.
    produce(HALF)
    for d in dirs:
        logs = sorted(d.glob("*.log"))
        assert len(logs) == 2, f"{d}: {[p.name for p in logs]}"
        assert allocated(logs[1]) >= SEGMENT, f"{logs[1]} is sparse"
        assert not list(d.glob("next-segment.*")), f"{d}: the spare was not used"

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "unused-prealloc",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    seen, deadline = [], time.monotonic() + 60
    while len(seen) < sent and time.monotonic() < deadline:
        for msg in consumer.consume(1000, timeout=1.0):
            assert msg.error() is None, msg.error()
            seen.append(int(msg.value()[:8]))
    consumer.close()
    assert seen == list(range(sent))
