"""Failover demo for the docker compose cluster (deploy/failover-demo runs `main`).

Produces to partition 0 of a fresh RF-3 topic (min.insync.replicas=2) with acks=all,
recording every acknowledged value; `docker kill`s the container of that partition's leader,
keeps producing, reports how long producing paused, reads the partition back from the start
and reports any acknowledged value that is missing; finally starts the container again.

tests/docker/test-compose reuses these functions, so each one is bounded by a deadline.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def default_bootstrap() -> str:
    ports = [os.environ.get(f"GREGOR_EXTERNAL_PORT_{i}", str(19091 + i)) for i in (1, 2, 3)]
    return ",".join(f"127.0.0.1:{p}" for p in ports)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- docker / compose


def container_of(project: str, service: str) -> str:
    """The container id of a compose service (running or stopped), found by compose labels."""
    out = subprocess.run(
        [
            "docker", "ps", "-aq",
            "--filter", f"label=com.docker.compose.project={project}",
            "--filter", f"label=com.docker.compose.service={service}",
        ],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout.split()
    if len(out) != 1:
        raise RuntimeError(f"expected one container for {project}/{service}, found {out}")
    return out[0]


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()


def kill_container(container: str, limit_s: float = 30) -> float:
    """`docker kill`s a container and returns the monotonic time at which it was seen
    stopped (`docker kill` returns once the signal is sent, before the process is gone)."""
    docker("kill", container)
    deadline = time.monotonic() + limit_s
    while docker("inspect", "-f", "{{.State.Running}}", container) == "true":
        if time.monotonic() > deadline:
            raise TimeoutError(f"container {container[:12]} still running {limit_s}s after kill")
        time.sleep(0.02)
    return time.monotonic()


def wait_container_healthy(container: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    status = "?"
    while time.monotonic() < deadline:
        status = docker("inspect", "-f", "{{.State.Health.Status}}", container)
        if status == "healthy":
            return
        time.sleep(0.5)
    raise TimeoutError(f"container {container[:12]} not healthy after {limit_s}s (last: {status})")


# ---------------------------------------------------------------- Kafka helpers


def wait_brokers(bootstrap: str, count: int, limit_s: float) -> dict[int, str]:
    """Waits until Metadata lists `count` brokers; returns id -> host:port."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + limit_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(timeout=5)
            brokers = {b.id: f"{b.host}:{b.port}" for b in md.brokers.values()}
            if len(brokers) >= count:
                return brokers
            last = brokers
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        time.sleep(0.5)
    raise TimeoutError(f"{count} brokers not listed after {limit_s}s (last: {last})")


def create_topic(bootstrap: str, topic: str, partitions: int = 3, rf: int = 3,
                 min_isr: int = 2, limit_s: float = 30) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=partitions, replication_factor=rf,
                   config={"min.insync.replicas": str(min_isr)})
    admin.create_topics([new], request_timeout=limit_s)[topic].result(timeout=limit_s)


