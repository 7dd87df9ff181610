"""Consumer groups with real clients against a real 3+3 cluster.

confluent-kafka, kafka-python and `kcat -G` consumers share the partitions of a 6-partition
topic: assignments are disjoint and cover every partition, members joining and leaving
rebalance the group, every record is consumed by exactly one member. Commits with a wrong
generation or an unknown member are refused (raw OffsetCommit requests). Committed offsets
survive a kill -9 of the coordinator. `gregor consume --group` and `gregor group` work.
"""

import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest

from gregor_cluster import external_address, wait_for
from test_client_roundtrip import create_topic

PARTITIONS = 6
ILLEGAL_GENERATION = 22
UNKNOWN_MEMBER_ID = 25


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce(bootstrap, topic, n, start=0):
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(start, start + n):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode())
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    return {f"v{i}" for i in range(start, start + n)}


# ---- confluent-kafka -------------------------------------------------------------------

class CkMember:
    def __init__(self, bootstrap, group, topic, name):
        from confluent_kafka import Consumer

        self.name = name
        self.assignment = set()
        self.generations = 0
        self.values = []
        self.c = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500,
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 500,
            "partition.assignment.strategy": "range",
        })
        self.c.subscribe([topic], on_assign=self._assign, on_revoke=self._revoke)

    def _assign(self, c, parts):
        self.assignment = {p.partition for p in parts}
        self.generations += 1

    def _revoke(self, c, parts):
        self.assignment = set()

    def poll(self):
        m = self.c.poll(0.05)
        if m is not None and m.error() is None:
            self.values.append((m.partition(), m.offset(), m.value().decode()))

    def close(self):
        self.c.close()


def poll_all(members, until, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            m.poll()
        if until():
            return
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}: "
                       f"{[(m.name, sorted(m.assignment)) for m in members]}")


def balanced(members, n=PARTITIONS):
    sets = [m.assignment for m in members]
    if any(not s for s in sets):
        return False
    union = set().union(*sets)
    return union == set(range(n)) and sum(len(s) for s in sets) == n


def test_confluent_group_assignment_rebalance_and_exactly_once(cluster):
    topic, group = unique("grp-ck"), unique("g-ck")
    create_topic(cluster.bootstrap, topic, partitions=PARTITIONS, rf=3)
    members = [CkMember(cluster.bootstrap, group, topic, f"m{i}") for i in range(3)]
    try:
        poll_all(members, lambda: balanced(members), 90, "three members to share the partitions")
        sent = produce(cluster.bootstrap, topic, 3000)
        got = lambda: [v for m in members for v in m.values]  # noqa: E731
        poll_all(members, lambda: len(got()) >= len(sent), 60, "every record consumed")
        values = [v[2] for v in got()]
        assert sorted(values) == sorted(sent), "every record consumed by exactly one member"
        # Each member read only its own partitions.
        for m in members:
            assert {p for p, _, _ in m.values} <= m.assignment
        # DescribeGroups shows each member with the address it connected from.
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        desc = admin.describe_consumer_groups([group])[group].result(30)
        assert len(desc.members) == 3
        assert all(m.host == "/127.0.0.1" for m in desc.members), [m.host for m in desc.members]

        # A fourth member joins: the group rebalances over four.
        fourth = CkMember(cluster.bootstrap, group, topic, "m3")
        members.append(fourth)
        poll_all(members, lambda: balanced(members), 90, "four members to share the partitions")

        # One leaves: the other three take its partitions.
        gone = members.pop(0)
        gone.close()
        poll_all(members, lambda: balanced(members), 90, "three members after one left")
        for m in members:
            m.values.clear()
        sent2 = produce(cluster.bootstrap, topic, 1200, start=10_000)
        poll_all(members, lambda: len(got()) >= len(sent2), 60, "records after the rebalance")
        time.sleep(1)
        for m in members:
            m.poll()
        values = sorted(v[2] for v in got())
        assert values == sorted(sent2), "records after the rebalance consumed exactly once"
    finally:
        for m in members:
            m.close()


# ---- kafka-python and raw OffsetCommit ----------------------------------------------------

def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def raw_request(addr, api_key, version, body, correlation_id=7):
    host, port = addr.rsplit(":", 1)
    header = struct.pack(">hhi", api_key, version, correlation_id) + _str("raw-test")
    msg = header + body
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", _recv(s, 4))[0]
        resp = _recv(s, size)
    assert struct.unpack(">i", resp[:4])[0] == correlation_id
    return resp[4:]


