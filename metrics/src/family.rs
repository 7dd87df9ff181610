//! Labelled families: one metric per value of one label (`requests_total{api="Produce"}`).
//!
//! The number of label values is bounded; once a family is full, new values share the
//! metric labelled [`OVERFLOW`], so a stream of odd inputs cannot grow memory or the scrape.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The label value that collects everything past a family's limit.
pub const OVERFLOW: &str = "other";

/// One metric per label value, created on first use.
pub struct Family<M> {
    label: &'static str,
    max_values: usize,
    make: Box<dyn Fn() -> M + Send + Sync>,
    members: Mutex<BTreeMap<String, Arc<M>>>,
}

impl<M> std::fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("label", &self.label)
            .field("max_values", &self.max_values)
            .finish_non_exhaustive()
    }
}

impl<M> Family<M> {
    /// A family keyed by `label`, holding at most `max_values` values plus [`OVERFLOW`].
    pub fn new(
        label: &'static str,
        max_values: usize,
        make: impl Fn() -> M + Send + Sync + 'static,
    ) -> Family<M> {
        Family {
            label,
            max_values,
            make: Box::new(make),
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// The label's name.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// The metric for `value` (the [`OVERFLOW`] one if the family is full).
    pub fn get(&self, value: &str) -> Arc<M> {
        let mut m = self.members.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(x) = m.get(value) {
            return x.clone();
        }
        let key = if m.len() < self.max_values {
            value
        } else {
            OVERFLOW
        };
        m.entry(key.to_string())
            .or_insert_with(|| Arc::new((self.make)()))
            .clone()
    }

    /// Every label value with its metric, sorted by value.
    pub fn members(&self) -> Vec<(String, Arc<M>)> {
        let m = self.members.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Counter;

    #[test]
    fn values_past_the_limit_share_the_overflow_metric() {
        let f = Family::new("api", 2, Counter::default);
        f.get("a").inc();
        f.get("a").inc();
        f.get("b").inc();
        f.get("c").inc();
        f.get("d").add(5);
        let got: Vec<(String, u64)> = f.members().into_iter().map(|(k, v)| (k, v.get())).collect();
        assert_eq!(
            got,
            vec![("a".into(), 2), ("b".into(), 1), (OVERFLOW.into(), 6)]
        );
    }
}
