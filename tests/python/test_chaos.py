"""Issue 5's proof: acks=all writes under fault injection, checked for lost writes and
inconsistent offsets (see chaos.py and checker.py). Runs on its own cluster."""

import chaos
from checker import fatal


def test_no_acknowledged_write_is_lost_under_faults(cluster):
    anomalies, summary, faults = chaos.run(cluster, rounds=20)
    print(summary)
    print("faults:", faults)
    assert not fatal(anomalies), summary
