//! Throughput and latency bookkeeping for the perf commands.

use std::time::Duration;

/// Latency samples, each standing for `count` records (a batch shares one latency).
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    /// (latency in microseconds, records)
    samples: Vec<(u64, u64)>,
}

impl Latencies {
    pub fn record(&mut self, latency: Duration, records: u64) {
        self.samples.push((latency.as_micros() as u64, records));
    }

    pub fn records(&self) -> u64 {
        self.samples.iter().map(|s| s.1).sum()
    }

    /// Mean latency in ms, weighted by records.
    pub fn avg_ms(&self) -> f64 {
        let n = self.records();
        if n == 0 {
            return 0.0;
        }
        let sum: f64 = self
            .samples
            .iter()
            .map(|(us, c)| *us as f64 * *c as f64)
            .sum();
        sum / n as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.samples.iter().map(|s| s.0).max().unwrap_or(0) as f64 / 1000.0
    }

    /// The latency (ms) at or below which `q` (0..=1) of the records fall.
    pub fn percentiles_ms(&self, qs: &[f64]) -> Vec<f64> {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let total = self.records();
        qs.iter()
            .map(|q| {
                if total == 0 {
                    return 0.0;
                }
                let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
                let mut seen = 0;
                for (us, c) in &sorted {
                    seen += c;
                    if seen >= rank {
                        return *us as f64 / 1000.0;
                    }
                }
                sorted.last().map(|s| s.0 as f64 / 1000.0).unwrap_or(0.0)
            })
            .collect()
    }
}

/// Records per second and MB per second.
pub fn rates(records: u64, bytes: u64, elapsed: Duration) -> (f64, f64) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    (
        records as f64 / secs,
        bytes as f64 / secs / (1024.0 * 1024.0),
    )
}

/// kafka-producer-perf-test's progress line.
pub fn progress_line(records: u64, bytes: u64, elapsed: Duration, lat: &Latencies) -> String {
    let (rps, mbps) = rates(records, bytes, elapsed);
    format!(
        "{records} records sent, {rps:.1} records/sec ({mbps:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
        lat.avg_ms(),
        lat.max_ms()
    )
}

/// kafka-producer-perf-test's final line.
pub fn summary_line(
    verb: &str,
    records: u64,
    bytes: u64,
    elapsed: Duration,
    lat: &Latencies,
) -> String {
    let (rps, mbps) = rates(records, bytes, elapsed);
    let p = lat.percentiles_ms(&[0.5, 0.95, 0.99, 0.999]);
    format!(
        "{records} records {verb}, {rps:.1} records/sec ({mbps:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, \
         {:.1} ms 50th, {:.1} ms 95th, {:.1} ms 99th, {:.1} ms 99.9th.",
        lat.avg_ms(),
        lat.max_ms(),
        p[0],
        p[1],
        p[2],
        p[3]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_weigh_batches_by_records() {
        let mut l = Latencies::default();
        for ms in 1..=100u64 {
            l.record(Duration::from_millis(ms), 1);
        }
        assert_eq!(
            l.percentiles_ms(&[0.5, 0.95, 0.99, 0.999]),
            vec![50.0, 95.0, 99.0, 100.0]
        );
        let mut w = Latencies::default();
        w.record(Duration::from_millis(1), 99);
        w.record(Duration::from_millis(500), 1);
        assert_eq!(w.percentiles_ms(&[0.5, 0.99, 0.999]), vec![1.0, 1.0, 500.0]);
        assert!((w.avg_ms() - 5.99).abs() < 1e-9);
        assert_eq!(w.max_ms(), 500.0);
        assert_eq!(Latencies::default().percentiles_ms(&[0.5]), vec![0.0]);
    }

    #[test]
    fn lines_read_like_kafkas_tool() {
        let mut l = Latencies::default();
        l.record(Duration::from_millis(2), 1000);
        let s = summary_line("sent", 1000, 1024 * 1024, Duration::from_secs(2), &l);
        assert_eq!(
            s,
            "1000 records sent, 500.0 records/sec (0.50 MB/sec), 2.00 ms avg latency, 2.00 ms max latency, \
             2.0 ms 50th, 2.0 ms 95th, 2.0 ms 99th, 2.0 ms 99.9th."
        );
        assert!(progress_line(10, 0, Duration::from_secs(5), &l)
            .starts_with("10 records sent, 2.0 records/sec"));
    }
}
