//! Controller settings: command-line flags (each also read from `GREGOR_<NAME>`) and their
//! cross-checks.

use std::path::PathBuf;
use std::time::Duration;

/// One voter of the static quorum: `id@host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    pub id: u64,
    /// The voter's control-protocol address (Raft RPCs and broker traffic).
    pub addr: String,
}

/// Parses `1@host:port,2@host:port,...`.
pub fn parse_voters(s: &str) -> Result<Vec<Voter>, String> {
    let mut out: Vec<Voter> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('@')
            .ok_or_else(|| format!("voter `{part}` is not id@host:port"))?;
        let id: u64 = id
            .parse()
            .map_err(|_| format!("voter id `{id}` is not a number"))?;
        if addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return Err(format!("voter address `{addr}` is not host:port"));
        }
        if out.iter().any(|v| v.id == id) {
            return Err(format!("voter id {id} appears twice"));
        }
        out.push(Voter {
            id,
            addr: addr.to_string(),
        });
    }
    if out.is_empty() {
        return Err("no voters given".into());
    }
    Ok(out)
}

/// Settings of one controller.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// This controller's node id (one of the voters).
    #[arg(long, env = "GREGOR_NODE_ID")]
    pub node_id: u64,
    /// Address to listen on for the control protocol (`host:port`).
    #[arg(long, env = "GREGOR_LISTEN")]
    pub listen: String,
    /// The static quorum: `1@host:port,2@host:port,3@host:port`.
    #[arg(long, env = "GREGOR_VOTERS", value_parser = parse_voters)]
    pub voters: std::vec::Vec<Voter>,
    /// Directory for the Raft log, vote, snapshot and meta.properties.
    #[arg(long, env = "GREGOR_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The cluster id; recorded in the data dir and required of registering brokers.
    #[arg(long, env = "GREGOR_CLUSTER_ID")]
    pub cluster_id: String,
    /// A broker is fenced when no heartbeat arrives within this time.
    #[arg(long, env = "GREGOR_BROKER_SESSION_TIMEOUT_MS", default_value_t = 1000)]
    pub broker_session_timeout_ms: u64,
    /// The brokers' heartbeat interval (checked against the session timeout).
    #[arg(
        long,
        env = "GREGOR_BROKER_HEARTBEAT_INTERVAL_MS",
        default_value_t = 200
    )]
    pub broker_heartbeat_interval_ms: u64,
    /// Build a metadata snapshot after this many log entries.
    #[arg(long, env = "GREGOR_SNAPSHOT_EVERY", default_value_t = 1000)]
    pub snapshot_every: u64,
    /// Raft leader heartbeat interval.
    #[arg(long, env = "GREGOR_RAFT_HEARTBEAT_MS", default_value_t = 100)]
    pub raft_heartbeat_ms: u64,
    /// Minimum Raft election timeout (the maximum is twice this).
    #[arg(long, env = "GREGOR_RAFT_ELECTION_TIMEOUT_MS", default_value_t = 400)]
    pub raft_election_timeout_ms: u64,
    /// Partitions of a created topic that does not say.
    #[arg(long, env = "GREGOR_DEFAULT_PARTITIONS", default_value_t = 1)]
    pub default_partitions: i32,
    /// Replication factor of a created topic that does not say (default: min(3, live brokers)).
    #[arg(long, env = "GREGOR_DEFAULT_REPLICATION_FACTOR")]
    pub default_replication_factor: Option<i16>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics (default: no metrics endpoint).
    #[arg(long, env = "GREGOR_METRICS_LISTEN", value_name = "HOST:PORT")]
    pub metrics_listen: Option<String>,
}

/// A setting that is invalid on its own or against another.
#[derive(Debug, thiserror::Error)]
#[error("invalid --{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

fn bad(flag: &'static str, message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError {
        flag,
        message: message.into(),
    })
}

