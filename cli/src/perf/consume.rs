//! `gregor perf consume`: read a topic from the beginning as fast as fetches allow and
//! report records/s, MB/s and fetch latency percentiles.
//!
//! Like Kafka's consumers, it fetches ahead: as soon as a response arrives, the offsets
//! after it are read off the batch headers and the next fetch to that broker goes out,
//! and only then are the records decoded (CRCs checked) and counted, on a task of their
//! own, so that decoding one response overlaps the arrival of the next. One fetch per
//! broker is in flight at a time.

use super::produce::{REPORT_EVERY, TOPIC_WAIT};
use super::stats::{rates, summary_line, Latencies};
use crate::addrs::BootstrapArgs;
use crate::kafka::ops::{self, RawFetched, EARLIEST};
use crate::kafka::{Client, KafkaError};
use anyhow::bail;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Debug, Clone, clap::Args)]
pub struct PerfConsumeArgs {
    pub topic: String,
    /// Stop after this many records.
    #[arg(long, default_value_t = 100_000)]
    pub num_records: u64,
    /// Stop when no record arrives for this long (ms).
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Bytes per partition per fetch.
    #[arg(long, default_value_t = 1 << 20)]
    pub fetch_size: i32,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

/// A fetch sent to one broker and not answered yet.
struct InFlight {
    leader: i32,
    addr: String,
    /// (partition, offset) asked for.
    offsets: Vec<(i32, i64)>,
    sent: Instant,
    answer: JoinHandle<Result<Vec<RawFetched>, KafkaError>>,
}

pub async fn run(dir: &Path, args: &PerfConsumeArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap.resolve(dir)?).await?;
    let topic = client.topic_with_leaders(&args.topic, TOPIC_WAIT).await?;
    // The next offset to fetch per partition: moved on when a response arrives.
    let mut positions = BTreeMap::new();
    for &p in topic.partitions.keys() {
        positions.insert(
            p,
            ops::list_offset(&mut client, &args.topic, p, EARLIEST).await?,
        );
    }
    let start = Instant::now();
    let mut tally = Tally::new(start);
    let mut last_report = start;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut decoding: Option<Decoding> = None;
    let mut refresh = false;
    while tally.records < args.num_records {
        if tally.last_record.elapsed() >= Duration::from_millis(args.timeout_ms) {
            eprintln!("no record for {} ms; stopping", args.timeout_ms);
            break;
        }
        if refresh {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = client
                .refresh(Some(std::slice::from_ref(&args.topic)))
                .await;
            refresh = false;
        }
        send_fetches(&mut client, args, &positions, &mut in_flight).await;
        let Some(f) = in_flight.pop_front() else {
            refresh = true;
            continue;
        };
        let fetched = match f.answer.await {
            Ok(Ok(fetched)) => fetched,
            Ok(Err(e)) if e.is_retriable() => {
                refresh = true;
                continue;
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => bail!("fetch task of broker {}: {e}", f.leader),
        };
        let latency = f.sent.elapsed();
        // Fetch ahead: move the positions on from the batch headers and send the next
        // fetch before decoding this one.
        for r in &fetched {
            if r.error_code == 0 {
                if let Some(next) = r.next_offset() {
                    let pos = positions.entry(r.partition).or_insert(next);
                    *pos = (*pos).max(next);
                }
            }
        }
        send_fetches(&mut client, args, &positions, &mut in_flight).await;
        let mut ok = Vec::new();
        for raw in fetched {
            if let Some(e) = KafkaError::api("fetch", raw.error_code, None) {
                if !e.is_retriable() {
                    bail!("fetch {}-{}: {e}", args.topic, raw.partition);
                }
                refresh = true;
                continue;
            }
            let asked = f
                .offsets
                .iter()
                .find(|(p, _)| *p == raw.partition)
                .map_or(0, |(_, o)| *o);
            ok.push((raw, asked));
        }
        // Offsets past the asked ones, off the batch headers: what this response holds
        // if its offsets are dense, to know whether it may be the last one needed.
        let expected: u64 = ok
            .iter()
            .filter_map(
                |(raw, asked)| Some(raw.next_offset()?.saturating_sub(*asked).max(0) as u64),
            )
            .sum();
        let (topic, addr) = (args.topic.clone(), f.addr.clone());
        let next = Decoding {
            latency,
            counts: tokio::spawn(async move { count_records(ok, &topic, &addr) }),
        };
        // This response decodes on its own task while the next one arrives; the one
        // before it is counted now (its decoding ran during this one's fetch).
        if let Some(prev) = decoding.replace(next) {
            tally.add(prev.finish().await?);
        }
        if tally.records + expected >= args.num_records {
            if let Some(last) = decoding.take() {
                tally.add(last.finish().await?);
            }
        }
        if last_report.elapsed() >= REPORT_EVERY {
            let (rps, mbps) = rates(tally.win_records, tally.win_bytes, last_report.elapsed());
            println!(
                "{} records consumed, {rps:.1} records/sec ({mbps:.2} MB/sec).",
                tally.win_records
            );
            (tally.win_records, tally.win_bytes) = (0, 0);
            last_report = Instant::now();
        }
    }
    if let Some(last) = decoding.take() {
        tally.add(last.finish().await?);
    }
    for f in in_flight {
        f.answer.abort();
    }
    println!(
        "{}",
        summary_line(
            "consumed",
            tally.records,
            tally.bytes,
            start.elapsed(),
            &tally.latencies
        )
        .replace("latency", "fetch latency")
    );
    Ok(())
}

/// Records and bytes consumed so far, and each fetch's latency.
struct Tally {
    records: u64,
    bytes: u64,
    win_records: u64,
    win_bytes: u64,
    latencies: Latencies,
    /// When a record last arrived.
    last_record: Instant,
}

impl Tally {
    fn new(start: Instant) -> Self {
        Tally {
            records: 0,
            bytes: 0,
            win_records: 0,
            win_bytes: 0,
            latencies: Latencies::default(),
            last_record: start,
        }
    }

