//! Replica placement for new partitions.
//!
//! Deterministic: the same brokers, topic name and partition numbers give the same
//! assignment. Brokers are ordered by id; when racks are set the order alternates racks
//! (Kafka's rack-alternated list), so consecutive replicas land on different racks.
//! Partition `p` starts at `(seed + p) mod n` and takes the next `rf` brokers, which spreads
//! leaders round-robin.

use protocol::ids::BrokerId;
use std::collections::BTreeMap;

/// A broker that may host new replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: BrokerId,
    pub rack: Option<String>,
}

/// A stable seed from a topic name (FNV-1a), so topics start at different brokers.
pub fn seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn rack_alternated(mut brokers: Vec<Candidate>) -> Vec<BrokerId> {
    brokers.sort_by_key(|c| c.id);
    if brokers.iter().all(|c| c.rack.is_none()) {
        return brokers.into_iter().map(|c| c.id).collect();
    }
    let mut by_rack: BTreeMap<String, Vec<BrokerId>> = BTreeMap::new();
    for c in brokers {
        by_rack
            .entry(c.rack.unwrap_or_default())
            .or_default()
            .push(c.id);
    }
    let mut out = Vec::new();
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for ids in by_rack.values() {
            if let Some(id) = ids.get(i) {
                out.push(*id);
            }
        }
    }
    out
}

/// Assigns `rf` replicas to each of partitions `first..first + count`. `rf` must be at
/// most the number of candidates (checked by the caller).
pub fn place(
    candidates: Vec<Candidate>,
    seed: u64,
    first: u32,
    count: u32,
    rf: usize,
) -> Vec<Vec<BrokerId>> {
    let order = rack_alternated(candidates);
    let n = order.len();
    assert!(
        rf >= 1 && rf <= n,
        "replication factor {rf} with {n} brokers"
    );
    (first..first + count)
        .map(|p| {
            let start = ((seed % n as u64) as usize + p as usize) % n;
            (0..rf).map(|k| order[(start + k) % n]).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn c(id: i32, rack: Option<&str>) -> Candidate {
        Candidate {
            id: BrokerId(id),
            rack: rack.map(String::from),
        }
    }

    #[test]
    fn spreads_leaders_and_is_deterministic() {
        let brokers = vec![c(3, None), c(1, None), c(2, None)];
        let a = place(brokers.clone(), 0, 0, 6, 2);
        assert_eq!(a, place(brokers, 0, 0, 6, 2));
        let leaders: Vec<i32> = a.iter().map(|r| r[0].0).collect();
        assert_eq!(leaders, vec![1, 2, 3, 1, 2, 3]);
        for r in &a {
            assert_eq!(
                r.iter().collect::<BTreeSet<_>>().len(),
                2,
                "distinct replicas"
            );
        }
    }

    #[test]
    fn rack_aware_puts_replicas_on_different_racks() {
        let brokers = vec![
            c(1, Some("a")),
            c(2, Some("a")),
            c(3, Some("b")),
            c(4, Some("b")),
        ];
        let rack = |b: BrokerId| if b.0 <= 2 { "a" } else { "b" };
        for r in place(brokers, seed("t"), 0, 8, 2) {
            assert_ne!(rack(r[0]), rack(r[1]));
        }
    }
}
