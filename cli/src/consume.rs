//! `gregor consume TOPIC`: read assigned partitions from the beginning, an offset, a
//! timestamp or the end, and print each record through a `--format` template.

use crate::addrs::BootstrapArgs;
use crate::kafka::ops::{self, EARLIEST, LATEST};
use crate::kafka::records::ConsumedRecord;
use crate::kafka::{Client, KafkaError};
use anyhow::bail;
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// Long-poll wait of one fetch.
const FETCH_WAIT_MS: i32 = 500;
/// Bytes per partition per fetch.
const PARTITION_MAX_BYTES: i32 = 1 << 20;

#[derive(Debug, Clone, clap::Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Start at the earliest offset (default: only new records).
    #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
    pub from_beginning: bool,
    /// Start at this offset (in every consumed partition).
    #[arg(long, conflicts_with = "timestamp")]
    pub offset: Option<i64>,
    /// Start at the first record with a timestamp at or after this (ms since the epoch).
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Consume only this partition (default: all).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Exit after this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Exit when no record arrives for this long (ms).
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
    /// Output template: {topic} {partition} {offset} {timestamp} {key} {value} {headers};
    /// \t and \n are tab and newline.
    #[arg(long, default_value = "{value}")]
    pub format: String,
    /// Consume as a member of this consumer group (partitions come from the group's
    /// assignment; offsets are committed).
    #[arg(long, conflicts_with = "partition")]
    pub group: Option<String>,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

/// Renders one record through a template.
pub fn format_record(template: &str, topic: &str, partition: i32, r: &ConsumedRecord) -> String {
    let text = |b: &Option<bytes::Bytes>| match b {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => "null".to_string(),
    };
    let headers = r
        .headers
        .iter()
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect::<Vec<_>>()
        .join(",");
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '\\']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let (piece, len) = if rest.starts_with("\\t") {
            ("\t".to_string(), 2)
        } else if rest.starts_with("\\n") {
            ("\n".to_string(), 2)
        } else if let Some(end) = rest.find('}') {
            match &rest[1..end] {
                "topic" => (topic.to_string(), end + 1),
                "partition" => (partition.to_string(), end + 1),
                "offset" => (r.offset.to_string(), end + 1),
                "timestamp" => (r.timestamp_ms.to_string(), end + 1),
                "key" => (text(&r.key), end + 1),
                "value" => (text(&r.value), end + 1),
                "headers" => (headers.clone(), end + 1),
                _ => (rest[..1].to_string(), 1),
            }
        } else {
            (rest[..1].to_string(), 1)
        };
        out.push_str(&piece);
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

pub async fn run(dir: &Path, args: &ConsumeArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap.resolve(dir)?).await?;
    let topic = client.topic(&args.topic).await?;
    if let Some(group) = &args.group {
        return crate::consume_group::run(&mut client, args, group).await;
    }
    let parts: Vec<i32> = match args.partition {
        Some(p) if topic.partitions.contains_key(&p) => vec![p],
        Some(p) => bail!(
            "topic '{}' has no partition {p} (it has {})",
            args.topic,
            topic.partitions.len()
        ),
        None => topic.partitions.keys().copied().collect(),
    };
    let mut positions = BTreeMap::new();
    for &p in &parts {
        let offset = start_offset(&mut client, args, p).await?;
        tracing::debug!("{}-{p}: starting at offset {offset}", args.topic);
        positions.insert(p, offset);
    }
    let mut sink = Sink::new();
    loop {
        if fetch_round(&mut client, args, &mut positions, &mut sink).await? == Flow::Stop {
            return Ok(());
        }
    }
}

/// Where consumed records go, and how many went.
#[derive(Debug)]
pub(crate) struct Sink {
    out: std::io::BufWriter<std::io::Stdout>,
    pub count: u64,
    pub last_record: Instant,
}

impl Sink {
    pub fn new() -> Sink {
        Sink {
            out: std::io::BufWriter::new(std::io::stdout()),
            count: 0,
            last_record: Instant::now(),
        }
    }
}