    /// Counts one decoded response: its fetch latency, records and bytes.
    fn add(&mut self, (latency, got, bytes): (Duration, u64, u64)) {
        if got > 0 {
            self.latencies.record(latency, got);
            self.records += got;
            self.win_records += got;
            self.bytes += bytes;
            self.win_bytes += bytes;
            self.last_record = Instant::now();
        }
    }
}

/// A response being decoded on its own task.
struct Decoding {
    latency: Duration,
    counts: JoinHandle<Result<(u64, u64), KafkaError>>,
}

impl Decoding {
    /// (fetch latency, records, bytes of keys and values) once decoded.
    async fn finish(self) -> anyhow::Result<(Duration, u64, u64)> {
        let (got, bytes) = self.counts.await??;
        Ok((self.latency, got, bytes))
    }
}

/// Decodes every partition's batches (CRCs checked) and counts the records at or after
/// the offset asked for, with the bytes of their keys and values.
fn count_records(
    fetched: Vec<(RawFetched, i64)>,
    topic: &str,
    addr: &str,
) -> Result<(u64, u64), KafkaError> {
    let (mut got, mut bytes) = (0u64, 0u64);
    for (raw, asked) in fetched {
        let decoded = raw.decode(topic, addr)?;
        for r in decoded.records.iter().filter(|r| r.offset >= asked) {
            let size =
                r.value.as_ref().map_or(0, |v| v.len()) + r.key.as_ref().map_or(0, |k| k.len());
            bytes += size as u64;
            got += 1;
        }
    }
    Ok((got, bytes))
}

/// Sends one fetch to every leader of the topic's partitions that has none in flight.
async fn send_fetches(
    client: &mut Client,
    args: &PerfConsumeArgs,
    positions: &BTreeMap<i32, i64>,
    in_flight: &mut VecDeque<InFlight>,
) {
    let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
    for (&p, &o) in positions {
        if let Ok(l) = client.leader(&args.topic, p) {
            if !in_flight.iter().any(|f| f.leader == l) {
                by_leader.entry(l).or_default().push((p, o));
            }
        }
    }
    for (leader, offsets) in by_leader {
        let Ok(conn) = client.broker_conn(leader).await else {
            continue;
        };
        let (topic, asked, size) = (args.topic.clone(), offsets.clone(), args.fetch_size);
        let addr = conn.addr().to_string();
        let answer =
            tokio::spawn(async move { ops::fetch_raw_on(&conn, &topic, &asked, 100, size).await });
        in_flight.push_back(InFlight {
            leader,
            addr,
            offsets,
            sent: Instant::now(),
            answer,
        });
    }
}
