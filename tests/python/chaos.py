"""Fault injection with an acknowledged-write checker (issue 5's proof).

Producers write unique values with acks=all to a 3-replica topic with
min.insync.replicas=2 and record every acknowledged (partition, offset, value); a consumer
polls throughout; meanwhile a bounded number of fault rounds run (kill -9 of a partition
leader, of a follower, of the active controller; SIGSTOP/SIGCONT pauses; restarts;
isolating a partition leader from the controllers through a TCP proxy of the test's own).
Then everything heals, every partition is read from the start through the leader and
straight from every replica's segment files, and `checker.check` reports anomalies.

With `--idempotent` the producers enable idempotence (librdkafka's `enable.idempotence`:
producer ids, sequences, five requests in flight, retries) and duplicates and reordered
records fail the run too, as do fatal producer errors.

Run by tests/python/test_chaos.py, or by hand:
    .venv/bin/python tests/python/chaos.py --rounds 20
"""

import argparse
import glob
import json
import os
import random
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from checker import check, fatal, report  # noqa: E402
from gregor_cluster import Cluster, wait_for  # noqa: E402
from netproxy import Proxy  # noqa: E402

TOPIC = "chaos"
PARTITIONS = 3


def create_topic(bootstrap):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(30)


def leaders(bootstrap):
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(TOPIC, timeout=5)
    return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in md.topics[TOPIC].partitions.values()}


class Producers:
    def __init__(self, bootstrap, count, stop, idempotent=False, request_timeout_ms=None):
        self.acked, self.errors, self.fatal_errors, self.stop = [], [], [], stop
        self.idempotent, self.request_timeout_ms = idempotent, request_timeout_ms
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(bootstrap, i), daemon=True) for i in range(count)]

    def run(self, bootstrap, idx):
        from confluent_kafka import Producer

        def on_error(err):
            if err.fatal():
                with self.lock:
                    self.fatal_errors.append(str(err))

        conf = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                "message.timeout.ms": 10000, "retries": 1000000, "retry.backoff.ms": 50,
                "error_cb": on_error}
        if self.idempotent:
            conf["enable.idempotence"] = True
        if self.request_timeout_ms:
            conf["request.timeout.ms"] = self.request_timeout_ms
        p = Producer(conf)

        def cb(err, msg):
            with self.lock:
                if err is None:
                    self.acked.append((msg.partition(), msg.offset(), msg.value().decode()))
                else:
                    self.errors.append(str(err))

        seq = 0
        while not self.stop.is_set():
            try:
                p.produce(TOPIC, value=f"p{idx}-{seq}".encode(), on_delivery=cb)
                seq += 1
            except BufferError:
                pass
            p.poll(0.002)
        p.flush(30)


class Poller(threading.Thread):
    def __init__(self, bootstrap, stop):
        super().__init__(daemon=True)
        self.bootstrap, self.stop, self.polled = bootstrap, stop, []

    def caught_up(self, acked):
        last = {}
        for p, o, _ in list(acked):
            last[p] = max(last.get(p, -1), o)
        seen = {}
        for p, o, _ in list(self.polled):
            seen[p] = max(seen.get(p, -1), o)
        return all(seen.get(p, -1) >= o for p, o in last.items())

    def run(self):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "chaos-poller",
                      "enable.auto.commit": False})
        c.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        while not self.stop.is_set():
            for m in c.consume(1000, timeout=0.2):
                if m.error() is None:
                    self.polled.append((m.partition(), m.offset(), m.value().decode()))
        c.close()


def read_through_leader(bootstrap):
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    moving = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError._TIMED_OUT, KafkaError._TRANSPORT}

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-final", "enable.auto.commit": False})

    def watermarks(tp):
        # Leadership may still move once the ISR is whole again (the controller's preferred
        # leader election): retry on a retriable error, as a Kafka client does.
        deadline = time.monotonic() + 60
        while True:
            try:
                return c.get_watermark_offsets(tp, timeout=10)
            except KafkaException as e:
                err = e.args[0]
                if not (err.retriable() or err.code() in moving) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    out = {}
    for p in range(PARTITIONS):
        lo, hi = watermarks(TopicPartition(TOPIC, p))
        c.assign([TopicPartition(TOPIC, p, lo)])
        recs, deadline = [], time.monotonic() + 60
        while (not recs or recs[-1][0] < hi - 1) and hi > lo and time.monotonic() < deadline:
            for m in c.consume(5000, timeout=1):
                if m.error() is None:
                    recs.append((m.offset(), m.value().decode()))
        out[p] = recs
    c.close()
    return out


