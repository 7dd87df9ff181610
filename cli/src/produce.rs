//! `gregor produce TOPIC`: one record per line of stdin, optionally `key<sep>value`, with
//! headers, acks and compression. Lines that arrive together go out as one batch.

use crate::addrs::BootstrapArgs;
use crate::kafka::records::{encode_batch, parse_compression, NewRecord};
use crate::kafka::{ops, Client};
use crate::topic::parse_key_value;
use anyhow::{bail, Context};
use bytes::Bytes;
use kafka_protocol::records::Compression;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// How long to wait for more lines before sending what has been read.
const LINGER: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, clap::Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Split each line at the first occurrence of this string into key and value.
    #[arg(long)]
    pub key_separator: Option<String>,
    /// A header `key=value` added to every record; repeat for more.
    #[arg(long = "header", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// 0 (no answer), 1 (leader), all (every in-sync replica).
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: i16,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,
    /// Send every record to this partition (default: by key hash, else round robin).
    #[arg(long)]
    pub partition: Option<i32>,
    /// At most this many records per request.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Print `partition<TAB>offset<TAB>value` for every acknowledged record (offset -1
    /// with acks=0), e.g. to check later that nothing acknowledged was lost.
    #[arg(long)]
    pub print_acks: bool,
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
}

/// Parses `--acks`.
pub fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        _ => Err(format!("acks must be 0, 1 or all, not '{s}'")),
    }
}

/// Kafka's murmur2 hash (the Java client's default partitioner uses it on the key).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ len as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a keyed record, as Kafka's default partitioner picks it.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Turns one input line into a record.
pub fn line_to_record(
    line: &str,
    sep: Option<&str>,
    headers: &[(String, String)],
    now_ms: i64,
) -> NewRecord {
    let (key, value) = match sep.and_then(|s| line.split_once(s)) {
        Some((k, v)) => (Some(Bytes::from(k.to_string())), v),
        None => (None, line),
    };
    NewRecord {
        key,
        value: Some(Bytes::from(value.to_string())),
        headers: headers
            .iter()
            .map(|(k, v)| (k.clone(), Bytes::from(v.clone())))
            .collect(),
        timestamp_ms: now_ms,
    }
}

pub async fn run(dir: &Path, args: &ProduceArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap.resolve(dir)?).await?;
    let topic = client.topic(&args.topic).await?;
    let partitions = topic.partitions.len() as i32;
    if partitions == 0 {
        bail!("topic '{}' has no partitions", args.topic);
    }
    if let Some(p) = args.partition {
        if !topic.partitions.contains_key(&p) {
            bail!(
                "topic '{}' has no partition {p} (it has {partitions})",
                args.topic
            );
        }
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut round_robin = 0i32;
    let mut total = 0u64;
    let mut eof = false;
    while !eof {
        let mut batch = Vec::new();
        match lines.next_line().await.context("reading stdin")? {
            Some(l) => batch.push(l),
            None => break,
        }
        while batch.len() < args.batch_size as usize {
            match tokio::time::timeout(LINGER, lines.next_line()).await {
                Ok(Ok(Some(l))) => batch.push(l),
                Ok(Ok(None)) => {
                    eof = true;
                    break;
                }
                Ok(Err(e)) => return Err(e).context("reading stdin"),
                Err(_) => break,
            }
        }
        let now = crate::quorum::now_ms() as i64;
        let mut by_partition: BTreeMap<i32, Vec<NewRecord>> = BTreeMap::new();
        for line in &batch {
            let rec = line_to_record(line, args.key_separator.as_deref(), &args.headers, now);
            let p = match (args.partition, &rec.key) {
                (Some(p), _) => p,
                (None, Some(k)) => partition_for_key(k, partitions),
                (None, None) => round_robin,
            };
            by_partition.entry(p).or_default().push(rec);
        }
        round_robin = (round_robin + 1) % partitions;
        for (p, records) in by_partition {
            let bytes =
                encode_batch(&records, args.compression).context("encoding a record batch")?;
            let (topic, acks) = (args.topic.as_str(), args.acks);
            let base = ops::with_leader(&mut client, topic, p, |conn| {
                let bytes = bytes.clone();
                async move { ops::produce_on(&conn, topic, p, bytes, acks).await }
            })
            .await?;
            if args.print_acks {
                print_acks(p, base, &records)?;
            }
            total += records.len() as u64;
        }
    }
    tracing::info!("produced {total} records to {}", args.topic);
    Ok(())
}

/// One line per acknowledged record of a batch that starts at `base`.
fn print_acks(partition: i32, base: Option<i64>, records: &[NewRecord]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for (i, r) in records.iter().enumerate() {
        let offset = base.map(|b| b + i as i64).unwrap_or(-1);
        let value = r
            .value
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        writeln!(out, "{partition}\t{offset}\t{value}").context("writing acknowledgements")?;
    }
    out.flush().context("writing acknowledgements")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_java_client() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn lines_split_into_key_and_value_at_the_first_separator() {
        let r = line_to_record("k1:v:1", Some(":"), &[("h".into(), "x".into())], 5);
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v:1"[..]));
        assert_eq!(r.headers, vec![("h".to_string(), Bytes::from_static(b"x"))]);
        let r = line_to_record("novalue", Some(":"), &[], 5);
        assert_eq!((r.key, r.value.as_deref()), (None, Some(&b"novalue"[..])));
    }

    #[test]
    fn acks_accept_kafkas_spellings() {
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("-1"), Ok(-1));
        assert_eq!(parse_acks("1"), Ok(1));
        assert!(parse_acks("2").is_err());
    }
}
