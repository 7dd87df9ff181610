//! The broker's Prometheus metrics (see docs/operations.md, "Metrics").
//!
//! Counted as things happen: requests and their latency per API (connection.rs), bytes of
//! request and response frames, ISR shrinks and expands of partitions this broker leads
//! (seen as the metadata feed delivers them), and the controller's committed metadata
//! offset as last seen. Computed when scraped: partitions held, led and under-replicated,
//! the applied metadata offset and its lag, and whether this broker is fenced.

use crate::broker::Broker;
use ::metrics::{Counter, Family, Gauge, Histogram, Registry, LATENCY_BUCKETS};
use kafka_protocol::messages::ApiKey;
use protocol::control::MetadataImage;
use protocol::ids::BrokerId;
use std::sync::{Arc, OnceLock, Weak};

/// API keys with their own slot; others count as `unknown`.
const API_SLOTS: usize = 128;
/// Most label values per family (the API names Kafka has, with room to spare).
const MAX_APIS: usize = 100;

/// The metrics of one API.
#[derive(Debug)]
pub struct ApiMetrics {
    pub requests: Arc<Counter>,
    pub latency: Arc<Histogram>,
}

/// Every metric a broker keeps.
#[derive(Debug)]
pub struct BrokerMetrics {
    pub registry: Arc<Registry>,
    requests: Arc<Family<Counter>>,
    latency: Arc<Family<Histogram>>,
    apis: Vec<OnceLock<ApiMetrics>>,
    unknown_api: OnceLock<ApiMetrics>,
    /// Request frames received, size prefix included.
    pub bytes_in: Arc<Counter>,
    /// Response frames sent, size prefix included.
    pub bytes_out: Arc<Counter>,
    pub isr_shrinks: Arc<Counter>,
    pub isr_expands: Arc<Counter>,
    /// The highest committed metadata offset a controller reported.
    pub metadata_committed: Arc<Gauge>,
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl BrokerMetrics {
    pub fn new() -> BrokerMetrics {
        let registry = Arc::new(Registry::new());
        let requests = registry.counter_family(
            "broker_requests_total",
            "Kafka requests received, by API.",
            "api",
            MAX_APIS,
        );
        let latency = registry
            .histogram_family(
                "broker_request_latency_seconds",
                "Time from a request frame being taken off the socket to its response being \
                 ready (requests answered without closing the connection), by API.",
                "api",
                MAX_APIS,
                LATENCY_BUCKETS,
            )
            .expect("LATENCY_BUCKETS are valid");
        BrokerMetrics {
            bytes_in: registry.counter(
                "broker_bytes_in_total",
                "Bytes of Kafka request frames received (size prefix included).",
            ),
            bytes_out: registry.counter(
                "broker_bytes_out_total",
                "Bytes of Kafka response frames produced (size prefix included).",
            ),
            isr_shrinks: registry.counter(
                "broker_isr_shrinks_total",
                "Committed ISR shrinks of partitions this broker leads (its own AlterPartition \
                 or the controller's, e.g. when it fences a broker).",
            ),
            isr_expands: registry.counter(
                "broker_isr_expands_total",
                "Committed ISR expansions of partitions this broker leads.",
            ),
            metadata_committed: registry.gauge(
                "broker_metadata_committed_offset",
                "The highest committed metadata offset a controller reported to this broker.",
            ),
            apis: (0..API_SLOTS).map(|_| OnceLock::new()).collect(),
            unknown_api: OnceLock::new(),
            requests,
            latency,
            registry,
        }
    }

    /// The metrics of the API with this key (created on first use).
    pub fn api(&self, key: i16) -> &ApiMetrics {
        let named = ApiKey::try_from(key).ok();
        let slot = match (named, usize::try_from(key)) {
            (Some(_), Ok(i)) if i < API_SLOTS => &self.apis[i],
            _ => &self.unknown_api,
        };
        slot.get_or_init(|| {
            let name = named.map_or_else(|| "unknown".to_string(), |k| format!("{k:?}"));
            ApiMetrics {
                requests: self.requests.get(&name),
                latency: self.latency.get(&name),
            }
        })
    }

    /// Counts the ISR changes between two images of partitions `me` leads in `new`.
    pub fn count_isr_changes(&self, me: BrokerId, old: &MetadataImage, new: &MetadataImage) {
        for (topic_id, topic) in &new.topics {
            for (index, state) in &topic.partitions {
                if state.leader != Some(me) {
                    continue;
                }
                let Some(before) = old.partition(*topic_id, *index) else {
                    continue;
                };
                match state.isr.len().cmp(&before.isr.len()) {
                    std::cmp::Ordering::Less => self.isr_shrinks.inc(),
                    std::cmp::Ordering::Greater => self.isr_expands.inc(),
                    std::cmp::Ordering::Equal => {}
                }
            }
        }
    }
}

/// Registers the gauges computed at scrape time from the broker's state.
pub fn install_collector(broker: &Arc<Broker>) {
    let weak: Weak<Broker> = Arc::downgrade(broker);
    broker.metrics.registry.collector(move |w| {
        let Some(b) = weak.upgrade() else {
            return;
        };
        let me = b.config.node_id;
        let image = b.image();
        let (mut led, mut under) = (0u64, 0u64);
        for topic in image.topics.values() {
            for p in topic.partitions.values() {
                if p.leader == Some(me) {
                    led += 1;
                    if p.isr.len() < p.replicas.len() {
                        under += 1;
                    }
                }
            }
        }
        w.gauge(
            "broker_partitions",
            "Partition replicas this broker holds.",
            b.partitions.all().len() as f64,
        );
        w.gauge(
            "broker_leader_partitions",
            "Partitions this broker leads.",
            led as f64,
        );
        w.gauge(
            "broker_under_replicated_partitions",
            "Partitions this broker leads whose ISR is smaller than their replica set.",
            under as f64,
        );
        let applied = image.offset.0 as i64;
        w.gauge(
            "broker_metadata_offset",
            "The metadata offset this broker has applied.",
            applied as f64,
        );
        let lag = (b.metrics.metadata_committed.get() - applied).max(0);
        w.gauge(
            "broker_metadata_lag",
            "Committed metadata offset last reported by a controller minus the applied one.",
            lag as f64,
        );
        let fenced = b.session.borrow().fenced;
        w.gauge(
            "broker_fenced",
            "1 while this broker is fenced (or not yet registered), else 0.",
            if fenced { 1.0 } else { 0.0 },
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::control::{PartitionState, TopicImage};
    use protocol::ids::{LeaderEpoch, PartitionEpoch, PartitionIndex, TopicId};

    fn image(isr: &[i32], leader: i32) -> MetadataImage {
        let mut img = MetadataImage::new("c");
        let id = TopicId(uuid::Uuid::nil());
        let state = PartitionState {
            topic_id: id,
            partition: PartitionIndex(0),
            replicas: vec![BrokerId(1), BrokerId(2), BrokerId(3)],
            isr: isr.iter().map(|b| BrokerId(*b)).collect(),
            leader: Some(BrokerId(leader)),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: PartitionEpoch(0),
        };
        img.topics.insert(
            id,
            TopicImage {
                id,
                name: "t".into(),
                partitions: [(PartitionIndex(0), state)].into(),
                configs: Default::default(),
            },
        );
        img
    }

    #[test]
    fn isr_changes_count_only_on_the_leader() {
        let m = BrokerMetrics::new();
        m.count_isr_changes(BrokerId(1), &image(&[1, 2, 3], 1), &image(&[1, 2], 1));
        m.count_isr_changes(BrokerId(2), &image(&[1, 2, 3], 1), &image(&[1, 2], 1));
        m.count_isr_changes(BrokerId(1), &image(&[1, 2], 1), &image(&[1, 2, 3], 1));
        m.count_isr_changes(BrokerId(1), &MetadataImage::new("c"), &image(&[1], 1));
        assert_eq!((m.isr_shrinks.get(), m.isr_expands.get()), (1, 1));
    }

    #[test]
    fn apis_are_labelled_by_name() {
        let m = BrokerMetrics::new();
        m.api(ApiKey::Produce as i16).requests.inc();
        m.api(ApiKey::Produce as i16).requests.inc();
        m.api(-5).requests.inc();
        m.api(30_000).requests.inc();
        let text = m.registry.render();
        assert!(
            text.contains("gregor_broker_requests_total{api=\"Produce\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("gregor_broker_requests_total{api=\"unknown\"} 2\n"),
            "{text}"
        );
    }
}