def partition_state(bootstrap: str, topic: str, partition: int = 0) -> tuple[int, list[int], list[int]]:
    """(leader, replicas, isr) of one partition, from a broker's Metadata."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None or partition not in t.partitions:
        raise RuntimeError(f"topic {topic} not in metadata: {t and t.error}")
    p = t.partitions[partition]
    return p.leader, list(p.replicas), list(p.isrs)


def wait_full_isr(bootstrap: str, topic: str, rf: int, limit_s: float,
                  partition: int = 0) -> tuple[int, list[int], list[int]]:
    """Waits until the partition has a leader and all `rf` replicas are in sync."""
    deadline = time.monotonic() + limit_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            state = partition_state(bootstrap, topic, partition)
            if state[0] >= 0 and len(state[2]) == rf:
                return state
            last = state
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = e
        time.sleep(0.5)
    raise TimeoutError(f"{topic}[{partition}] not fully in sync after {limit_s}s (last: {last})")


@dataclass
class ProduceLog:
    """What the background producer did, with monotonic timestamps."""
    sent: int = 0
    acked: dict[int, float] = field(default_factory=dict)  # value -> ack time
    sent_at: dict[int, float] = field(default_factory=dict)  # value -> send time
    failed: dict[int, str] = field(default_factory=dict)  # value -> error
    lock: threading.Lock = field(default_factory=threading.Lock)


class BackgroundProducer:
    """Produces the values 0, 1, 2, ... to one partition with acks=all until stopped."""

    def __init__(self, bootstrap: str, topic: str, partition: int = 0,
                 interval_s: float = 0.01, message_timeout_ms: int = 30000):
        self.topic, self.partition, self.interval_s = topic, partition, interval_s
        self.log = ProduceLog()
        self._stop = threading.Event()
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "acks": "all",
            # Idempotence is off so that the demo only needs Produce; retries may then
            # duplicate values, which the loss check ignores.
            "enable.idempotence": False,
            "linger.ms": 5,
            "retry.backoff.ms": 100,
            "message.timeout.ms": message_timeout_ms,
            "max.in.flight.requests.per.connection": 5,
        })
        self._thread = threading.Thread(target=self._run, name="producer", daemon=True)

    def start(self) -> "BackgroundProducer":
        self._thread.start()
        return self

    def _on_delivery(self, value: int):
        def cb(err, _msg):
            now = time.monotonic()
            with self.log.lock:
                if err is None:
                    self.log.acked.setdefault(value, now)
                else:
                    self.log.failed[value] = str(err)
        return cb

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                self._producer.produce(self.topic, value=str(n).encode(), partition=self.partition,
                                       on_delivery=self._on_delivery(n))
                with self.log.lock:
                    self.log.sent_at[n] = time.monotonic()
                    self.log.sent = n + 1
                n += 1
            except BufferError:
                pass  # local queue full while the leader is gone: wait for deliveries
            self._producer.poll(self.interval_s)

    def stop(self, flush_s: float = 40) -> int:
        """Stops producing and waits (bounded) for outstanding deliveries; returns how many
        remain undelivered."""
        self._stop.set()
        self._thread.join(timeout=10)
        return self._producer.flush(flush_s)

    def acked_count(self) -> int:
        with self.log.lock:
            return len(self.log.acked)

    def wait_acked(self, count: int, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while self.acked_count() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.acked_count()} of {count} writes acknowledged "
                                   f"after {limit_s}s; errors: {self.errors_summary()}")
            time.sleep(0.05)

    def first_ack_sent_after(self, t: float) -> float | None:
        """Ack time of the earliest-acknowledged value that was sent at or after `t`."""
        with self.log.lock:
            times = [a for v, a in self.log.acked.items() if self.log.sent_at.get(v, 0) >= t]
        return min(times) if times else None

    def longest_ack_gap(self, after: float) -> float:
        with self.log.lock:
            times = sorted([after] + [a for a in self.log.acked.values() if a >= after])
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    def errors_summary(self) -> str:
        with self.log.lock:
            kinds: dict[str, int] = {}
            for e in self.log.failed.values():
                kinds[e] = kinds.get(e, 0) + 1
        return ", ".join(f"{k} x{c}" for k, c in kinds.items()) or "none"


def read_partition(bootstrap: str, topic: str, partition: int = 0,
                   limit_s: float = 60) -> list[int]:
    """Reads the partition from the beginning up to its high watermark (assigned, no group)."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"gregor-readback-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    try:
        tp = TopicPartition(topic, partition)
        _, high = consumer.get_watermark_offsets(tp, timeout=10)
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        values: list[int] = []
        deadline = time.monotonic() + limit_s
        position = 0
        while position < high:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {position} of {high} records of {topic}[{partition}] "
                                   f"in {limit_s}s")
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"consume error: {msg.error()}")
            values.append(int(msg.value()))
            position = msg.offset() + 1
        return values
    finally:
        consumer.close()


def missing_acked(acked: dict[int, float], read: list[int]) -> list[int]:
    present = set(read)
    return sorted(v for v in acked if v not in present)


# ---------------------------------------------------------------- the demo


@dataclass
class FailoverResult:
    killed_broker: int
    pause_s: float | None  # container stopped -> first ack of a write sent after that
    longest_gap_s: float
    acked: int
    failed: int
    read: int
    missing: list[int]
    new_leader: int