def _recv(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def find_coordinator(cluster, group, bootstrap=None):
    """(node_id, "host:port") of the group's coordinator (FindCoordinator v0)."""
    addr = (bootstrap or cluster.bootstrap).split(",")[0]

    def ask():
        r = raw_request(addr, 10, 0, _str(group))
        err, node = struct.unpack(">hi", r[:6])
        if err != 0:
            return None
        hlen = struct.unpack(">h", r[6:8])[0]
        host = r[8:8 + hlen].decode()
        port = struct.unpack(">i", r[8 + hlen:12 + hlen])[0]
        return node, f"{host}:{port}"

    return wait_for(ask, 60, f"a coordinator for {group}", interval=0.5)


def raw_commit(addr, group, generation, member, topic, partition, offset):
    """OffsetCommit v2; returns the partition's error code."""
    body = (_str(group) + struct.pack(">i", generation) + _str(member) + struct.pack(">q", -1)
            + struct.pack(">i", 1) + _str(topic) + struct.pack(">i", 1)
            + struct.pack(">iq", partition, offset) + _str(""))
    r = raw_request(addr, 8, 2, body)
    # topics[1]: name, partitions[1]: index, error
    n = struct.unpack(">i", r[:4])[0]
    assert n == 1
    tlen = struct.unpack(">h", r[4:6])[0]
    pos = 6 + tlen
    assert struct.unpack(">i", r[pos:pos + 4])[0] == 1
    _, err = struct.unpack(">ih", r[pos + 4:pos + 10])
    return err


def test_kafka_python_group_and_refused_commits(cluster):
    from kafka import KafkaConsumer

    topic, group = unique("grp-kp"), unique("g-kp")
    create_topic(cluster.bootstrap, topic, partitions=PARTITIONS, rf=3)
    consumers = [KafkaConsumer(topic, bootstrap_servers=cluster.bootstrap.split(","), group_id=group,
                               auto_offset_reset="earliest", session_timeout_ms=10000,
                               heartbeat_interval_ms=500)
                 for _ in range(3)]
    values, lock, stop = [], threading.Lock(), threading.Event()
    assignments = [set() for _ in consumers]

    # One thread per consumer: a kafka-python poll blocks in a rebalance until every
    # member has rejoined, so members polled in turn from one thread would stall it.
    def run(i, c):
        while not stop.is_set():
            for recs in c.poll(timeout_ms=200).values():
                with lock:
                    values.extend(r.value.decode() for r in recs)
            assignments[i] = {tp.partition for tp in c.assignment()}

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(consumers)]
    for t in threads:
        t.start()
    try:
        def assigned():
            sets = list(assignments)
            return all(sets) and set().union(*sets) == set(range(PARTITIONS)) and \
                sum(len(s) for s in sets) == PARTITIONS

        wait_for(assigned, 90, "three kafka-python members to share the partitions", interval=0.2)
        sent = produce(cluster.bootstrap, topic, 1500)
        wait_for(lambda: len(values) >= len(sent), 60, "every record consumed", interval=0.2)
        time.sleep(1)  # duplicates, if any, would show up now
        with lock:
            assert sorted(values) == sorted(sent), "every record consumed by exactly one member"

        # Raw commits against the coordinator: wrong generation, unknown member, right one.
        _, addr = find_coordinator(cluster, group)

        def refused_and_accepted():
            # A rebalance may be under way; use the member's current generation.
            gen = consumers[0]._coordinator._generation
            generation, member = gen.generation_id, gen.member_id
            assert raw_commit(addr, group, generation + 7, member, topic, 0, 1) == ILLEGAL_GENERATION
            assert raw_commit(addr, group, generation, "no-such-member", topic, 0, 1) == UNKNOWN_MEMBER_ID
            return raw_commit(addr, group, generation, member, topic, 0, 1) == 0

        wait_for(refused_and_accepted, 30, "a commit with the right generation", interval=0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for c in consumers:
            c.close()


# ---- kcat -G ------------------------------------------------------------------------------

def test_kcat_balanced_consumers(cluster):
    topic, group = unique("grp-kcat"), unique("g-kcat")
    create_topic(cluster.bootstrap, topic, partitions=PARTITIONS, rf=3)
    procs, outs = [], []
    try:
        for _ in range(2):
            out = []
            p = subprocess.Popen(
                ["kcat", "-u", "-b", cluster.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
                 "-f", "%p %s\n", "-q", topic],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            t = threading.Thread(target=lambda p=p, out=out: out.extend(iter(p.stdout.readline, "")),
                                 daemon=True)
            t.start()
            procs.append(p)
            outs.append(out)
        # The consumers join while we produce; they start at the earliest offsets.
        sent = produce(cluster.bootstrap, topic, 1200)
        wait_for(lambda: sum(len(o) for o in outs) >= len(sent), 90, "kcat to consume everything",
                 interval=0.2)
        time.sleep(2)  # duplicates, if any, would show up now
        lines = [line.split() for o in outs for line in o if line.strip()]
        assert sorted(v for _, v in lines) == sorted(sent), "every record exactly once"
        parts = [{int(p) for p, _ in (line.split() for line in o if line.strip())} for o in outs]
        assert all(parts), "both kcat members got partitions"
        assert not (parts[0] & parts[1]), "kcat members read disjoint partitions"
    finally:
        for p in procs:
            p.kill()
            p.wait()


# ---- gregor CLI ---------------------------------------------------------------------------

def test_gregor_consume_group_and_group_commands(cluster):
    topic, group = unique("grp-cli"), unique("g-cli")
    create_topic(cluster.bootstrap, topic, partitions=PARTITIONS, rf=3)
    sent = produce(cluster.bootstrap, topic, 300)
    p = cluster.gregor("consume", "--dir", str(cluster.dir), "--group", group, "--from-beginning",
                       "--max-messages", "300", "--idle-timeout-ms", "30000", topic, timeout=120)
    got = [line for line in p.stdout.splitlines() if line]
    assert sorted(got) == sorted(sent)
    listed = cluster.gregor("group", "--dir", str(cluster.dir), "list").stdout
    assert group in listed
    described = cluster.gregor("group", "--dir", str(cluster.dir), "describe", group).stdout
    assert topic in described
    # A second run of the group starts from the committed offsets: nothing new to read.
    more = produce(cluster.bootstrap, topic, 10, start=5000)
    p = cluster.gregor("consume", "--dir", str(cluster.dir), "--group", group,
                       "--max-messages", "10", "--idle-timeout-ms", "20000", topic, timeout=120)
    assert sorted(line for line in p.stdout.splitlines() if line) == sorted(more)


# ---- failover ------------------------------------------------------------------------------

def test_committed_offsets_survive_coordinator_kill(cluster):
    from confluent_kafka import Consumer, TopicPartition

    topic, group = unique("grp-fo"), unique("g-fo")
    create_topic(cluster.bootstrap, topic, partitions=PARTITIONS, rf=3)
    produce(cluster.bootstrap, topic, 600)
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    committed = {p: 10 + 7 * p for p in range(PARTITIONS)}
    wait_for(lambda: c.commit(offsets=[TopicPartition(topic, p, o) for p, o in committed.items()],
                              asynchronous=False) is not None, 60, "the commit", interval=0.5)
    c.close()

    node_id, _ = find_coordinator(cluster, group)
    node = next(n for n in cluster.nodes("broker") if n["id"] == node_id)
    cluster.kill(node["name"], "KILL")
    try:
        rest = ",".join(external_address(n) for n in cluster.nodes("broker") if n["id"] != node_id)
        new_id, _ = wait_for(lambda: (lambda r: r if r[0] != node_id else None)(
            find_coordinator(cluster, group, rest)), 60, "a new coordinator", interval=0.5)
        assert new_id != node_id

        c = Consumer({"bootstrap.servers": rest, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        try:
            def fetched():
                tps = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
                return {tp.partition: tp.offset for tp in tps} == committed

            wait_for(fetched, 60, "the committed offsets from the new coordinator", interval=0.5)
            c.subscribe([topic])
            first = {}
            deadline = time.monotonic() + 60
            while len(first) < PARTITIONS and time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is not None and m.error() is None:
                    first.setdefault(m.partition(), m.offset())
            assert first == committed, "the restarted consumer resumes at the committed offsets"
        finally:
            c.close()
    finally:
        cluster.start(node["name"])


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
