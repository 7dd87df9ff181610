//! Errors of the Kafka client, worded for a user: what went wrong and where.

use kafka_protocol::ResponseError;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("no broker reachable at {addrs} (last error: {last})")]
    NoBroker { addrs: String, last: String },
    #[error("cannot connect to broker at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection to broker at {addr} failed: {message}")]
    Io { addr: String, message: String },
    #[error("bad response from broker at {addr}: {message}")]
    Protocol { addr: String, message: String },
    #[error("no response from broker at {addr} within {timeout_ms} ms")]
    Timeout { addr: String, timeout_ms: u64 },
    #[error("broker at {addr} does not support {api} in a version this client speaks")]
    Unsupported { addr: String, api: &'static str },
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    #[error("unknown partition {partition} of topic '{topic}'")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("no leader for partition {partition} of topic '{topic}'")]
    NoLeader { topic: String, partition: i32 },
    #[error("{what}: {error}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Api {
        what: String,
        error: ResponseError,
        message: Option<String>,
    },
}

impl KafkaError {
    /// An error code answered by a broker for `what`.
    pub fn api(what: impl Into<String>, code: i16, message: Option<String>) -> Option<KafkaError> {
        ResponseError::try_from_code(code).map(|error| KafkaError::Api {
            what: what.into(),
            error,
            message,
        })
    }

    /// Whether refreshing metadata and retrying may help.
    pub fn is_retriable(&self) -> bool {
        match self {
            KafkaError::Api { error, .. } => error.is_retriable(),
            KafkaError::NoLeader { .. }
            | KafkaError::Io { .. }
            | KafkaError::Connect { .. }
            | KafkaError::Timeout { .. } => true,
            _ => false,
        }
    }
}
