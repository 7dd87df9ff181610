//! The Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` once per family,
//! then `name{label="value",...} number` lines. Names get [`crate::PREFIX`]; characters a
//! name may not hold become `_`, and label values and help texts are escaped.

use crate::PREFIX;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The `Content-Type` of the rendered text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's type, as `# TYPE` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Accumulates the text of one scrape.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
    declared: BTreeSet<String>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Declares a family (`# HELP`, `# TYPE`); a second declaration of a name is ignored.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let full = full_name(name);
        if !self.declared.insert(full.clone()) {
            return;
        }
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {full} {help}");
        let _ = writeln!(self.out, "# TYPE {full} {}", kind.as_str());
    }

    /// One sample line. `name` may carry a suffix of its family (`_bucket`, `_sum`).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(&full_name(name));
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(&sanitize(k, false));
                self.out.push_str("=\"");
                escape_label_value(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.out.push('\n');
    }

    /// Declares a gauge family and writes its one unlabelled sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, Kind::Gauge);
        self.sample(name, &[], value);
    }

    /// The text so far.
    pub fn finish(self) -> String {
        self.out
    }
}

fn full_name(name: &str) -> String {
    let name = sanitize(name, true);
    if name.starts_with(PREFIX) {
        name
    } else {
        format!("{PREFIX}{name}")
    }
}

/// Replaces what a metric name (`colon`: colons allowed) or label name may not hold.
fn sanitize(name: &str, colon: bool) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A number as the format writes it: `+Inf`, `-Inf`, `NaN`, else the shortest form.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_declared_once_and_values_escaped() {
        let mut w = Writer::new();
        w.family("x_total", "Things\nseen", Kind::Counter);
        w.sample("x_total", &[("api", "a\"b\\c\nd")], 3.0);
        w.family("x_total", "again", Kind::Counter);
        w.sample("x_total", &[("api", "b"), ("bad-name", "v")], 0.5);
        w.gauge("gregor_up", "Up.", 1.0);
        assert_eq!(
            w.finish(),
            "# HELP gregor_x_total Things\\nseen\n\
             # TYPE gregor_x_total counter\n\
             gregor_x_total{api=\"a\\\"b\\\\c\\nd\"} 3\n\
             gregor_x_total{api=\"b\",bad_name=\"v\"} 0.5\n\
             # HELP gregor_up Up.\n\
             # TYPE gregor_up gauge\n\
             gregor_up 1\n"
        );
    }

    #[test]
    fn special_values_and_names() {
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(0.0005), "0.0005");
        assert_eq!(format_value(12345678.0), "12345678");
        assert_eq!(full_name("9 lives"), "gregor__9_lives");
    }
}
