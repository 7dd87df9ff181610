"""The acknowledged-write checker: turns histories into anomaly reports.

Inputs, all plain data so the analysis is independent of how they were gathered:
- acked: (partition, offset, value) for every write a producer saw acknowledged;
- polls: per consumer, the (partition, offset, value) sequence it polled, in order;
- final_reads: per reader (e.g. "leader", "replica-2"), partition -> [(offset, value)] read
  from the start after the faults healed.

Anomalies (Jepsen's Kafka vocabulary):
- lost-write: acknowledged, never read in the final leader read;
- inconsistent-offsets: one (partition, offset) holding two values anywhere;
- duplicate: one value at more than one offset (retries without idempotence can do this);
- reordered: two values of one producer (`p<producer>-<seq>`) stored in one partition in
  the other order than they were sent (retries without idempotence can do this too);
- nonmonotonic-poll: a consumer's offsets went backwards within a partition;
- poll-skip: a consumer jumped over offsets that the final read shows exist;
- unseen: acknowledged and in the final read, but no consumer polled it.
lost-write and inconsistent-offsets fail a run; with idempotent producers duplicate,
reordered and fatal-producer-error do too; the others are reported.
"""

from collections import defaultdict

FATAL = ("lost-write", "inconsistent-offsets")
FATAL_IDEMPOTENT = FATAL + ("duplicate", "reordered", "fatal-producer-error")


def check(acked, polls, final_reads, leader_reader="leader"):
    anomalies = defaultdict(list)
    at = defaultdict(dict)  # (partition, offset) -> {value: [where]}

    def see(p, o, v, where):
        at[(p, o)].setdefault(v, []).append(where)

    for p, o, v in acked:
        if o is not None:  # librdkafka may acknowledge a retried write without its offset
            see(p, o, v, "ack")
    for cid, seq in polls.items():
        for p, o, v in seq:
            see(p, o, v, f"poll:{cid}")
    for reader, parts in final_reads.items():
        for p, recs in parts.items():
            for o, v in recs:
                see(p, o, v, f"read:{reader}")
    for (p, o), vals in sorted(at.items()):
        if len(vals) > 1:
            anomalies["inconsistent-offsets"].append({"partition": p, "offset": o, "values": vals})

    final = final_reads.get(leader_reader, {})
    final_values = {v for recs in final.values() for _, v in recs}
    for p, o, v in acked:
        if v not in final_values:
            anomalies["lost-write"].append({"partition": p, "offset": o, "value": v})

    where_value = defaultdict(set)
    for p, recs in final.items():
        for o, v in recs:
            where_value[v].add((p, o))
    for v, places in where_value.items():
        if len(places) > 1:
            anomalies["duplicate"].append({"value": v, "at": sorted(places)})

    for p, recs in final.items():
        last_seq = {}
        for o, v in sorted(recs):
            producer, _, seq = v.rpartition("-")
            if not producer or not seq.isdigit():
                continue
            prev = last_seq.get(producer)
            if prev is not None and int(seq) < prev[0]:
                anomalies["reordered"].append({"partition": p, "value": v, "offset": o,
                                               "after": f"{producer}-{prev[0]}@{prev[1]}"})
            last_seq[producer] = max(prev or (int(seq), o), (int(seq), o))

    final_offsets = {p: sorted(o for o, _ in recs) for p, recs in final.items()}
    polled_values = set()
    for cid, seq in polls.items():
        last = {}
        for p, o, v in seq:
            polled_values.add(v)
            prev = last.get(p)
            if prev is not None:
                if o <= prev:
                    anomalies["nonmonotonic-poll"].append({"consumer": cid, "partition": p, "from": prev, "to": o})
                elif o > prev + 1:
                    skipped = [x for x in final_offsets.get(p, []) if prev < x < o]
                    if skipped:
                        anomalies["poll-skip"].append({"consumer": cid, "partition": p, "from": prev, "to": o,
                                                       "skipped": len(skipped)})
            last[p] = o
    if polls:
        for p, o, v in acked:
            if v in final_values and v not in polled_values:
                anomalies["unseen"].append({"partition": p, "offset": o, "value": v})
    return dict(anomalies)


def report(anomalies, examples=3):
    lines = []
    for kind in ("lost-write", "inconsistent-offsets", "duplicate", "reordered", "fatal-producer-error",
                 "nonmonotonic-poll", "poll-skip", "unseen"):
        items = anomalies.get(kind, [])
        lines.append(f"{kind:22} {len(items):7}" + ("  e.g. " + "; ".join(map(str, items[:examples])) if items else ""))
    return "\n".join(lines)


def fatal(anomalies, idempotent=False):
    kinds = FATAL_IDEMPOTENT if idempotent else FATAL
    return {k: v for k, v in anomalies.items() if k in kinds and v}
