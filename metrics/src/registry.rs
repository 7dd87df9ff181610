//! The metrics of one process: registered counters, gauges, histograms and families, and
//! collectors that compute values when scraped (e.g. under-replicated partitions from the
//! broker's current state). [`Registry::render`] produces the exposition text.

use crate::family::Family;
use crate::metric::{BucketError, Counter, Gauge, Histogram};
use crate::text::{format_value, Kind, Writer};
use std::sync::{Arc, Mutex};

type Collector = Box<dyn Fn(&mut Writer) + Send + Sync>;

#[derive(Debug)]
enum Metric {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
    Histogram(Arc<Histogram>),
    CounterFamily(Arc<Family<Counter>>),
    GaugeFamily(Arc<Family<Gauge>>),
    HistogramFamily(Arc<Family<Histogram>>),
}

#[derive(Debug)]
struct Entry {
    name: String,
    help: String,
    metric: Metric,
}

/// All metrics of a process.
#[derive(Default)]
pub struct Registry {
    entries: Mutex<Vec<Entry>>,
    collectors: Mutex<Vec<Collector>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    fn add(&self, name: &str, help: &str, metric: Metric) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Entry {
                name: name.to_string(),
                help: help.to_string(),
                metric,
            });
    }

    pub fn counter(&self, name: &str, help: &str) -> Arc<Counter> {
        let c = Arc::new(Counter::default());
        self.add(name, help, Metric::Counter(c.clone()));
        c
    }

    pub fn gauge(&self, name: &str, help: &str) -> Arc<Gauge> {
        let g = Arc::new(Gauge::default());
        self.add(name, help, Metric::Gauge(g.clone()));
        g
    }

    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        bounds: &[f64],
    ) -> Result<Arc<Histogram>, BucketError> {
        let h = Arc::new(Histogram::new(bounds)?);
        self.add(name, help, Metric::Histogram(h.clone()));
        Ok(h)
    }

    pub fn counter_family(
        &self,
        name: &str,
        help: &str,
        label: &'static str,
        max_values: usize,
    ) -> Arc<Family<Counter>> {
        let f = Arc::new(Family::new(label, max_values, Counter::default));
        self.add(name, help, Metric::CounterFamily(f.clone()));
        f
    }

    pub fn gauge_family(
        &self,
        name: &str,
        help: &str,
        label: &'static str,
        max_values: usize,
    ) -> Arc<Family<Gauge>> {
        let f = Arc::new(Family::new(label, max_values, Gauge::default));
        self.add(name, help, Metric::GaugeFamily(f.clone()));
        f
    }

    pub fn histogram_family(
        &self,
        name: &str,
        help: &str,
        label: &'static str,
        max_values: usize,
        bounds: &'static [f64],
    ) -> Result<Arc<Family<Histogram>>, BucketError> {
        Histogram::new(bounds)?;
        let f = Arc::new(Family::new(label, max_values, move || {
            Histogram::new(bounds).expect("bounds checked at registration")
        }));
        self.add(name, help, Metric::HistogramFamily(f.clone()));
        Ok(f)
    }

    /// Adds a function that writes families computed at scrape time.
    pub fn collector(&self, f: impl Fn(&mut Writer) + Send + Sync + 'static) {
        self.collectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(f));
    }

    /// Everything in the text exposition format.
    pub fn render(&self) -> String {
        let mut w = Writer::new();
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            for e in entries.iter() {
                render_entry(&mut w, e);
            }
        }
        let collectors = self.collectors.lock().unwrap_or_else(|p| p.into_inner());
        for c in collectors.iter() {
            c(&mut w);
        }
        w.finish()
    }
}

fn render_entry(w: &mut Writer, e: &Entry) {
    let (name, help) = (e.name.as_str(), e.help.as_str());
    match &e.metric {
        Metric::Counter(c) => {
            w.family(name, help, Kind::Counter);
            w.sample(name, &[], c.get() as f64);
        }
        Metric::Gauge(g) => {
            w.family(name, help, Kind::Gauge);
            w.sample(name, &[], g.get() as f64);
        }
        Metric::Histogram(h) => {
            w.family(name, help, Kind::Histogram);
            render_histogram(w, name, None, h);
        }
        Metric::CounterFamily(f) => {
            w.family(name, help, Kind::Counter);
            for (v, c) in f.members() {
                w.sample(name, &[(f.label(), &v)], c.get() as f64);
            }
        }
        Metric::GaugeFamily(f) => {
            w.family(name, help, Kind::Gauge);
            for (v, g) in f.members() {
                w.sample(name, &[(f.label(), &v)], g.get() as f64);
            }
        }
        Metric::HistogramFamily(f) => {
            w.family(name, help, Kind::Histogram);
            for (v, h) in f.members() {
                render_histogram(w, name, Some((f.label(), &v)), &h);
            }
        }
    }
}

fn render_histogram(w: &mut Writer, name: &str, label: Option<(&str, &str)>, h: &Histogram) {
    let s = h.snapshot();
    let bucket = format!("{name}_bucket");
    for (bound, count) in &s.buckets {
        let le = format_value(*bound);
        let mut labels: Vec<(&str, &str)> = label.into_iter().collect();
        labels.push(("le", &le));
        w.sample(&bucket, &labels, *count as f64);
    }
    let labels: Vec<(&str, &str)> = label.into_iter().collect();
    w.sample(&format!("{name}_sum"), &labels, s.sum_seconds);
    w.sample(&format!("{name}_count"), &labels, s.count as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_every_kind() {
        let r = Registry::new();
        r.counter("c_total", "A counter.").add(3);
        r.gauge("g", "A gauge.").set(-2);
        let h = r
            .histogram("h_seconds", "A histogram.", &[0.1, 1.0])
            .unwrap();
        h.observe(Duration::from_millis(500));
        let f = r.counter_family("req_total", "Requests.", "api", 8);
        f.get("Fetch").inc();
        let hf = r
            .histogram_family("lat_seconds", "Latency.", "api", 8, &[0.5])
            .unwrap();
        hf.get("Produce").observe(Duration::from_millis(100));
        r.collector(|w| w.gauge("computed", "At scrape time.", 42.0));
        let text = r.render();
        let expected = "\
# HELP gregor_c_total A counter.
# TYPE gregor_c_total counter
gregor_c_total 3
# HELP gregor_g A gauge.
# TYPE gregor_g gauge
gregor_g -2
# HELP gregor_h_seconds A histogram.
# TYPE gregor_h_seconds histogram
gregor_h_seconds_bucket{le=\"0.1\"} 0
gregor_h_seconds_bucket{le=\"1\"} 1
gregor_h_seconds_bucket{le=\"+Inf\"} 1
gregor_h_seconds_sum 0.5
gregor_h_seconds_count 1
# HELP gregor_req_total Requests.
# TYPE gregor_req_total counter
gregor_req_total{api=\"Fetch\"} 1
# HELP gregor_lat_seconds Latency.
# TYPE gregor_lat_seconds histogram
gregor_lat_seconds_bucket{api=\"Produce\",le=\"0.5\"} 1
gregor_lat_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 1
gregor_lat_seconds_sum{api=\"Produce\"} 0.1
gregor_lat_seconds_count{api=\"Produce\"} 1
# HELP gregor_computed At scrape time.
# TYPE gregor_computed gauge
gregor_computed 42
";
        assert_eq!(text, expected);
    }
}
