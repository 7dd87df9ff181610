//! Settings of the group coordinator, with Kafka's names and defaults.

use thiserror::Error;

/// Group coordinator settings (Kafka: `group.*` and `offsets.*` broker configs).
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// Partitions of `__consumer_offsets` (`offsets.topic.num.partitions`).
    pub offsets_partitions: i32,
    /// Delay before the first rebalance of an empty group completes
    /// (`group.initial.rebalance.delay.ms`), so that members starting together land in one
    /// generation.
    pub initial_rebalance_delay_ms: i64,
    /// Smallest session timeout a member may ask for (`group.min.session.timeout.ms`).
    pub min_session_timeout_ms: i32,
    /// Largest session timeout a member may ask for (`group.max.session.timeout.ms`).
    pub max_session_timeout_ms: i32,
    /// Most members in one group (`group.max.size`).
    pub max_group_size: usize,
    /// Most requests of one group waiting for a rebalance or a write at once.
    pub max_pending_waiters_per_group: usize,
    /// How long the offsets of an empty group are kept (`offsets.retention.minutes`).
    pub offsets_retention_ms: i64,
    /// Largest metadata string of one committed offset (`offset.metadata.max.bytes`).
    pub max_offset_metadata_bytes: usize,
    /// How often the async wrapper calls `tick` (expiry of members, rebalance deadlines).
    pub tick_interval_ms: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            offsets_partitions: 50,
            initial_rebalance_delay_ms: 300,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_group_size: 1_000,
            max_pending_waiters_per_group: 2_048,
            offsets_retention_ms: 7 * 24 * 3_600 * 1_000,
            max_offset_metadata_bytes: 4_096,
            tick_interval_ms: 100,
        }
    }
}

/// A setting that does not fit with the others.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid group coordinator config: {0}")]
pub struct ConfigError(pub String);

impl GroupConfig {
    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.offsets_partitions <= 0 {
            return Err(ConfigError("offsets_partitions must be positive".into()));
        }
        if self.min_session_timeout_ms <= 0
            || self.min_session_timeout_ms > self.max_session_timeout_ms
        {
            return Err(ConfigError(format!(
                "session timeout range {}..={} is empty or not positive",
                self.min_session_timeout_ms, self.max_session_timeout_ms
            )));
        }
        if self.initial_rebalance_delay_ms < 0 {
            return Err(ConfigError("initial_rebalance_delay_ms is negative".into()));
        }
        if self.max_group_size == 0 || self.max_pending_waiters_per_group < self.max_group_size {
            return Err(ConfigError(
                "max_pending_waiters_per_group must be at least max_group_size (> 0)".into(),
            ));
        }
        if self.tick_interval_ms == 0
            || self.tick_interval_ms as i64 >= i64::from(self.min_session_timeout_ms)
        {
            return Err(ConfigError(
                "tick_interval_ms must be positive and well under min_session_timeout_ms".into(),
            ));
        }
        if self.offsets_retention_ms <= 0 {
            return Err(ConfigError("offsets_retention_ms must be positive".into()));
        }
        Ok(())
    }
}