/// Whether to keep consuming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// One fetch from every leader of the partitions in `positions`, printing the records and
/// advancing the positions. Stops at `--max-messages`, `--idle-timeout-ms` or a closed
/// stdout.
pub(crate) async fn fetch_round(
    client: &mut Client,
    args: &ConsumeArgs,
    positions: &mut BTreeMap<i32, i64>,
    sink: &mut Sink,
) -> anyhow::Result<Flow> {
    let by_leader = group_by_leader(client, &args.topic, positions).await?;
    let mut refresh = by_leader.is_empty();
    for (leader, offsets) in by_leader {
        let result = match client.broker_conn(leader).await {
            Ok(conn) => {
                ops::fetch_on(
                    &conn,
                    &args.topic,
                    &offsets,
                    FETCH_WAIT_MS,
                    PARTITION_MAX_BYTES,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let fetched = match result {
            Ok(f) => f,
            Err(e) if e.is_retriable() => {
                tracing::debug!("fetch from broker {leader}: {e}");
                refresh = true;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for f in fetched {
            tracing::debug!(
                "fetched {}-{}: error {} high watermark {} records {}",
                args.topic,
                f.partition,
                f.error_code,
                f.high_watermark,
                f.records.len()
            );
            if f.error_code == ResponseError::OffsetOutOfRange.code() {
                let reset = ops::list_offset(client, &args.topic, f.partition, EARLIEST).await?;
                eprintln!(
                    "offset out of range in partition {}; resetting to {reset}",
                    f.partition
                );
                positions.insert(f.partition, reset);
                continue;
            }
            if let Some(e) = KafkaError::api(
                format!("fetch {}-{}", args.topic, f.partition),
                f.error_code,
                None,
            ) {
                if e.is_retriable() {
                    refresh = true;
                    continue;
                }
                return Err(e.into());
            }
            let pos = positions.get(&f.partition).copied().unwrap_or(0);
            for r in f.records.iter().filter(|r| r.offset >= pos) {
                let line = format_record(&args.format, &args.topic, f.partition, r);
                if writeln!(sink.out, "{line}").is_err() {
                    return Ok(Flow::Stop); // stdout closed (e.g. piped into `head`)
                }
                positions.insert(f.partition, r.offset + 1);
                sink.count += 1;
                sink.last_record = Instant::now();
                if args.max_messages.is_some_and(|m| sink.count >= m) {
                    let _ = sink.out.flush();
                    return Ok(Flow::Stop);
                }
            }
        }
    }
    if sink.out.flush().is_err() {
        return Ok(Flow::Stop);
    }
    if args
        .idle_timeout_ms
        .is_some_and(|ms| sink.last_record.elapsed() >= Duration::from_millis(ms))
    {
        return Ok(Flow::Stop);
    }
    if refresh {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = client
            .refresh(Some(std::slice::from_ref(&args.topic)))
            .await;
    }
    Ok(Flow::Continue)
}

pub(crate) async fn start_offset(
    client: &mut Client,
    args: &ConsumeArgs,
    partition: i32,
) -> anyhow::Result<i64> {
    if let Some(o) = args.offset {
        return Ok(o);
    }
    let ts = match args.timestamp {
        Some(ts) => ts,
        None if args.from_beginning => EARLIEST,
        None => LATEST,
    };
    let offset = ops::list_offset(client, &args.topic, partition, ts).await?;
    if offset < 0 {
        // No record at or after the timestamp: start at the end.
        return Ok(ops::list_offset(client, &args.topic, partition, LATEST).await?);
    }
    Ok(offset)
}

/// Partitions with their positions, grouped by current leader (partitions without a
/// leader are left out until the next refresh).
async fn group_by_leader(
    client: &mut Client,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
) -> anyhow::Result<BTreeMap<i32, Vec<(i32, i64)>>> {
    let mut out: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
    for (&p, &o) in positions {
        match client.leader(topic, p) {
            Ok(l) => out.entry(l).or_default().push((p, o)),
            Err(KafkaError::NoLeader { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn templates_show_key_partition_offset_timestamp() {
        let r = ConsumedRecord {
            offset: 42,
            timestamp_ms: 1700,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![
                ("h".into(), Some(Bytes::from_static(b"x"))),
                ("n".into(), None),
            ],
        };
        assert_eq!(format_record("{value}", "t", 3, &r), "v");
        assert_eq!(
            format_record(
                "{topic}-{partition}@{offset}\\t{timestamp} {key}={value} [{headers}]",
                "t",
                3,
                &r
            ),
            "t-3@42\t1700 k=v [h=x,n=null]"
        );
        assert_eq!(
            format_record("{value}{key}{nope}\\x", "t", 0, &r),
            "vk{nope}\\x"
        );
        let tricky = ConsumedRecord {
            key: Some(Bytes::from_static(b"{value}")),
            ..r.clone()
        };
        assert_eq!(format_record("{key}", "t", 0, &tricky), "{value}");
        let no_key = ConsumedRecord { key: None, ..r };
        assert_eq!(format_record("{key}", "t", 0, &no_key), "null");
    }
}
