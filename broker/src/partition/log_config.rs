//! Topic configs (as stored in the metadata image) mapped to the log's settings and the
//! broker-side limits, with Kafka's defaults for every key the broker knows.

use protocol::control::TopicConfigs;
use storage::LogConfig;

/// Kafka's default `max.message.bytes`: 1 MiB plus the record batch overhead.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;

/// Every topic config the broker describes, with its default value.
pub const TOPIC_CONFIG_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.type", "producer"),
    ("flush.messages", "9223372036854775807"),
    ("flush.ms", "9223372036854775807"),
    ("index.interval.bytes", "4096"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.type", "CreateTime"),
    ("min.insync.replicas", "1"),
    ("preallocate", "false"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
    ("segment.ms", "604800000"),
    ("unclean.leader.election.enable", "false"),
];

/// The effective value of `key` for a topic with `configs`.
pub fn effective<'a>(configs: &'a TopicConfigs, key: &str) -> Option<&'a str> {
    configs.get(key).map(String::as_str).or_else(|| {
        TOPIC_CONFIG_DEFAULTS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    })
}

fn num<T: std::str::FromStr>(configs: &TopicConfigs, key: &str) -> Option<T> {
    configs.get(key).and_then(|v| v.trim().parse().ok())
}

/// The log settings for a topic. Unparseable values keep the default (the controller
/// validates configs before committing them).
pub fn log_config(configs: &TopicConfigs) -> LogConfig {
    let mut c = LogConfig::default();
    if let Some(v) = num::<u64>(configs, "segment.bytes") {
        c.segment_bytes = v;
    }
    if let Some(v) = num::<i64>(configs, "segment.ms") {
        c.segment_ms = u64::try_from(v).ok().filter(|v| *v > 0);
    }
    if let Some(v) = num::<u32>(configs, "index.interval.bytes") {
        c.index_interval_bytes = v;
    }
    if let Some(v) = num::<i64>(configs, "retention.ms") {
        c.retention_ms = (v >= 0).then_some(v);
    }
    if let Some(v) = num::<i64>(configs, "retention.bytes") {
        c.retention_bytes = u64::try_from(v).ok();
    }
    if let Some(v) = num::<i64>(configs, "flush.messages") {
        c.flush_messages = u64::try_from(v)
            .ok()
            .filter(|v| *v > 0 && *v < i64::MAX as u64);
    }
    if let Some(v) = num::<i64>(configs, "flush.ms") {
        c.flush_ms = u64::try_from(v).ok().filter(|v| *v < i64::MAX as u64);
    }
    if let Some(v) = configs.get("preallocate") {
        c.preallocate = v.trim().eq_ignore_ascii_case("true");
    }
    if c.validate().is_err() {
        return LogConfig::default();
    }
    c
}

/// The largest record batch a producer may send to this topic.
pub fn max_message_bytes(configs: &TopicConfigs) -> usize {
    num::<usize>(configs, "max.message.bytes").unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
}

/// `min.insync.replicas` (used by issue 5's acks=all checks).
pub fn min_insync_replicas(configs: &TopicConfigs) -> usize {
    num::<usize>(configs, "min.insync.replicas")
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_map_onto_the_log() {
        let mut t = TopicConfigs::new();
        t.insert("retention.ms".into(), "-1".into());
        t.insert("segment.bytes".into(), "1048576".into());
        t.insert("retention.bytes".into(), "5000000".into());
        let c = log_config(&t);
        assert_eq!(c.retention_ms, None);
        assert_eq!(c.segment_bytes, 1 << 20);
        assert_eq!(c.retention_bytes, Some(5_000_000));
        assert!(!c.preallocate);
        assert_eq!(effective(&t, "cleanup.policy"), Some("delete"));
        t.insert("preallocate".into(), "TRUE".into());
        assert!(log_config(&t).preallocate);
        assert_eq!(max_message_bytes(&t), DEFAULT_MAX_MESSAGE_BYTES);
    }

    #[test]
    fn invalid_values_fall_back_to_defaults() {
        let mut t = TopicConfigs::new();
        t.insert("segment.bytes".into(), "3".into());
        assert_eq!(log_config(&t), LogConfig::default());
    }
}
