//! `gregor-metrics`: a small metrics registry on atomics and a Prometheus endpoint.
//!
//! - [`metric`]: [`Counter`], [`Gauge`] and [`Histogram`] (fixed buckets, in seconds).
//! - [`family`]: labelled families (`requests_total{api="Produce"}`) with a bounded number
//!   of label values.
//! - [`registry`]: the set of metrics of one process, plus collectors that compute gauges
//!   at scrape time; [`Registry::render`] writes the text exposition format 0.0.4.
//! - [`text`]: the exposition format's writer (HELP/TYPE lines, escaping, numbers).
//! - [`http`]: a tiny HTTP/1.1 server answering `GET /metrics`.
//!
//! Every metric name is prefixed with [`PREFIX`] when registered.

pub mod family;
pub mod http;
pub mod metric;
pub mod registry;
pub mod text;

pub use family::Family;
pub use metric::{Counter, Gauge, Histogram, LATENCY_BUCKETS};
pub use registry::Registry;
pub use text::{Kind, Writer};

/// The prefix of every metric name.
pub const PREFIX: &str = "gregor_";
