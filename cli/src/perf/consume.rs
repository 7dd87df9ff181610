//! `gregor perf consume`: read a topic from the beginning as fast as fetches allow and
//! report records/s, MB/s and fetch latency percentiles.

use super::produce::REPORT_EVERY;
use super::stats::{rates, summary_line, Latencies};
use crate::addrs::BootstrapArgs;
use crate::kafka::ops::{self, EARLIEST};
use crate::kafka::{Client, KafkaError};
use anyhow::bail;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
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

pub async fn run(dir: &Path, args: &PerfConsumeArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap.resolve(dir)?).await?;
    let topic = client.topic(&args.topic).await?;
    let mut positions = BTreeMap::new();
    for &p in topic.partitions.keys() {
        positions.insert(
            p,
            ops::list_offset(&mut client, &args.topic, p, EARLIEST).await?,
        );
    }
    let start = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let (mut win_records, mut win_bytes) = (0u64, 0u64);
    let mut total = Latencies::default();
    let mut last_report = start;
    let mut last_record = start;
    while records < args.num_records {
        if last_record.elapsed() >= Duration::from_millis(args.timeout_ms) {
            eprintln!("no record for {} ms; stopping", args.timeout_ms);
            break;
        }
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for (&p, &o) in &positions {
            if let Ok(l) = client.leader(&args.topic, p) {
                by_leader.entry(l).or_default().push((p, o));
            }
        }
        let mut refresh = by_leader.is_empty();
        for (leader, offsets) in by_leader {
            let t0 = Instant::now();
            let fetched = match client.broker_conn(leader).await {
                Ok(conn) => ops::fetch_on(&conn, &args.topic, &offsets, 100, args.fetch_size).await,
                Err(e) => Err(e),
            };
            let fetched = match fetched {
                Ok(f) => f,
                Err(e) if e.is_retriable() => {
                    refresh = true;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let latency = t0.elapsed();
            let mut got = 0u64;
            for f in fetched {
                if let Some(e) = KafkaError::api("fetch", f.error_code, None) {
                    if !e.is_retriable() {
                        bail!("fetch {}-{}: {e}", args.topic, f.partition);
                    }
                    refresh = true;
                    continue;
                }
                let pos = positions.get(&f.partition).copied().unwrap_or(0);
                for r in f.records.iter().filter(|r| r.offset >= pos) {
                    let size = r.value.as_ref().map_or(0, |v| v.len())
                        + r.key.as_ref().map_or(0, |k| k.len());
                    bytes += size as u64;
                    win_bytes += size as u64;
                    got += 1;
                    positions.insert(f.partition, r.offset + 1);
                }
            }
            if got > 0 {
                total.record(latency, got);
                records += got;
                win_records += got;
                last_record = Instant::now();
            }
        }
        if last_report.elapsed() >= REPORT_EVERY {
            let (rps, mbps) = rates(win_records, win_bytes, last_report.elapsed());
            println!("{win_records} records consumed, {rps:.1} records/sec ({mbps:.2} MB/sec).");
            (win_records, win_bytes) = (0, 0);
            last_report = Instant::now();
        }
        if refresh {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = client
                .refresh(Some(std::slice::from_ref(&args.topic)))
                .await;
        }
    }
    println!(
        "{}",
        summary_line("consumed", records, bytes, start.elapsed(), &total)
            .replace("latency", "fetch latency")
    );
    Ok(())
}
