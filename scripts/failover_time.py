"""Failover time of a partition leader (issue 5's figure).

Over N kills of the leader of a 3-replica partition (min.insync.replicas=2), measures the
time from the signal to the first acks=all produce acknowledged on the new leader: a
producer sends a record every few milliseconds, and the first acknowledgement of a record
sent after the signal counts (for SIGTERM that can be the old leader acknowledging while
it moves leadership away, as in Kafka). Prints median and max for kill -9 and for SIGTERM.

The producer refreshes metadata every 100 ms (`topic.metadata.refresh.interval.ms`), so the
figure is the cluster's failover time (session timeout, election, new ISR catching up)
rather than the client's default 5-minute refresh (librdkafka refreshes sooner on errors,
but a refused connection to a dead leader is not one until the controller fences it).
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
from gregor_cluster import Cluster, wait_for  # noqa: E402

TOPIC = "failover-time"


def partition0(bootstrap):
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(TOPIC, timeout=5)
    p = md.topics[TOPIC].partitions[0]
    return p.leader, list(p.isrs), set(md.brokers)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def one_failover(cluster, signal_name):
    from confluent_kafka import Producer

    wait_for(lambda: len(partition0(cluster.bootstrap)[1]) == 3, 60, "a full ISR")
    leader = partition0(cluster.bootstrap)[0]
    node = next(n for n in cluster.nodes("broker") if n["id"] == leader)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 0,
                  "retries": 1000000, "retry.backoff.ms": 10, "retry.backoff.max.ms": 50,
                  "topic.metadata.refresh.interval.ms": 100, "message.timeout.ms": 30000,
                  "socket.connection.setup.timeout.ms": 1000, "reconnect.backoff.ms": 10,
                  "reconnect.backoff.max.ms": 100})
    first = []
    t0 = [None]

    def cb(err, msg):
        # Only records sent after the signal count.
        if err is None and not first and msg.value().startswith(b"after"):
            first.append(time.monotonic())

    for i in range(20):  # warm up: connected, leader known
        p.produce(TOPIC, value=b"warm", on_delivery=cb)
    p.flush(30)
    stop = threading.Event()

    def sender():
        i = 0
        while not stop.is_set():
            if t0[0] is not None:
                try:
                    p.produce(TOPIC, value=f"after-{i}".encode(), on_delivery=cb)
                    i += 1
                except BufferError:
                    pass
            p.poll(0.005)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    pid = node["pid"]
    # Signal the process directly so the clock starts when the signal is delivered.
    os.kill(pid, getattr(signal, f"SIG{signal_name}"))
    t0[0] = time.monotonic()
    deadline = time.monotonic() + 60
    while not first and time.monotonic() < deadline:
        time.sleep(0.005)
    stop.set()
    th.join(10)
    p.flush(30)
    elapsed = first[0] - t0[0] if first else float("inf")
    wait_for(lambda: not alive(pid), 60, f"broker {leader} to exit")
    cluster.start(node["name"])
    wait_for(lambda: leader in partition0(cluster.bootstrap)[2], 60, f"broker {leader} to return")
    return leader, elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    args = ap.parse_args()
    from confluent_kafka.admin import AdminClient, NewTopic

    d = tempfile.mkdtemp(prefix="gregor-failover-time-")
    c = Cluster(Path(d)).up()
    try:
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(30)
        wait_for(lambda: partition0(c.bootstrap)[0] >= 0, 30, "a leader")
        for sig, label in (("KILL", "kill -9"), ("TERM", "SIGTERM (controlled shutdown)")):
            times = []
            for i in range(args.kills):
                leader, t = one_failover(c, sig)
                times.append(t)
                print(f"{label:30} #{i + 1:2}: leader {leader}: {t:.3f} s", flush=True)
            print(f"{label:30} median {statistics.median(times):.3f} s, max {max(times):.3f} s "
                  f"over {len(times)}", flush=True)
    finally:
        c.down()


if __name__ == "__main__":
    main()
