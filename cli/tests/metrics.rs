//! End-to-end test of the Prometheus endpoints: a real local cluster (3 controllers, 3
//! brokers) started by `gregor cluster up --detach`, every node scraped with a plain
//! `GET /metrics` over a TcpStream, the text format checked line by line, and the values
//! followed through a produce and a `kill -9` of a broker. `cluster down` always runs
//! (drop guard).
//!
//! The controller and broker binaries must be in the same target dir as `gregor`:
//! `cargo build -p gregor-controller -p gregor-broker` first.

mod common;

use common::{ok, ok_with_input, Cluster};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Limit of one scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Node name → metrics address, from cluster.json.
fn metrics_addrs(cluster: &Cluster) -> BTreeMap<String, String> {
    cluster
        .nodes()
        .iter()
        .map(|n| {
            let name = n["name"].as_str().expect("name").to_string();
            let addr = n["addresses"]["metrics"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} has no metrics address"))
                .to_string();
            (name, addr)
        })
        .collect()
}

/// One sample: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape.
#[derive(Debug)]
struct Scrape(Vec<Sample>);

impl Scrape {
    /// The value of the sample with this name whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    fn value(&self, name: &str) -> f64 {
        self.get(name, &[])
            .unwrap_or_else(|| panic!("{name} missing from the scrape: {:?}", self.0))
    }
}

/// `GET /metrics` over a plain socket; `None` if the node does not answer.
fn scrape(addr: &str) -> Option<String> {
    let sock: std::net::SocketAddr = addr.parse().expect("metrics address");
    let mut s = TcpStream::connect_timeout(&sock, SCRAPE_TIMEOUT).ok()?;
    s.set_read_timeout(Some(SCRAPE_TIMEOUT)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    Some(body.to_string())
}

/// Parses the text format strictly: every family has HELP then TYPE before its samples,
/// every sample line is `name{labels} value` with a known family, histogram series end
/// in `_bucket` (with `le`), `_sum` or `_count`.
fn parse(text: &str) -> Scrape {
    let mut help: BTreeSet<String> = BTreeSet::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').expect("HELP name text");
            assert!(help.insert(name.to_string()), "second HELP for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(help.contains(name), "TYPE before HELP for {name}");
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "type {kind}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "second TYPE for {name}"
            );
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "line `{line}`");
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in `{line}`")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                (name, parse_labels(body))
            }
            None => (series, BTreeMap::new()),
        };
        assert!(
            name.starts_with("gregor_")
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "name `{name}`"
        );
        let family = match types.get(name).map(String::as_str) {
            Some("counter") | Some("gauge") => name.to_string(),
            _ => {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or_else(|| panic!("sample `{name}` has no TYPE"));
                assert_eq!(
                    types.get(base).map(String::as_str),
                    Some("histogram"),
                    "`{name}`"
                );
                if name.ends_with("_bucket") {
                    assert!(labels.contains_key("le"), "`{line}`");
                }
                base.to_string()
            }
        };
        assert!(types.contains_key(&family), "`{line}` without TYPE");
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    assert!(!samples.is_empty(), "empty scrape");
    Scrape(samples)
}

/// `a="x",b="y"` (values may hold escaped quotes, backslashes and newlines).
fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "label name `{name}` in `{body}`"
        );
        assert_eq!(chars.next(), Some('"'), "label value quoted in `{body}`");
        let mut value = String::new();
        loop {
            match chars.next().expect("unterminated label value") {
                '\\' => match chars.next().expect("escape") {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(name, value);
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(c) => panic!("unexpected `{c}` in `{body}`"),
        }
    }
    out
}

/// Scrapes every node in `addrs`, node name → parsed scrape (nodes that do not answer are
/// left out).
fn scrape_all(addrs: &BTreeMap<String, String>) -> BTreeMap<String, Scrape> {
    addrs
        .iter()
        .filter_map(|(name, addr)| scrape(addr).map(|t| (name.clone(), parse(&t))))
        .collect()
}

