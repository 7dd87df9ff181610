//! `gregor perf produce`: pipelined Produce requests of synthetic records.
//!
//! One pre-encoded batch is sent over and over (the broker assigns offsets), so the
//! client's own encoding cost does not limit the measurement. Requests in flight are
//! bounded; `--throughput` paces the sender.

use super::stats::{progress_line, summary_line, Latencies};
use crate::addrs::BootstrapArgs;
use crate::kafka::records::{encode_batch, parse_compression, NewRecord};
use crate::kafka::{ops, Client};
use crate::produce::parse_acks;
use anyhow::{bail, Context};
use bytes::Bytes;
use kafka_protocol::records::Compression;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long a perf run waits for a topic to be known, with leaders, before giving up.
pub const TOPIC_WAIT: Duration = Duration::from_secs(10);

/// Progress lines come this often.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, clap::Args)]
pub struct PerfProduceArgs {
    pub topic: String,
    /// Records to send.
    #[arg(long, default_value_t = 100_000)]
    pub num_records: u64,
    /// Bytes per record value.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=(16 << 20)))]
    pub record_size: u32,
    /// Records per second at most; -1 for no limit.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub throughput: i64,
    /// 0, 1 or all.
    #[arg(long, default_value = "1", value_parser = parse_acks)]
    pub acks: i16,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,
    /// Records per request (default: about 64 KiB of values).
    #[arg(long)]
    pub batch_records: Option<u32>,
    /// Produce requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_in_flight: u32,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

#[derive(Debug, Default)]
struct Shared {
    total: Latencies,
    window: Latencies,
    acked_records: u64,
    window_records: u64,
    errors: u64,
    first_error: Option<String>,
    /// Set by a task that saw an error, so the sender refreshes leaders.
    stale: bool,
}

pub async fn run(dir: &Path, args: &PerfProduceArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap.resolve(dir)?).await?;
    let topic = client.topic_with_leaders(&args.topic, TOPIC_WAIT).await?;
    let partitions: Vec<i32> = topic.partitions.keys().copied().collect();
    if partitions.is_empty() {
        bail!("topic '{}' has no partitions", args.topic);
    }
    let per_batch = args
        .batch_records
        .map(u64::from)
        .unwrap_or_else(|| (65_536 / u64::from(args.record_size.max(1))).clamp(1, 1000))
        .max(1);
    let value = Bytes::from(vec![b'x'; args.record_size as usize]);
    let make = |n: u64| -> anyhow::Result<Bytes> {
        let now = crate::quorum::now_ms() as i64;
        let recs: Vec<NewRecord> = (0..n)
            .map(|_| NewRecord {
                key: None,
                value: Some(value.clone()),
                headers: vec![],
                timestamp_ms: now,
            })
            .collect();
        encode_batch(&recs, args.compression).context("encoding the perf batch")
    };
    let full_batch = make(per_batch)?;
    let shared = Arc::new(Mutex::new(Shared::default()));
    let in_flight = Arc::new(Semaphore::new(args.max_in_flight as usize));
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let mut last_report = start;
    let mut sent = 0u64;
    let mut next_partition = 0usize;
    while sent < args.num_records {
        let n = per_batch.min(args.num_records - sent);
        let batch = if n == per_batch {
            full_batch.clone()
        } else {
            make(n)?
        };
        if args.throughput > 0 {
            let due = start + Duration::from_secs_f64(sent as f64 / args.throughput as f64);
            tokio::time::sleep_until(due).await;
        }
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .context("in-flight limit closed")?;
        let refresh = std::mem::take(&mut shared.lock().expect("stats lock").stale);
        let p = partitions[next_partition % partitions.len()];
        next_partition += 1;
        let conn = match ops::leader_conn(&mut client, &args.topic, p, refresh).await {
            Ok(c) => c,
            Err(e) => {
                note_error(&shared, n, e.to_string());
                tokio::time::sleep(Duration::from_millis(100)).await;
                sent += n;
                continue;
            }
        };
        let (topic, acks, shared2) = (args.topic.clone(), args.acks, shared.clone());
        tasks.spawn(async move {
            let t0 = Instant::now();
            let result = ops::produce_on(&conn, &topic, p, batch, acks).await;
            let latency = t0.elapsed();
            drop(permit);
            match result {
                Ok(_) => {
                    let mut s = shared2.lock().expect("stats lock");
                    s.total.record(latency, n);
                    s.window.record(latency, n);
                    s.acked_records += n;
                    s.window_records += n;
                }
                Err(e) => note_error(&shared2, n, e.to_string()),
            }
        });
        sent += n;
        while tasks.try_join_next().is_some() {}
        report_if_due(&shared, args.record_size, &mut last_report);
    }
    while tasks.join_next().await.is_some() {
        report_if_due(&shared, args.record_size, &mut last_report);
    }
    let elapsed = start.elapsed();
    let s = shared.lock().expect("stats lock");
    println!(
        "{}",
        summary_line(
            "sent",
            s.acked_records,
            s.acked_records * u64::from(args.record_size),
            elapsed,
            &s.total
        )
    );
    if s.errors > 0 {
        println!(
            "{} records failed (first error: {})",
            s.errors,
            s.first_error.as_deref().unwrap_or("?")
        );
        bail!(
            "{} of {} records were not acknowledged",
            s.errors,
            args.num_records
        );
    }
    Ok(())
}

fn note_error(shared: &Mutex<Shared>, records: u64, message: String) {
    let mut s = shared.lock().expect("stats lock");
    s.errors += records;
    s.stale = true;
    s.first_error.get_or_insert(message);
}

fn report_if_due(shared: &Mutex<Shared>, record_size: u32, last: &mut Instant) {
    if last.elapsed() < REPORT_EVERY {
        return;
    }
    let mut s = shared.lock().expect("stats lock");
    let line = progress_line(
        s.window_records,
        s.window_records * u64::from(record_size),
        last.elapsed(),
        &s.window,
    );
    println!("{line}");
    s.window = Latencies::default();
    s.window_records = 0;
    *last = Instant::now();
}
