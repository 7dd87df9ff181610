//! Append and sequential-read throughput of the partition log, each next to plain
//! `write(2)` / `read(2)` of the same bytes to a file in the same directory, in the same run.
//! 1 KiB records in 16 KiB batches. Prints MB/s and the ratio; asserts nothing.
//!
//! `cargo bench -p gregor-storage --bench log`
//!
//! `GREGOR_BENCH_SEGMENT_BYTES=67108864` runs it with 64 MiB segments.
//!
//! The plain write runs first, after a prewarm (see [`prewarm`]); each side starts over in
//! a fresh file every 512 MiB (outside the timed part) to bound disk use.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use gregor_storage::batch::build_test_batch;
use gregor_storage::{LogConfig, PartitionLog};
use protocol::ids::{LeaderEpoch, Offset};

const RECORD: usize = 1024;
const RECORDS_PER_BATCH: i32 = 16;
/// Start over (outside the timed part) once this much was written, to bound disk use.
const RESET_BYTES: u64 = 512 << 20;
/// Size of the log read back sequentially.
const READ_BYTES: u64 = 256 << 20;
const READ_CHUNK: usize = 1 << 20;

static RESULTS: Mutex<BTreeMap<&'static str, (u64, Duration)>> = Mutex::new(BTreeMap::new());

fn record(name: &'static str, bytes: u64, elapsed: Duration) {
    let mut r = RESULTS.lock().unwrap();
    let e = r.entry(name).or_default();
    e.0 += bytes;
    e.1 += elapsed;
}

fn test_batch() -> Vec<u8> {
    build_test_batch(
        0,
        0,
        RECORDS_PER_BATCH,
        1_700_000_000_000,
        &vec![7u8; RECORD * RECORDS_PER_BATCH as usize],
    )
}

/// `segment.bytes` for the benchmark log: Kafka's default 1 GiB unless
/// `GREGOR_BENCH_SEGMENT_BYTES` says otherwise.
fn config() -> LogConfig {
    let segment_bytes = std::env::var("GREGOR_BENCH_SEGMENT_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LogConfig::default().segment_bytes);
    LogConfig {
        segment_bytes,
        ..LogConfig::default()
    }
}

fn open_log(dir: &Path) -> PartitionLog {
    let _ = std::fs::remove_dir_all(dir);
    PartitionLog::open(dir, "bench-0", config()).unwrap()
}

fn bench_append(c: &mut Criterion, dir: &Path) {
    let batch = test_batch();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    let file_path = dir.join("plain-write");
    let mut file = File::create(&file_path).unwrap();
    let mut written = 0u64;
    group.bench_function("plain_write", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                if written >= RESET_BYTES {
                    drop(std::mem::replace(
                        &mut file,
                        File::create(dir.join("plain-write-next")).unwrap(),
                    ));
                    std::fs::rename(dir.join("plain-write-next"), &file_path).unwrap();
                    written = 0;
                }
                let n = (iters - done).min((RESET_BYTES - written).div_ceil(batch.len() as u64));
                let start = Instant::now();
                for _ in 0..n {
                    file.write_all(&batch).unwrap();
                }
                elapsed += start.elapsed();
                written += n * batch.len() as u64;
                done += n;
            }
            record(
                "append: plain write(2)",
                iters * batch.len() as u64,
                elapsed,
            );
            elapsed
        })
    });
    let log_dir = dir.join("append-0");
    let mut log = Some(open_log(&log_dir));
    group.bench_function("partition_log", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                if log.as_ref().unwrap().size_bytes() >= RESET_BYTES {
                    log.take().unwrap().delete().unwrap();
                    log = Some(open_log(&log_dir));
                }
                let l = log.as_mut().unwrap();
                let n = iters - done;
                let n = n.min((RESET_BYTES - l.size_bytes()).div_ceil(batch.len() as u64));
                let start = Instant::now();
                for _ in 0..n {
                    l.append(&batch, LeaderEpoch(0), 0).unwrap();
                }
                elapsed += start.elapsed();
                done += n;
            }
            record("append: partition log", iters * batch.len() as u64, elapsed);
            elapsed
        })
    });
    drop(log);
    group.finish();
}

