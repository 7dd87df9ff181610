//! A minimal Kafka client connection for inter-broker requests (follower Fetch and
//! OffsetForLeaderEpoch): one request in flight, bounded response frames, every call with
//! a deadline.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use protocol::frame::take_frame;
use protocol::kafka::encode_request_frame;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response frame accepted from a leader.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Why an inter-broker call failed; the connection is unusable afterwards.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {addr} failed: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("i/o with {addr} failed: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr} did not answer in time")]
    Timeout { addr: String },
    #[error("{addr} closed the connection")]
    Closed { addr: String },
    #[error("bad frame from {addr}: {message}")]
    Protocol { addr: String, message: String },
}

/// One connection to another broker's inter-broker listener.
#[derive(Debug)]
pub struct BrokerConnection {
    addr: String,
    stream: TcpStream,
    buf: BytesMut,
    next_correlation: i32,
    client_id: StrBytes,
}

impl BrokerConnection {
    /// Connects to `addr` (host:port) within `timeout`.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(ClientError::Connect {
                    addr: addr.to_string(),
                    source,
                });
            }
            Err(_) => {
                return Err(ClientError::Timeout {
                    addr: addr.to_string(),
                });
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(Self {
            addr: addr.to_string(),
            stream,
            buf: BytesMut::with_capacity(64 << 10),
            next_correlation: 1,
            client_id: StrBytes::from_string(client_id.to_string()),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `req` as `key`/`version` and waits for its response until `timeout`.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, ClientError> {
        match tokio::time::timeout(timeout, self.call_inner(key, version, req)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                addr: self.addr.clone(),
            }),
        }
    }

    fn protocol_error(&self, message: impl ToString) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            message: message.to_string(),
        }
    }

    async fn call_inner<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp, ClientError> {
        let correlation_id = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1).max(1);
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = correlation_id;
        header.client_id = Some(self.client_id.clone());
        let frame =
            encode_request_frame(&header, req).map_err(|e| self.protocol_error(e.message))?;
        let addr = self.addr.clone();
        self.stream
            .write_all(&frame)
            .await
            .map_err(|source| ClientError::Io {
                addr: addr.clone(),
                source,
            })?;
        let frame = loop {
            match take_frame(&mut self.buf, MAX_RESPONSE_BYTES) {
                Ok(Some(f)) => break f,
                Ok(None) => {}
                Err(e) => return Err(self.protocol_error(e)),
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|source| ClientError::Io {
                    addr: addr.clone(),
                    source,
                })?;
            if n == 0 {
                return Err(ClientError::Closed { addr });
            }
        };
        let mut bytes: Bytes = frame.freeze();
        let rh = ResponseHeader::decode(&mut bytes, key.response_header_version(version))
            .map_err(|e| self.protocol_error(e))?;
        if rh.correlation_id != correlation_id {
            return Err(self.protocol_error(format!(
                "correlation id {} for request {correlation_id}",
                rh.correlation_id
            )));
        }
        Resp::decode(&mut bytes, version).map_err(|e| self.protocol_error(e))
    }
}