def run_failover(bootstrap: str, project: str, topic: str, *, before_s: float = 3,
                 after_s: float = 5, resume_limit_s: float = 45) -> FailoverResult:
    """Produces, kills partition 0's leader container, keeps producing, reads back.
    Leaves the killed container stopped: the caller restarts it (see `restart_broker`)."""
    leader, replicas, isr = wait_full_isr(bootstrap, topic, 3, 60)
    log(f"{topic}[0]: leader {leader}, replicas {replicas}, isr {isr}")
    producer = BackgroundProducer(bootstrap, topic).start()
    try:
        try:
            producer.wait_acked(1, 30)
        except TimeoutError as e:
            raise TimeoutError(f"{e}. With acks=all a write is acknowledged only once "
                               f"min.insync.replicas replicas have it: is replication "
                               f"working (followers fetching from the leader)?") from None
        time.sleep(before_s)
        log(f"{producer.acked_count()} writes acknowledged; killing broker {leader} "
            f"(container broker-{leader})")
        container = container_of(project, f"broker-{leader}")
        killed_at = kill_container(container)
        deadline = killed_at + resume_limit_s
        resumed = None
        while resumed is None and time.monotonic() < deadline:
            time.sleep(0.1)
            resumed = producer.first_ack_sent_after(killed_at)
        if resumed is None:
            log(f"producing did NOT resume within {resume_limit_s}s "
                f"(errors: {producer.errors_summary()})")
        else:
            log(f"producing resumed {resumed - killed_at:.2f}s after the kill")
            time.sleep(after_s)
    finally:
        undelivered = producer.stop()
    if undelivered:
        log(f"{undelivered} writes still undelivered at the end (not counted as acknowledged)")
    try:
        new_leader = partition_state(bootstrap, topic)[0]
    except Exception:  # noqa: BLE001 - informational only
        new_leader = -1
    read = read_partition(bootstrap, topic)
    log_ = producer.log
    return FailoverResult(
        killed_broker=leader,
        pause_s=None if resumed is None else resumed - killed_at,
        longest_gap_s=producer.longest_ack_gap(killed_at),
        acked=len(log_.acked),
        failed=len(log_.failed),
        read=len(read),
        missing=missing_acked(log_.acked, read),
        new_leader=new_leader,
    )


def restart_broker(project: str, broker: int, limit_s: float = 90) -> None:
    container = container_of(project, f"broker-{broker}")
    docker("start", container)
    wait_container_healthy(container, limit_s)
    log(f"broker-{broker} is running and healthy again")


def report(r: FailoverResult) -> bool:
    """Prints the outcome; true iff producing resumed and nothing acknowledged was lost."""
    if r.pause_s is None:
        print(f"PAUSE: producing never resumed after killing broker {r.killed_broker}")
    else:
        print(f"PAUSE: producing paused {r.pause_s:.2f}s after killing broker {r.killed_broker} "
              f"(longest gap between acknowledgements: {r.longest_gap_s:.2f}s); "
              f"new leader: {r.new_leader}")
    print(f"WRITES: {r.acked} acknowledged, {r.failed} failed (never acknowledged), "
          f"{r.read} records read back")
    if r.missing:
        shown = ", ".join(map(str, r.missing[:20])) + (" ..." if len(r.missing) > 20 else "")
        print(f"LOST: {len(r.missing)} acknowledged values are missing: {shown}")
    else:
        print("NO LOSS: every acknowledged value was read back")
    return r.pause_s is not None and not r.missing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default=default_bootstrap())
    ap.add_argument("--project", default=os.environ.get("GREGOR_COMPOSE_PROJECT", "gregor"))
    ap.add_argument("--topic", default=f"failover-demo-{int(time.time())}")
    ap.add_argument("--after", type=float, default=5, help="seconds to keep producing after it resumed")
    args = ap.parse_args()
    wait_brokers(args.bootstrap, 3, 60)
    create_topic(args.bootstrap, args.topic)
    log(f"created {args.topic}: 3 partitions, replication factor 3, min.insync.replicas=2")
    result = None
    ok = False
    try:
        result = run_failover(args.bootstrap, args.project, args.topic, after_s=args.after)
        ok = report(result)
    except Exception as e:  # noqa: BLE001 - the demo reports and restarts, then fails
        print(f"FAILED: {type(e).__name__}: {e}", flush=True)
    finally:
        if result is not None:
            restart_broker(args.project, result.killed_broker)
        else:  # failed before or during the kill: make sure every broker runs again
            for b in (1, 2, 3):
                try:
                    docker("start", container_of(args.project, f"broker-{b}"))
                except Exception as e:  # noqa: BLE001
                    log(f"could not start broker-{b}: {e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