def varint(buf, pos):
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def read_segment_files(part_dir):
    """Every (offset, value) in an uncompressed partition directory, in file order."""
    recs = []
    for path in sorted(glob.glob(os.path.join(part_dir, "*.log"))):
        data = Path(path).read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if length <= 0 or pos + 12 + length > len(data):
                break
            count = struct.unpack_from(">i", data, pos + 57)[0]
            r = pos + 61
            for _ in range(count):
                _, r = varint(data, r)  # record length
                r += 1  # attributes
                _, r = varint(data, r)  # timestamp delta
                odelta, r = varint(data, r)
                klen, r = varint(data, r)
                r += max(klen, 0)
                vlen, r = varint(data, r)
                value = data[r:r + vlen].decode()
                r += vlen
                hcount, r = varint(data, r)
                for _ in range(hcount):
                    hk, r = varint(data, r)
                    r += hk
                    hv, r = varint(data, r)
                    r += max(hv, 0)
                recs.append((base + odelta, value))
            pos += 12 + length
    return recs


def route_brokers_through_proxies(cluster):
    """Restarts every broker with its controller connections going through proxies of ours,
    so that a broker can be cut off from the controllers while it still serves clients and
    the other brokers. Returns broker name -> its proxies."""
    info = cluster.info()
    controllers = [n["addresses"]["control"] for n in info["nodes"] if n["role"] == "controller"]
    proxies = {}
    for node in info["nodes"]:
        if node["role"] != "broker":
            continue
        mine = [Proxy(c) for c in controllers]
        proxies[node["name"]] = mine
        argv = node["argv"]
        argv[argv.index("--controllers") + 1] = ",".join(p.address for p in mine)
    (cluster.dir / "cluster.json").write_text(json.dumps(info, indent=2))
    for name in proxies:
        pid = next(n["pid"] for n in cluster.nodes("broker") if n["name"] == name)
        cluster.kill(name, "TERM")
        wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), 40, f"{name} to stop")
        cluster.start(name)
    # Metadata alone can list a restarted broker by its old registration (in controlled
    # shutdown, not yet fenced) before the new one is unfenced; each process's own metric
    # says whether *it* is registered and unfenced.
    wait_for(lambda: all(says_unfenced(n) for n in cluster.nodes("broker"))
             and len(leaders_brokers(cluster.bootstrap)) == len(proxies),
             30, "every restarted broker to be unfenced")
    return proxies