fn bench_read(c: &mut Criterion, dir: &Path) {
    let batch = test_batch();
    let log_dir = dir.join("read-0");
    let mut log = open_log(&log_dir);
    let plain_path = dir.join("plain-read");
    let mut plain = File::create(&plain_path).unwrap();
    while log.size_bytes() < READ_BYTES {
        log.append(&batch, LeaderEpoch(0), 0).unwrap();
        plain.write_all(&batch).unwrap();
    }
    drop(plain);
    let end = log.log_end_offset();
    let mut group = c.benchmark_group("sequential_read");
    group.throughput(Throughput::Bytes(log.size_bytes()));
    group.sample_size(10);
    // Reads are views of the map: to compare like with like, the bytes are copied into a
    // buffer, as read(2) does (and as a socket write does with them).
    let mut copy = vec![0u8; 2 * READ_CHUNK];
    group.bench_function("partition_log", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut bytes = 0u64;
            for _ in 0..iters {
                let mut from = Offset(0);
                while from < end {
                    let r = log.read(from, READ_CHUNK, end).unwrap();
                    let n = r.records.len();
                    if copy.len() < n {
                        copy.resize(n, 0);
                    }
                    copy[..n].copy_from_slice(&r.records);
                    std::hint::black_box(&copy);
                    bytes += n as u64;
                    from = Offset(
                        from.0
                            + (r.records.len() / batch.len()) as i64 * i64::from(RECORDS_PER_BATCH),
                    );
                }
            }
            let elapsed = start.elapsed();
            record("read: partition log", bytes, elapsed);
            elapsed
        })
    });
    let mut buf = vec![0u8; READ_CHUNK];
    let mut file = File::open(&plain_path).unwrap();
    group.bench_function("plain_read", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut bytes = 0u64;
            for _ in 0..iters {
                file.rewind().unwrap();
                loop {
                    let n = file.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    bytes += n as u64;
                }
            }
            let elapsed = start.elapsed();
            record("read: plain read(2)", bytes, elapsed);
            elapsed
        })
    });
    group.finish();
    log.delete().unwrap();
}

/// Touches `bytes` of fresh page cache (written, then deleted) before measuring, so that
/// neither side pays for the first use of memory: on a VM whose guest memory is backed
/// lazily, whichever benchmark ran first otherwise paid for it and looked several times
/// slower.
fn prewarm(dir: &Path, bytes: usize) {
    let path = dir.join("prewarm");
    let mut f = File::create(&path).unwrap();
    let chunk = vec![1u8; 1 << 20];
    for _ in 0..bytes / chunk.len() {
        f.write_all(&chunk).unwrap();
    }
    drop(f);
    std::fs::remove_file(path).unwrap();
}

fn mb_per_s(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64().max(1e-9)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    prewarm(dir.path(), 2 << 30);
    bench_append(&mut c, dir.path());
    bench_read(&mut c, dir.path());
    c.final_summary();
    let r = RESULTS.lock().unwrap();
    println!(
        "\n== partition log (segment.bytes {}) vs plain file I/O (same directory, same run) ==",
        config().segment_bytes
    );
    for (name, (bytes, t)) in r.iter() {
        println!("{name:<26} {:>9.0} MB/s", mb_per_s(*bytes, *t));
    }
    for (what, log, plain) in [
        ("append", "append: partition log", "append: plain write(2)"),
        ("read", "read: partition log", "read: plain read(2)"),
    ] {
        if let (Some(l), Some(p)) = (r.get(log), r.get(plain)) {
            println!(
                "{what}: log / plain = {:.2}",
                mb_per_s(l.0, l.1) / mb_per_s(p.0, p.1)
            );
        }
    }
}
