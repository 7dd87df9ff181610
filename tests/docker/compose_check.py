"""Checks a running compose cluster (started by tests/docker/test-compose): brokers listed
with their host addresses, produce and consume from the host, leader failover with no
acknowledged loss, and the killed broker's return. Exits non-zero on the first failure."""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy"))

import failover_demo as fd  # noqa: E402
from confluent_kafka import Consumer, Producer  # noqa: E402


def check(ok: bool, what: str) -> None:
    print(f"CHECK {'ok  ' if ok else 'FAIL'}: {what}", flush=True)
    if not ok:
        raise SystemExit(1)


def produce_consume(bootstrap: str, topic: str, count: int, limit_s: float = 60) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
                         "message.timeout.ms": int(limit_s * 1000) // 2})
    acked: list[bytes] = []
    errors: list[str] = []

    def cb(err, msg):
        (errors.append(str(err)) if err else acked.append(msg.value()))

    for i in range(count):
        producer.produce(topic, key=f"k{i % 7}".encode(), value=f"hello-{uuid.uuid4().hex}".encode(), on_delivery=cb)
    left = producer.flush(limit_s)
    check(len(acked) == count and left == 0,
          f"produced {count} records to {topic} with acks=all from the host "
          f"({len(acked)} acknowledged, {len(errors)} failed {errors[:3]}, {left} undelivered)")

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"compose-test-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
    })
    got: set[bytes] = set()
    want = set(acked)
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + limit_s
        while not want <= got and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                got.add(msg.value())
    finally:
        consumer.close()
    check(want <= got, f"consumed the {count} records in a consumer group "
          f"({len(want & got)} of them read)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", required=True)
    ap.add_argument("--bootstrap", default=fd.default_bootstrap())
    args = ap.parse_args()
    bootstrap = args.bootstrap

    brokers = fd.wait_brokers(bootstrap, 3, 60)
    want = {f"127.0.0.1:{p.rsplit(':', 1)[1]}" for p in bootstrap.split(",")}
    check(set(brokers.values()) == want,
          f"Metadata lists 3 brokers at their published host addresses: {sorted(brokers.items())}")

    topic = "compose-test"
    fd.create_topic(bootstrap, topic, partitions=3, rf=3, min_isr=2)
    state = fd.wait_full_isr(bootstrap, topic, 3, 60)
    check(True, f"created {topic} (3 partitions, RF 3, min.insync.replicas=2); partition 0 "
          f"(leader, replicas, isr) = {state}")
    produce_consume(bootstrap, topic, 200)

    demo_topic = "compose-failover"
    fd.create_topic(bootstrap, demo_topic, partitions=1, rf=3, min_isr=2)
    result = None
    try:
        result = fd.run_failover(bootstrap, args.project, demo_topic, before_s=2, after_s=3)
        fd.report(result)
    finally:
        if result is None:
            for b in (1, 2, 3):
                try:
                    fd.docker("start", fd.container_of(args.project, f"broker-{b}"))
                except Exception as e:  # noqa: BLE001 - best effort, teardown follows
                    print(f"could not start broker-{b}: {e}")
    check(result.pause_s is not None,
          f"production continued after killing the leader container broker-{result.killed_broker}"
          f" (paused {result.pause_s if result.pause_s is None else round(result.pause_s, 2)}s)")
    check(result.new_leader not in (-1, result.killed_broker),
          f"a new leader took over: broker {result.new_leader}")
    check(not result.missing,
          f"no acknowledged write lost: {result.acked} acknowledged, {result.read} read back, "
          f"{len(result.missing)} missing {result.missing[:10]}")

    fd.restart_broker(args.project, result.killed_broker)
    check(True, f"broker-{result.killed_broker} restarted and reports healthy")
    state = fd.wait_full_isr(bootstrap, demo_topic, 3, 90)
    check(result.killed_broker in state[2],
          f"broker {result.killed_broker} rejoined the ISR of {demo_topic}[0]: {state}")
    produce_consume(bootstrap, topic, 50)
    print("compose test: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