def says_unfenced(node) -> bool:
    """Whether the broker process of `node` reports itself registered and unfenced
    (gregor_broker_fenced 0 on its metrics endpoint)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{node['addresses']['metrics']}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return False
    values = [line.split()[-1] for line in text.splitlines() if line.startswith("gregor_broker_fenced")]
    return bool(values) and all(float(v) == 0 for v in values)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except OSError:
        return True


def leaders_brokers(bootstrap):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5).brokers


KINDS = ("kill-leader", "kill-follower", "kill-controller", "pause-broker", "isolate-leader")


def run(cluster, rounds, seconds_per_round=2.0, seed=None, idempotent=False, kinds=KINDS,
        request_timeout_ms=None):
    """`kinds`: the faults to draw from ("pause-leader" stops a partition leader for
    `seconds_per_round`); `request_timeout_ms`: the producers' request.timeout.ms (a pause
    longer than it makes them resend requests the broker then also appends)."""
    rng = random.Random(seed)
    proxies = route_brokers_through_proxies(cluster)
    create_topic(cluster.bootstrap)
    stop = threading.Event()
    producers = Producers(cluster.bootstrap, 3, stop, idempotent, request_timeout_ms)
    poller_stop = threading.Event()
    poller = Poller(cluster.bootstrap, poller_stop)
    for t in producers.threads:
        t.start()
    poller.start()
    faults = []
    try:
        for r in range(rounds):
            time.sleep(seconds_per_round / 2)
            brokers = {n["id"]: n for n in cluster.nodes("broker")}
            kind = rng.choice(list(kinds))
            try:
                lead = leaders(cluster.bootstrap)
            except Exception:  # noqa: BLE001 - metadata may be briefly unavailable mid-fault
                lead = {}
            p = rng.randrange(PARTITIONS)
            leader_id, replicas = (lead.get(p) or (-1, list(brokers)))[:2]
            if kind == "kill-leader" and leader_id in brokers:
                victim = brokers[leader_id]["name"]
            elif kind == "kill-follower":
                victim = brokers[rng.choice([b for b in replicas if b != leader_id] or list(brokers))]["name"]
            elif kind in ("isolate-leader", "pause-leader"):
                victim = brokers[leader_id]["name"] if leader_id in brokers else rng.choice(list(brokers.values()))["name"]
            elif kind == "kill-controller":
                victim = rng.choice(cluster.nodes("controller"))["name"]
            else:
                victim = rng.choice(list(brokers.values()))["name"]
            faults.append((r, kind, victim))
            if kind == "isolate-leader":
                # Cut off from the controllers longer than the session timeout: it is fenced
                # and loses leadership while it still runs and still talks to clients.
                for px in proxies[victim]:
                    px.cut()
                time.sleep(max(seconds_per_round, 2.5))
                for px in proxies[victim]:
                    px.heal()
            elif kind == "pause-broker":
                cluster.kill(victim, "STOP")
                time.sleep(seconds_per_round / 2)
                cluster.kill(victim, "CONT")
            elif kind == "pause-leader":
                cluster.kill(victim, "STOP")
                time.sleep(seconds_per_round)
                cluster.kill(victim, "CONT")
            else:
                cluster.kill(victim, "KILL")
                time.sleep(seconds_per_round / 2)
                cluster.start(victim)
    finally:
        stop.set()
        for t in producers.threads:
            t.join(60)
        # Let the poller catch up with the last acknowledged writes before it stops, so
        # `unseen` counts records it really skipped, not ones it had no time to read.
        try:
            wait_for(lambda: poller.caught_up(producers.acked), 30, "the poller to reach the last acks")
        except Exception:  # noqa: BLE001 - reported as unseen
            pass
        poller_stop.set()
        poller.join(30)

    # Heal: every broker back in every ISR.
    wait_for(lambda: all(len(isr) == 3 for _, _, isr in leaders(cluster.bootstrap).values()), 60,
             "every partition's ISR to hold all 3 replicas again")
    final = {"leader": read_through_leader(cluster.bootstrap)}
    for n in cluster.nodes("broker"):
        final[f"replica-{n['id']}"] = {
            p: read_segment_files(os.path.join(n["data_dir"], f"{TOPIC}-{p}")) for p in range(PARTITIONS)
        }
    anomalies = check(producers.acked, {"poller": poller.polled}, final)
    if producers.fatal_errors:
        anomalies["fatal-producer-error"] = producers.fatal_errors
    summary = (f"rounds {rounds}, faults {len(faults)} {sorted(set(k for _, k, _ in faults))}, acknowledged {len(producers.acked)}, "
               f"idempotent {idempotent}, producer errors {len(producers.errors)}, "
               f"fatal producer errors {len(producers.fatal_errors)}, "
               f"acknowledged without an offset {sum(o is None for _, o, _ in producers.acked)}, "
               f"polled {len(poller.polled)}\n"
               + report(anomalies))
    return anomalies, summary, faults


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--idempotent", action="store_true", help="producers enable idempotence")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated fault kinds "
                    "(also: pause-leader)")
    ap.add_argument("--request-timeout-ms", type=int, default=None,
                    help="the producers' request.timeout.ms")
    ap.add_argument("--dir", default=None, help="cluster directory (default: a temp dir)")
    args = ap.parse_args()
    import tempfile

    d = args.dir or tempfile.mkdtemp(prefix="gregor-chaos-")
    c = Cluster(Path(d)).up()
    try:
        anomalies, summary, _ = run(c, args.rounds, seed=args.seed, idempotent=args.idempotent,
                                    kinds=args.kinds.split(","),
                                    request_timeout_ms=args.request_timeout_ms)
        print(summary)
        sys.exit(1 if fatal(anomalies, idempotent=args.idempotent) else 0)
    finally:
        c.down()


if __name__ == "__main__":
    main()
