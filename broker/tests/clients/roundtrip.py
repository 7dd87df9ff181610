"""Produce N keyed records with headers through one client library and codec, consume them
back, and check keys, values, headers, timestamps and per-partition order.

usage: roundtrip.py CLIENT BOOTSTRAP TOPIC PARTITIONS CODEC N
CLIENT: confluent | kafka-python | aiokafka
"""
import asyncio
import sys
import time

client, bootstrap, topic, partitions, codec, n = sys.argv[1:7]
partitions, n = int(partitions), int(n)
run = f"{client}-{codec}-{time.time_ns()}"
sent = {}  # key -> (value, headers, timestamp)


def record(i):
    key = f"{run}-{i}".encode()
    value = f"value-{i}-".encode() * (1 + i % 7)
    headers = [("i", str(i).encode()), ("run", run.encode())]
    ts = int(time.time() * 1000) - 1000 + (i % 500)
    sent[key] = (value, headers, ts)
    return key, value, headers, ts


def check(received):
    """received: list of (partition, offset, key, value, headers, ts) for this run."""
    assert len(received) == n, f"{client}/{codec}: consumed {len(received)} of {n}"
    by_part = {}
    for p, off, key, value, headers, ts in received:
        exp_value, exp_headers, exp_ts = sent[key]
        assert value == exp_value, key
        assert [(k, bytes(v)) for k, v in headers] == exp_headers, (key, headers)
        assert ts == exp_ts, (key, ts, exp_ts)
        by_part.setdefault(p, []).append((off, int(key.rsplit(b"-", 1)[1])))
    for p, items in by_part.items():
        offsets = [o for o, _ in items]
        assert offsets == sorted(offsets), f"partition {p} out of order"
        seq = [i for _, i in sorted(items)]
        assert seq == sorted(seq), f"partition {p}: records not in produce order"
    print(f"{client}/{codec}: {n} records round-tripped over {len(by_part)} partitions")


def confluent():
    from confluent_kafka import Consumer, Producer, TopicPartition
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "compression.type": codec,
                  "linger.ms": 5, "max.in.flight.requests.per.connection": 5})
    errors = []
    for i in range(n):
        key, value, headers, ts = record(i)
        while True:
            try:
                p.produce(topic, key=key, value=value, headers=headers, timestamp=ts,
                          on_delivery=lambda err, msg: err and errors.append(err))
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(60) == 0 and not errors, errors[:3]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": run, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, i, 0) for i in range(partitions)])
    got, deadline = [], time.time() + 60
    while len(got) < n and time.time() < deadline:
        for m in c.consume(1000, 1.0):
            assert not m.error(), m.error()
            if m.key().startswith(run.encode()):
                got.append((m.partition(), m.offset(), m.key(), m.value(), m.headers() or [], m.timestamp()[1]))
    c.close()
    check(got)


def kafka_python():
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=None if codec == "none" else codec)
    futures = []
    for i in range(n):
        key, value, headers, ts = record(i)
        futures.append(p.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts))
    p.flush()
    for f in futures:
        f.get(timeout=30)
    p.close()
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
    c.assign([TopicPartition(topic, i) for i in range(partitions)])
    c.seek_to_beginning()
    got = []
    for m in c:
        if m.key.startswith(run.encode()):
            got.append((m.partition, m.offset, m.key, m.value, m.headers, m.timestamp))
        if len(got) == n:
            break
    c.close()
    check(got)


async def aiokafka():
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=None if codec == "none" else codec)
    await p.start()
    batch = []
    for i in range(n):
        key, value, headers, ts = record(i)
        batch.append(await p.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts))
    await asyncio.gather(*batch)
    await p.stop()
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    c.assign([TopicPartition(topic, i) for i in range(partitions)])
    await c.seek_to_beginning()
    got, deadline = [], time.time() + 60
    while len(got) < n and time.time() < deadline:
        for tp, ms in (await c.getmany(timeout_ms=1000)).items():
            for m in ms:
                if m.key.startswith(run.encode()):
                    got.append((m.partition, m.offset, m.key, m.value, list(m.headers), m.timestamp))
    await c.stop()
    check(got)


if client == "confluent":
    confluent()
elif client == "kafka-python":
    kafka_python()
elif client == "aiokafka":
    asyncio.run(aiokafka())
else:
    sys.exit(f"unknown client {client}")
