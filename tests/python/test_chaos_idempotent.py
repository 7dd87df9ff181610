"""Issue 20's proof for idempotent producers: confluent-kafka with enable.idempotence=true
writes under faults (kill -9 of partition leaders, SIGSTOP of leaders for longer than the
producers' 1 s request timeout, so that they resend requests the broker also appends, and
kills of followers and of the active controller), and the checker finds no lost write, no
duplicate, no reordered record and no fatal producer error. The same faults without
idempotence store dozens of duplicates (`chaos.py --kinds pause-leader,kill-leader
--request-timeout-ms 1000`). Runs on its own cluster."""

import chaos
from checker import fatal


def test_idempotent_producers_store_each_write_once_under_faults(cluster):
    anomalies, summary, faults = chaos.run(
        cluster, rounds=10, idempotent=True, request_timeout_ms=1000,
        kinds=("kill-leader", "pause-leader", "kill-follower", "kill-controller"))
    print(summary)
    print("faults:", faults)
    assert not fatal(anomalies, idempotent=True), summary
