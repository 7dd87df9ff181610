//! Client side of the control protocol, used by brokers, the CLI and controller peers.
//!
//! [`ControlClient`] is one connection to one node: it sends a request and waits for the
//! response with the same correlation id, reconnecting lazily after an error.
//! [`ControllerSet`] finds the active controller among the configured ones, following
//! `NOT_CONTROLLER` hints and retrying with backoff until a deadline.

use bytes::BytesMut;
use protocol::control::{
    decode_response, encode_request, AllocateProducerIdsRequest, AllocateProducerIdsResponse,
    ControlError, ControlRequest, ControlResponse, MAX_CONTROL_FRAME_BYTES,
};
use protocol::frame::{put_frame, take_frame};
use protocol::ids::{BrokerEpoch, BrokerId};
use protocol::kafka::ResponseError;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach controller at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection to {addr} failed: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("no response from {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("bad frame from {addr}: {message}")]
    Protocol { addr: String, message: String },
    #[error("controller {addr} answered error {}: {}", .error.code, .error.message)]
    Remote { addr: String, error: ControlError },
    #[error("no active controller found among {addrs:?} before the deadline (last error: {last})")]
    NoController { addrs: Vec<String>, last: String },
}

/// One connection to one control-protocol server.
#[derive(Debug)]
pub struct ControlClient {
    addr: String,
    stream: Option<TcpStream>,
    buf: BytesMut,
    next_correlation_id: u32,
}

impl ControlClient {
    /// A client for `addr` (`host:port`); it connects on first use.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            stream: None,
            buf: BytesMut::new(),
            next_correlation_id: 0,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `req` and waits up to `limit` for its response. A `ControlResponse::Error` is
    /// returned as `Ok`; callers decide what a remote error means.
    pub async fn call(
        &mut self,
        req: &ControlRequest,
        limit: Duration,
    ) -> Result<ControlResponse, ClientError> {
        match timeout(limit, self.call_inner(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                Err(ClientError::Timeout {
                    addr: self.addr.clone(),
                    timeout: limit,
                })
            }
        }
    }

    async fn call_inner(&mut self, req: &ControlRequest) -> Result<ControlResponse, ClientError> {
        let addr = self.addr.clone();
        if self.stream.is_none() {
            let s = TcpStream::connect(&addr)
                .await
                .map_err(|source| ClientError::Connect {
                    addr: addr.clone(),
                    source,
                })?;
            let _ = s.set_nodelay(true);
            self.stream = Some(s);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().expect("connected above");
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let cid = self.next_correlation_id;
        let body = encode_request(cid, req).map_err(|e| ClientError::Protocol {
            addr: addr.clone(),
            message: e.to_string(),
        })?;
        let mut out = BytesMut::new();
        put_frame(&mut out, &body);
        stream
            .write_all(&out)
            .await
            .map_err(|source| ClientError::Io {
                addr: addr.clone(),
                source,
            })?;
        loop {
            let frame = take_frame(&mut self.buf, MAX_CONTROL_FRAME_BYTES).map_err(|e| {
                ClientError::Protocol {
                    addr: addr.clone(),
                    message: e.to_string(),
                }
            })?;
            if let Some(frame) = frame {
                let (got, resp) = decode_response(&frame).map_err(|e| ClientError::Protocol {
                    addr: addr.clone(),
                    message: e.to_string(),
                })?;
                if got == cid {
                    return Ok(resp);
                }
                // A late answer to a request that timed out earlier: skip it.
                continue;
            }
            let n = stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|source| ClientError::Io {
                    addr: addr.clone(),
                    source,
                })?;
            if n == 0 {
                return Err(ClientError::Io {
                    addr,
                    source: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                });
            }
        }
    }
}

/// The configured controllers, with the one believed active.
#[derive(Debug)]
pub struct ControllerSet {
    clients: Vec<ControlClient>,
    active: usize,
    /// Per-attempt limit.
    pub attempt_timeout: Duration,
}

impl ControllerSet {
    /// `addrs` are the controllers' control-protocol addresses (`host:port`).
    pub fn new(addrs: &[String]) -> Self {
        assert!(!addrs.is_empty(), "at least one controller address");
        Self {
            clients: addrs.iter().map(ControlClient::new).collect(),
            active: 0,
            attempt_timeout: Duration::from_secs(2),
        }
    }

    pub fn addrs(&self) -> Vec<String> {
        self.clients.iter().map(|c| c.addr.clone()).collect()
    }

    /// Sends `req` to the active controller, following `NOT_CONTROLLER` hints and trying
    /// each controller in turn with backoff until `deadline`. Any response other than
    /// `NOT_CONTROLLER` (including other errors) is returned.
    pub async fn call_active(
        &mut self,
        req: &ControlRequest,
        deadline: Instant,
    ) -> Result<ControlResponse, ClientError> {
        let mut backoff = Duration::from_millis(20);
        let mut last = String::from("no attempt");
        loop {
            let idx = self.active;
            let limit = self
                .attempt_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            if limit.is_zero() {
                return Err(ClientError::NoController {
                    addrs: self.addrs(),
                    last,
                });
            }
            match self.clients[idx].call(req, limit).await {
                Ok(ControlResponse::Error(e)) if e.code == ResponseError::NotController.code() => {
                    last = format!("{}: not the active controller", self.clients[idx].addr);
                    match e
                        .leader
                        .and_then(|l| self.clients.iter().position(|c| c.addr == l.addr))
                    {
                        Some(hinted) if hinted != idx => {
                            self.active = hinted;
                            continue;
                        }
                        _ => self.active = (idx + 1) % self.clients.len(),
                    }
                }
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    last = e.to_string();
                    self.active = (idx + 1) % self.clients.len();
                }
            }
            if self.active == 0 || matches!(self.clients.len(), 1) {
                // A full round without success: back off before the next one.
                let now = Instant::now();
                if now >= deadline {
                    return Err(ClientError::NoController {
                        addrs: self.addrs(),
                        last,
                    });
                }
                tokio::time::sleep(backoff.min(deadline - now)).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }

    /// AllocateProducerIds (KIP-730): a block of producer ids for broker `broker_id`
    /// registered with `broker_epoch`, from the active controller, found and retried as
    /// [`Self::call_active`] does. A refusal (STALE_BROKER_EPOCH, ...) is returned in the
    /// response's `error`; a request-level error other than NOT_CONTROLLER (REQUEST_TIMED_OUT
    /// when the record did not commit in time) is [`ClientError::Remote`].
    pub async fn allocate_producer_ids(
        &mut self,
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
        deadline: Instant,
    ) -> Result<AllocateProducerIdsResponse, ClientError> {
        let req = ControlRequest::AllocateProducerIds(AllocateProducerIdsRequest {
            broker_id,
            broker_epoch,
        });
        let resp = self.call_active(&req, deadline).await?;
        let addr = self.clients[self.active].addr.clone();
        match resp {
            ControlResponse::AllocateProducerIds(r) => Ok(r),
            ControlResponse::Error(error) => Err(ClientError::Remote { addr, error }),
            other => Err(ClientError::Protocol {
                addr,
                message: format!("unexpected answer to AllocateProducerIds: {other:?}"),
            }),
        }
    }
}
