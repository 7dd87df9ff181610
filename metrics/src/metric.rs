//! The metric types, each a few atomics: [`Counter`] (only goes up), [`Gauge`] (set or
//! moved either way) and [`Histogram`] (fixed buckets in seconds, with sum and count).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Bucket upper bounds in seconds for request latencies: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Most buckets a histogram may have.
pub const MAX_BUCKETS: usize = 64;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Raises the gauge to `v` if it is lower (for "latest offset seen" values).
    pub fn set_max(&self, v: i64) {
        self.0.fetch_max(v, Ordering::Relaxed);
    }

    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Observations counted into fixed buckets, with their sum and count.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds in seconds, strictly increasing.
    bounds: Vec<f64>,
    /// Per-bucket (not cumulative) counts; the last one is the `+Inf` bucket.
    buckets: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

/// What a histogram holds at one moment, with cumulative bucket counts.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations <= bound)`; the last bound is `f64::INFINITY`.
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

/// Why a set of bucket bounds is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BucketError {
    #[error("a histogram needs between 1 and {MAX_BUCKETS} buckets")]
    Count,
    #[error("bucket bounds must be finite, positive and strictly increasing")]
    Order,
}

impl Histogram {
    /// A histogram with these upper bounds (seconds); `+Inf` is added.
    pub fn new(bounds: &[f64]) -> Result<Histogram, BucketError> {
        if bounds.is_empty() || bounds.len() > MAX_BUCKETS {
            return Err(BucketError::Count);
        }
        let ordered = bounds.iter().all(|b| b.is_finite() && *b > 0.0)
            && bounds.windows(2).all(|w| w[0] < w[1]);
        if !ordered {
            return Err(BucketError::Order);
        }
        Ok(Histogram {
            bounds: bounds.to_vec(),
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        })
    }

    /// A histogram with [`LATENCY_BUCKETS`].
    pub fn latency() -> Histogram {
        Histogram::new(LATENCY_BUCKETS).expect("LATENCY_BUCKETS are valid")
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let idx = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[idx].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The current state. Taken without a lock, so under concurrent observations the
    /// count may differ from the `+Inf` bucket by the few observations in progress; the
    /// `+Inf` bucket is reported as the count to keep the output consistent.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let count = self.count.load(Ordering::Relaxed);
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.bounds.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            buckets.push((*b, cumulative.min(count)));
        }
        buckets.push((f64::INFINITY, count));
        HistogramSnapshot {
            buckets,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges() {
        let c = Counter::default();
        c.inc();
        c.add(4);
        assert_eq!(c.get(), 5);
        let g = Gauge::default();
        g.set(7);
        g.add(-10);
        assert_eq!(g.get(), -3);
        g.set_max(2);
        g.set_max(1);
        assert_eq!(g.get(), 2);
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[0.001, 0.01, 0.1]).unwrap();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let s = h.snapshot();
        let counts: Vec<u64> = s.buckets.iter().map(|b| b.1).collect();
        assert_eq!(counts, vec![2, 2, 3, 4]);
        assert_eq!(s.count, 4);
        assert!(s.buckets[3].0.is_infinite());
        assert!((s.sum_seconds - 3.0515).abs() < 1e-9, "{}", s.sum_seconds);
    }

    #[test]
    fn bad_bounds_are_refused() {
        assert_eq!(Histogram::new(&[]).unwrap_err(), BucketError::Count);
        assert_eq!(Histogram::new(&[0.1, 0.1]).unwrap_err(), BucketError::Order);
        assert_eq!(Histogram::new(&[-1.0]).unwrap_err(), BucketError::Order);
        assert_eq!(
            Histogram::new(&[f64::INFINITY]).unwrap_err(),
            BucketError::Order
        );
    }
}
