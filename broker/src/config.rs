//! Broker configuration: listeners, advertised addresses and limits, checked together.

use protocol::control::Endpoint;
use protocol::ids::BrokerId;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One listener: a name and a bind address, with the address clients are told to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub bind: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: u16,
}

/// Everything a broker needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    pub node_id: BrokerId,
    pub listeners: Vec<Listener>,
    pub inter_broker_listener: String,
    /// Control-protocol addresses of the controllers (`host:port`).
    pub controllers: Vec<String>,
    pub data_dir: PathBuf,
    pub rack: Option<String>,
    pub cluster_id: String,
    pub heartbeat_interval: Duration,
    pub auto_create_topics: bool,
    pub max_connections: usize,
    pub max_inflight_requests: usize,
    pub max_frame_bytes: usize,
    /// How long a follower may lag before it leaves the ISR. Kafka's default is 30 s; Gregor
    /// uses 2 s so that failover tests finish quickly.
    pub replica_lag_time_max: Duration,
    /// The longest an admin request waits for its change to reach this broker's image.
    pub metadata_max_wait: Duration,
    /// Where `GET /metrics` is served (Prometheus text format); `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Partitions of `__consumer_offsets` when this broker creates it (Kafka:
    /// `offsets.topic.num.partitions`, 50). Must be the same on every broker.
    pub offsets_topic_partitions: i32,
    /// A led `__consumer_offsets` partition is compacted once it holds this many records
    /// since its log start and its last compaction.
    pub offsets_compact_after_records: i64,
}

/// A configuration problem, naming the flag.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--{flag}: {message}")]
    Invalid { flag: &'static str, message: String },
}

fn invalid(flag: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        message: message.into(),
    }
}

/// Parses `NAME://host:port,...` into (name, host, port) triples.
pub fn parse_listener_list(
    flag: &'static str,
    value: &str,
) -> Result<Vec<(String, String, u16)>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, addr) = item
            .split_once("://")
            .ok_or_else(|| invalid(flag, format!("`{item}` is not NAME://host:port")))?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                flag,
                format!("`{name}` is not a valid listener name"),
            ));
        }
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| invalid(flag, format!("`{addr}` has no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| invalid(flag, format!("`{port}` is not a port number")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid(flag, format!("`{addr}` has no host")));
        }
        if out
            .iter()
            .any(|(n, _, _): &(String, String, u16)| n == name)
        {
            return Err(invalid(flag, format!("listener `{name}` is given twice")));
        }
        out.push((name.to_string(), host.to_string(), port));
    }
    if out.is_empty() {
        return Err(invalid(flag, "at least one listener is required"));
    }
    Ok(out)
}

/// Builds the listeners from `--listeners` and `--advertised-listeners`.
pub fn build_listeners(
    listeners: &str,
    advertised: Option<&str>,
) -> Result<Vec<Listener>, ConfigError> {
    let binds = parse_listener_list("listeners", listeners)?;
    let adv = match advertised {
        Some(a) if !a.trim().is_empty() => parse_listener_list("advertised-listeners", a)?,
        _ => Vec::new(),
    };
    for (name, _, _) in &adv {
        if !binds.iter().any(|(n, _, _)| n == name) {
            return Err(invalid(
                "advertised-listeners",
                format!("`{name}` is not in --listeners"),
            ));
        }
    }
    let mut out = Vec::new();
    for (name, host, port) in binds {
        let bind: SocketAddr = format!("{}:{port}", bracket(&host)).parse().map_err(|_| {
            invalid(
                "listeners",
                format!("`{host}` must be an IP address to bind to"),
            )
        })?;
        let (advertised_host, advertised_port) = match adv.iter().find(|(n, _, _)| *n == name) {
            Some((_, h, p)) => (h.clone(), *p),
            None if bind.ip().is_unspecified() => {
                return Err(invalid(
                    "advertised-listeners",
                    format!("listener `{name}` binds {bind}; give an address clients can reach"),
                ))
            }
            None => (host.clone(), port),
        };
        out.push(Listener {
            name,
            bind,
            advertised_host,
            advertised_port,
        });
    }
    Ok(out)
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

impl Config {
    /// Checks settings against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id.0 < 0 {
            return Err(invalid("node-id", "must be >= 0"));
        }
        if self.listeners.is_empty() {
            return Err(invalid("listeners", "at least one listener is required"));
        }
        if !self
            .listeners
            .iter()
            .any(|l| l.name == self.inter_broker_listener)
        {
            return Err(invalid(
                "inter-broker-listener",
                format!("`{}` is not one of --listeners", self.inter_broker_listener),
            ));
        }
        if self.controllers.is_empty() {
            return Err(invalid(
                "controllers",
                "at least one controller host:port is required",
            ));
        }
        if self.cluster_id.is_empty() {
            return Err(invalid("cluster-id", "must not be empty"));
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval > Duration::from_secs(5) {
            return Err(invalid(
                "heartbeat-interval-ms",
                "must be between 1 and 5000",
            ));
        }
        if self.max_connections == 0 {
            return Err(invalid("max-connections", "must be at least 1"));
        }
        if self.max_inflight_requests == 0 {
            return Err(invalid("max-inflight-requests", "must be at least 1"));
        }
        if self.max_frame_bytes < 1024 {
            return Err(invalid("max-frame-bytes", "must be at least 1024"));
        }
        if !(1..=1000).contains(&self.offsets_topic_partitions) {
            return Err(invalid(
                "offsets-topic-partitions",
                "must be between 1 and 1000",
            ));
        }
        if self.offsets_compact_after_records < 100 {
            return Err(invalid(
                "offsets-compact-after-records",
                "must be at least 100",
            ));
        }
        if self.replica_lag_time_max <= self.heartbeat_interval {
            return Err(invalid(
                "replica-lag-time-max-ms",
                "must exceed the heartbeat interval",
            ));
        }
        Ok(())
    }

    /// The endpoints registered with the controllers.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.listeners
            .iter()
            .map(|l| Endpoint {
                listener: l.name.clone(),
                host: l.advertised_host.clone(),
                port: l.advertised_port,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_with_advertised_addresses() {
        let l = build_listeners(
            "INTERNAL://0.0.0.0:9092,EXTERNAL://127.0.0.1:19092",
            Some("INTERNAL://broker1:9092"),
        )
        .unwrap();
        assert_eq!(l[0].advertised_host, "broker1");
        assert_eq!(l[1].advertised_host, "127.0.0.1");
        assert_eq!(l[1].advertised_port, 19092);
    }

    #[test]
    fn unspecified_bind_needs_an_advertised_address() {
        let e = build_listeners("INTERNAL://0.0.0.0:9092", None).unwrap_err();
        assert!(e.to_string().starts_with("--advertised-listeners"), "{e}");
        assert!(build_listeners("INTERNAL://nohost", None).is_err());
        assert!(build_listeners("9092", None).is_err());
        assert!(build_listeners("A://127.0.0.1:1,A://127.0.0.1:2", None).is_err());
        assert!(build_listeners("A://127.0.0.1:1", Some("B://h:1")).is_err());
    }
}
