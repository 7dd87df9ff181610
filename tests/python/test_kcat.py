"""kcat (librdkafka's CLI) lists the cluster and moves records through it."""

import subprocess

from test_client_roundtrip import create_topic


def kcat(*args, input=None, timeout=60):
    p = subprocess.run(["kcat", *args], capture_output=True, text=True, input=input, timeout=timeout)
    assert p.returncode == 0, f"kcat {' '.join(args)} failed: {p.stderr}"
    return p.stdout


def test_kcat_lists_brokers_and_topics(cluster):
    create_topic(cluster.bootstrap, "kcat-listed", partitions=3)
    out = kcat("-L", "-b", cluster.bootstrap)
    assert "3 brokers:" in out, out
    for n in cluster.nodes("broker"):
        assert f"broker {n['id']} at " in out, out
    assert 'topic "kcat-listed" with 3 partitions' in out, out


def test_kcat_produce_consume(cluster):
    create_topic(cluster.bootstrap, "kcat-rt", partitions=2)
    lines = [f"k{i}:v{i}" for i in range(500)]
    kcat("-P", "-b", cluster.bootstrap, "-t", "kcat-rt", "-K:", input="\n".join(lines) + "\n")
    out = kcat("-C", "-b", cluster.bootstrap, "-t", "kcat-rt", "-K:", "-e", "-o", "beginning", "-q")
    got = sorted(l for l in out.splitlines() if l)
    assert got == sorted(lines)