impl Config {
    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.voters.iter().any(|v| v.id == self.node_id) {
            return bad("node-id", format!("{} is not among --voters", self.node_id));
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err()
            && self.listen.rsplit_once(':').is_none()
        {
            return bad("listen", format!("`{}` is not host:port", self.listen));
        }
        if self.cluster_id.is_empty()
            || self
                .cluster_id
                .chars()
                .any(|c| c.is_whitespace() || c == '=')
        {
            return bad("cluster-id", "must be non-empty without whitespace or `=`");
        }
        if self.broker_session_timeout_ms == 0 {
            return bad("broker-session-timeout-ms", "must be positive");
        }
        if self.broker_heartbeat_interval_ms == 0
            || self.broker_heartbeat_interval_ms * 3 >= self.broker_session_timeout_ms
        {
            return bad(
                "broker-heartbeat-interval-ms",
                format!(
                    "{} must be positive and under a third of --broker-session-timeout-ms ({})",
                    self.broker_heartbeat_interval_ms, self.broker_session_timeout_ms
                ),
            );
        }
        if self.raft_heartbeat_ms == 0 || self.raft_heartbeat_ms * 2 > self.raft_election_timeout_ms
        {
            return bad(
                "raft-heartbeat-ms",
                format!(
                    "{} must be positive and at most half of --raft-election-timeout-ms ({})",
                    self.raft_heartbeat_ms, self.raft_election_timeout_ms
                ),
            );
        }
        let port = |a: &str| a.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
        if let Some(m) = self.metrics_listen.as_deref().filter(|m| port(m).is_none()) {
            return bad("metrics-listen", format!("`{m}` is not host:port"));
        }
        if self.snapshot_every == 0 {
            return bad("snapshot-every", "must be at least 1");
        }
        if self.default_partitions < 1 {
            return bad("default-partitions", "must be at least 1");
        }
        if matches!(self.default_replication_factor, Some(rf) if rf < 1) {
            return bad("default-replication-factor", "must be at least 1");
        }
        Ok(())
    }

    pub fn broker_session_timeout(&self) -> Duration {
        Duration::from_millis(self.broker_session_timeout_ms)
    }

    /// This node's own control-protocol address as the voters list gives it.
    pub fn own_addr(&self) -> &str {
        &self
            .voters
            .iter()
            .find(|v| v.id == self.node_id)
            .expect("validated")
            .addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config() -> Config {
        Config {
            node_id: 1,
            listen: "127.0.0.1:9000".into(),
            voters: parse_voters("1@127.0.0.1:9000,2@127.0.0.1:9001").unwrap(),
            data_dir: "/tmp/x".into(),
            cluster_id: "c1".into(),
            broker_session_timeout_ms: 1000,
            broker_heartbeat_interval_ms: 200,
            snapshot_every: 1000,
            raft_heartbeat_ms: 100,
            raft_election_timeout_ms: 400,
            default_partitions: 1,
            default_replication_factor: None,
            metrics_listen: None,
        }
    }

    #[test]
    fn voters_parse_and_reject() {
        assert_eq!(
            parse_voters("1@a:1, 2@b:2").unwrap()[1],
            Voter {
                id: 2,
                addr: "b:2".into()
            }
        );
        assert!(parse_voters("1@a:1,1@b:2").is_err());
        assert!(parse_voters("x@a:1").is_err());
        assert!(parse_voters("1@a").is_err());
    }

    #[test]
    fn validate_names_the_flag() {
        assert!(config().validate().is_ok());
        let mut c = config();
        c.broker_heartbeat_interval_ms = 400;
        assert_eq!(
            c.validate().unwrap_err().flag,
            "broker-heartbeat-interval-ms"
        );
        let mut c = config();
        c.node_id = 7;
        assert_eq!(c.validate().unwrap_err().flag, "node-id");
        let mut c = config();
        c.raft_heartbeat_ms = 300;
        assert_eq!(c.validate().unwrap_err().flag, "raft-heartbeat-ms");
        let mut c = config();
        c.metrics_listen = Some("127.0.0.1".into());
        assert_eq!(c.validate().unwrap_err().flag, "metrics-listen");
        c.metrics_listen = Some("0.0.0.0:9100".into());
        assert!(c.validate().is_ok());
    }
}