/// Polls until `cond` holds on a fresh scrape of every node, or fails after `limit` with
/// the last scrapes.
fn wait_for(
    what: &str,
    addrs: &BTreeMap<String, String>,
    limit: Duration,
    cond: impl Fn(&BTreeMap<String, Scrape>) -> bool,
) -> BTreeMap<String, Scrape> {
    let deadline = Instant::now() + limit;
    loop {
        let scrapes = scrape_all(addrs);
        if cond(&scrapes) {
            return scrapes;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}; last scrapes: {scrapes:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn active_controllers(s: &BTreeMap<String, Scrape>) -> Vec<&String> {
    s.iter()
        .filter(|(n, sc)| {
            n.starts_with("controller-") && sc.get("gregor_controller_active", &[]) == Some(1.0)
        })
        .map(|(n, _)| n)
        .collect()
}

fn produce_requests(s: &Scrape) -> f64 {
    s.get("gregor_broker_requests_total", &[("api", "Produce")])
        .unwrap_or(0.0)
}

#[test]
fn every_node_serves_prometheus_metrics_that_follow_the_cluster() {
    let started = Instant::now();
    let cluster = Cluster::up(3, 3);
    let dir = cluster.path();
    let addrs = metrics_addrs(&cluster);
    assert_eq!(addrs.len(), 6, "{addrs:?}");

    // Every node answers, the text parses, and exactly one controller is active.
    let scrapes = wait_for(
        "six scrapes with one active controller",
        &addrs,
        Duration::from_secs(15),
        |s| s.len() == 6 && active_controllers(s).len() == 1,
    );
    for (name, s) in &scrapes {
        if name.starts_with("broker-") {
            assert_eq!(s.value("gregor_broker_fenced"), 0.0, "{name}");
            assert!(s.value("gregor_broker_metadata_offset") > 0.0, "{name}");
            assert!(s.value("gregor_broker_metadata_lag") >= 0.0, "{name}");
        } else {
            assert!(s.value("gregor_controller_raft_term") >= 1.0, "{name}");
            assert_eq!(s.value("gregor_controller_registered_brokers"), 3.0);
        }
    }
    let active = active_controllers(&scrapes)[0].clone();
    assert_eq!(
        scrapes[&active].value("gregor_controller_fenced_brokers"),
        0.0
    );
    assert!(
        scrapes[&active]
            .get("gregor_controller_voter_lag", &[("voter", "2")])
            .is_some(),
        "the active controller reports every voter's lag"
    );

    // A replicated topic; its leader counts the produce and its bytes.
    ok(
        dir,
        &[
            "topic",
            "create",
            "metered",
            "--partitions",
            "1",
            "--replication-factor",
            "3",
        ],
    );
    let described = ok(dir, &["topic", "describe", "metered"]);
    let leader: u32 = described
        .split("\tLeader: ")
        .nth(1)
        .and_then(|r| r.split('\t').next())
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no leader in {described}"));
    let leader_name = format!("broker-{leader}");
    let before = scrape_all(&addrs);
    let records: String = (0..20).map(|i| format!("record {i}\n")).collect();
    ok_with_input(dir, &["produce", "metered", "--acks", "all"], &records);
    let after = wait_for(
        "the leader to count the produce",
        &addrs,
        Duration::from_secs(10),
        |s| {
            s.get(&leader_name).is_some_and(|a| {
                produce_requests(a) > produce_requests(&before[&leader_name])
                    && a.value("gregor_broker_bytes_in_total")
                        > before[&leader_name].value("gregor_broker_bytes_in_total")
            })
        },
    );
    let l = &after[&leader_name];
    assert!(l.value("gregor_broker_leader_partitions") >= 1.0);
    assert!(l.value("gregor_broker_bytes_out_total") > 0.0);
    assert!(
        l.get(
            "gregor_broker_request_latency_seconds_count",
            &[("api", "Produce")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(l.value("gregor_broker_under_replicated_partitions"), 0.0);

    // kill -9 a follower of the topic: its leader sees the ISR shrink and the partition
    // under-replicated, and the active controller counts one fenced broker.
    let victim = (1..=3)
        .map(|i| format!("broker-{i}"))
        .find(|n| *n != leader_name)
        .expect("a follower");
    println!("cluster up, produce counted: {:?}", started.elapsed());
    ok(dir, &["cluster", "kill", &victim]);
    let mut alive = addrs.clone();
    alive.remove(&victim);
    wait_for(
        "under-replicated partitions, one fenced broker and an ISR shrink",
        &alive,
        Duration::from_secs(30),
        |s| {
            let brokers = || s.iter().filter(|(n, _)| n.starts_with("broker-"));
            let under = brokers().any(|(_, b)| {
                b.get("gregor_broker_under_replicated_partitions", &[])
                    .unwrap_or(0.0)
                    > 0.0
            });
            let shrinks = brokers()
                .any(|(_, b)| b.get("gregor_broker_isr_shrinks_total", &[]).unwrap_or(0.0) > 0.0);
            let fenced = active_controllers(s)
                .first()
                .is_some_and(|c| s[*c].get("gregor_controller_fenced_brokers", &[]) == Some(1.0));
            under && shrinks && fenced
        },
    );
    println!("metrics test took {:?}", started.elapsed());
}
