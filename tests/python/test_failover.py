"""Brokers die and return: the controllers fence them and move partition leadership.

These tests use their own cluster (module-scoped fixture), since they kill nodes.
"""

import os
import time

from confluent_kafka.admin import AdminClient

from gregor_cluster import wait_for
from test_client_roundtrip import create_topic


def partitions(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(topic, timeout=5)
    t = md.topics[topic]
    assert t.error is None, t.error
    return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}, md.brokers


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our child? no: detached) still answers kill 0; check its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def broker_node(cluster, broker_id):
    return next(n for n in cluster.nodes("broker") if n["id"] == broker_id)


def other_bootstrap(cluster, dead_id):
    from gregor_cluster import external_address
    return ",".join(external_address(n) for n in cluster.nodes("broker") if n["id"] != dead_id)


def controller_log_lines(cluster):
    lines = []
    for n in cluster.nodes("controller"):
        log = cluster.dir / n["name"] / "log"
        if log.exists():
            lines += log.read_text(errors="replace").splitlines()
    return lines


def test_kill_leader_moves_leadership_and_it_returns(cluster):
    topic = "failover-kill"
    create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
    parts, _ = partitions(cluster.bootstrap, topic)
    leader = parts[0][0]
    assert sorted(parts[0][1]) == sorted(n["id"] for n in cluster.nodes("broker"))
    node = broker_node(cluster, leader)
    cluster.kill(node["name"], "KILL")
    rest = other_bootstrap(cluster, leader)

    def moved():
        p, brokers = partitions(rest, topic)
        new_leader, _, isr = p[0]
        return new_leader not in (leader, -1) and leader not in isr and leader not in brokers

    wait_for(moved, 15, f"partition 0 leadership to leave killed broker {leader}")

    # The operator's view: the active controller logged the fencing and the election, one
    # line each, with the node ids and epochs.
    def logged():
        lines = controller_log_lines(cluster)
        fenced = [l for l in lines if "broker fenced" in l and f"broker={leader} " in l and "epoch=" in l]
        moved_line = [
            l for l in lines
            if "leadership change" in l and f"partition={topic}-0 " in l
            and f"from=Some({leader})" in l and "leader_epoch=" in l
        ]
        return fenced and moved_line

    wait_for(logged, 10, f"controller log lines for the fencing of broker {leader} and the election")

    cluster.start(node["name"])

    def back():
        _, brokers = partitions(cluster.bootstrap, topic)
        return leader in brokers

    wait_for(back, 30, f"broker {leader} to register again and be unfenced")


def test_sigterm_is_a_controlled_shutdown(cluster):
    topic = "failover-term"
    create_topic(cluster.bootstrap, topic, partitions=3, rf=3)
    parts, _ = partitions(cluster.bootstrap, topic)
    leader = parts[0][0]
    node = broker_node(cluster, leader)
    pid = cluster.nodes("broker")[[n["id"] for n in cluster.nodes("broker")].index(leader)]["pid"]
    cluster.kill(node["name"], "TERM")
    # The broker exits by itself once leadership has moved away.
    wait_for(lambda: not alive(pid), 30, f"broker {leader} (pid {pid}) to finish its controlled shutdown")
    p, _ = partitions(other_bootstrap(cluster, leader), topic)
    for pid_, (l, _, _) in p.items():
        assert l != leader, f"partition {pid_} still led by stopped broker {leader}"
        assert l != -1, f"partition {pid_} offline after a controlled shutdown"
    cluster.start(node["name"])
    wait_for(lambda: leader in partitions(cluster.bootstrap, topic)[1], 30, f"broker {leader} to return")


def create_rf3(cluster, topic, min_insync):
    """Creates a 1-partition RF=3 topic once all 3 brokers are available (a broker restarted
    by an earlier test may still be fenced) and waits for a full ISR."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})

    def create():
        fut = admin.create_topics([NewTopic(topic, 1, 3, config={"min.insync.replicas": str(min_insync)})])
        fut[topic].result(30)
        return True

    wait_for(create, 60, f"{topic} to be created with 3 replicas", interval=0.5)
    wait_for(lambda: len(partitions(cluster.bootstrap, topic)[0][0][2]) == 3, 30, f"{topic} ISR of 3")


def test_acks_all_survives_a_leader_kill(cluster):
    """acks=all on RF=3 with min.insync.replicas=2: every acknowledged record written
    before and after a kill -9 of the partition leader is read back, in offset order."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = "failover-acks-all"
    create_rf3(cluster, topic, 2)
    leader = partitions(cluster.bootstrap, topic)[0][0][0]
    acked, errors = [], []

    def cb(err, msg):
        if err is None:
            acked.append((msg.offset(), msg.value().decode()))
        else:
            errors.append(str(err))

    def produce(p, prefix, n):
        for i in range(n):
            p.produce(topic, value=f"{prefix}-{i}".encode(), on_delivery=cb)
            p.poll(0)
        assert p.flush(60) == 0

    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "retries": 1000000,
                  "retry.backoff.ms": 50, "message.timeout.ms": 60000})
    produce(p, "before", 200)
    node = broker_node(cluster, leader)
    cluster.kill(node["name"], "KILL")
    rest = other_bootstrap(cluster, leader)
    p2 = Producer({"bootstrap.servers": rest, "acks": "all", "retries": 1000000,
                   "retry.backoff.ms": 50, "message.timeout.ms": 60000})
    produce(p2, "after", 200)
    cluster.start(node["name"])
    assert not errors, errors[:5]
    assert len(acked) == 400

    c = Consumer({"bootstrap.servers": rest, "group.id": "acks-all-check", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    seen, deadline = {}, time.monotonic() + 60
    while len(seen) < 400 and time.monotonic() < deadline:
        for m in c.consume(500, timeout=1):
            if m.error() is None:
                seen[m.value().decode()] = m.offset()
    c.close()
    lost = [v for _, v in acked if v not in seen]
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}"
    for off, v in acked:
        assert seen[v] == off, f"{v} acknowledged at {off} but read at {seen[v]}"
    wait_for(lambda: leader in partitions(cluster.bootstrap, topic)[1], 30, f"broker {leader} to return")


def test_acks_all_is_refused_when_the_isr_is_below_min_insync(cluster):
    """min.insync.replicas=3 on RF=3: with a follower dead and out of the ISR, acks=all is
    refused with NOT_ENOUGH_REPLICAS; once it is back in the ISR, acks=all succeeds."""
    from confluent_kafka import KafkaError, Producer

    topic = "failover-min-insync"
    create_rf3(cluster, topic, 3)
    leader, replicas, _ = partitions(cluster.bootstrap, topic)[0][0]
    follower = next(r for r in replicas if r != leader)
    node = broker_node(cluster, follower)
    cluster.kill(node["name"], "KILL")
    wait_for(lambda: follower not in partitions(cluster.bootstrap, topic)[0][0][2], 30,
             f"broker {follower} to leave the ISR")

    def produce_once():
        errs = []
        p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "retries": 0,
                      "message.timeout.ms": 10000})
        p.produce(topic, value=b"x", on_delivery=lambda err, msg: errs.append(err))
        p.flush(15)
        return errs

    errs = produce_once()
    assert errs and errs[0] is not None and errs[0].code() == KafkaError.NOT_ENOUGH_REPLICAS, errs
    cluster.start(node["name"])
    wait_for(lambda: len(partitions(cluster.bootstrap, topic)[0][0][2]) == 3, 60, f"broker {follower} back in the ISR")
    errs = produce_once()
    assert errs == [None], errs
