"""The checker itself must find what it claims to find (it guards the chaos test)."""

from checker import check, fatal


def test_clean_history_has_no_anomalies():
    acked = [(0, 0, "a"), (0, 1, "b"), (1, 0, "c")]
    polls = {"c1": [(0, 0, "a"), (0, 1, "b"), (1, 0, "c")]}
    final = {"leader": {0: [(0, "a"), (1, "b")], 1: [(0, "c")]}}
    assert check(acked, polls, final) == {}


def test_lost_and_inconsistent_and_duplicate_are_found():
    acked = [(0, 0, "a"), (0, 1, "b"), (0, 2, "lost")]
    polls = {"c1": [(0, 0, "a"), (0, 1, "X")]}
    final = {"leader": {0: [(0, "a"), (1, "b"), (2, "a")]}, "replica-2": {0: [(0, "a")]}}
    found = check(acked, polls, final)
    assert [x["value"] for x in found["lost-write"]] == ["lost"]
    assert {x["offset"] for x in found["inconsistent-offsets"]} == {1, 2}
    assert found["duplicate"][0]["value"] == "a"
    assert set(fatal(found)) == {"lost-write", "inconsistent-offsets"}


def test_poll_anomalies():
    acked = [(0, i, f"v{i}") for i in range(5)]
    polls = {"c1": [(0, 0, "v0"), (0, 2, "v2"), (0, 1, "v1")]}
    final = {"leader": {0: [(i, f"v{i}") for i in range(5)]}}
    found = check(acked, polls, final)
    assert found["poll-skip"][0]["skipped"] == 1
    assert found["nonmonotonic-poll"][0]["to"] == 1
    assert {x["value"] for x in found["unseen"]} == {"v3", "v4"}


def test_reordered_writes_of_one_producer_are_found_and_fail_idempotent_runs():
    acked = [(0, 0, "p0-0"), (0, 1, "p0-2"), (0, 2, "p0-1"), (0, 3, "p1-0")]
    final = {"leader": {0: [(0, "p0-0"), (1, "p0-2"), (2, "p0-1"), (3, "p1-0")]}}
    found = check(acked, {}, final)
    assert [x["value"] for x in found["reordered"]] == ["p0-1"]
    assert fatal(found) == {}
    assert set(fatal(found, idempotent=True)) == {"reordered"}
    in_order = {"leader": {0: [(0, "p0-0"), (1, "p1-0"), (2, "p0-1"), (3, "p0-2")]}}
    assert "reordered" not in check([], {}, in_order)
