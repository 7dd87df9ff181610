//! One connection to one broker: framed requests with correlation ids, pipelined.
//!
//! Requests are written under a lock in call order; a reader task matches responses (which
//! a Kafka broker sends in request order) to waiting callers by correlation id. A semaphore
//! bounds the requests in flight. `connect` asks ApiVersions first, so every call can pick
//! the highest version both sides speak.

use super::error::KafkaError;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};
use protocol::frame::take_frame;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI16, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore, SemaphorePermit};

/// Largest response frame accepted.
const MAX_RESPONSE_BYTES: usize = 128 << 20;
/// Requests in flight per connection.
pub const MAX_IN_FLIGHT: usize = 32;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Waiter = (i32, oneshot::Sender<Result<Bytes, KafkaError>>);

/// A connection to one broker.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Arc<Mutex<VecDeque<Waiter>>>,
    closed: Arc<AtomicBool>,
    next_correlation_id: AtomicI32,
    in_flight: Semaphore,
    /// The highest Fetch version whose responses decode (lowered for a broker that sends
    /// tags its version does not have, as tansu 0.6.0 does at v12).
    fetch_max: AtomicI16,
    /// api key → (min, max) the broker supports.
    versions: BTreeMap<i16, (i16, i16)>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Connects and learns the broker's API versions.
    pub async fn connect(addr: &str) -> Result<Connection, KafkaError> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(KafkaError::Connect {
                    addr: addr.to_string(),
                    source,
                })
            }
            Err(_) => {
                return Err(KafkaError::Timeout {
                    addr: addr.to_string(),
                    timeout_ms: CONNECT_TIMEOUT.as_millis() as u64,
                })
            }
        };
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let pending = Arc::new(Mutex::new(VecDeque::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_loop(
            addr.to_string(),
            read,
            pending.clone(),
            closed.clone(),
        ));
        let mut conn = Connection {
            addr: addr.to_string(),
            writer: tokio::sync::Mutex::new(write),
            pending,
            closed,
            next_correlation_id: AtomicI32::new(1),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            fetch_max: AtomicI16::new(i16::MAX),
            versions: BTreeMap::new(),
            reader,
        };
        conn.versions = conn.api_versions().await?;
        Ok(conn)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection broke (a new one is needed).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    async fn api_versions(&self) -> Result<BTreeMap<i16, (i16, i16)>, KafkaError> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("gregor"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let limit = Duration::from_secs(10);
        let resp = match self.call_at(&req, 3, limit).await {
            Ok(r) if r.error_code == 0 => r,
            // An old broker answers an unknown version with a v0 response (or closes).
            _ => {
                self.call_at(&ApiVersionsRequest::default(), 0, limit)
                    .await?
            }
        };
        if let Some(e) = KafkaError::api(
            format!("ApiVersions at {}", self.addr),
            resp.error_code,
            None,
        ) {
            return Err(e);
        }
        Ok(resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect())
    }

    /// The highest Fetch version to ask for, at most `max`.
    pub fn fetch_max(&self, max: i16) -> i16 {
        max.min(self.fetch_max.load(Ordering::Relaxed))
    }

    /// Remembers that Fetch responses at `failed` did not decode, so later fetches ask
    /// for an older version.
    pub fn lower_fetch_max(&self, failed: i16) {
        self.fetch_max.fetch_min(failed - 1, Ordering::Relaxed);
    }

    /// The highest version of `R` both sides speak, at most `max`.
    pub fn version<R: Request>(&self, max: i16) -> Result<i16, KafkaError> {
        let api = api_name(R::KEY);
        let Some(&(bmin, bmax)) = self.versions.get(&R::KEY) else {
            return Err(KafkaError::Unsupported {
                addr: self.addr.clone(),
                api,
            });
        };
        let v = bmax.min(max).min(R::VERSIONS.max);
        if v < bmin.max(R::VERSIONS.min) {
            return Err(KafkaError::Unsupported {
                addr: self.addr.clone(),
                api,
            });
        }
        Ok(v)
    }

    /// Sends `req` at the best version up to `max` and waits up to `limit` for the answer.
    pub async fn call<R: Request>(
        &self,
        req: &R,
        max: i16,
        limit: Duration,
    ) -> Result<(R::Response, i16), KafkaError> {
        let v = self.version::<R>(max)?;
        Ok((self.call_at(req, v, limit).await?, v))
    }

    /// Sends `req` at version `v` and waits up to `limit` for the answer.
    pub async fn call_at<R: Request>(
        &self,
        req: &R,
        v: i16,
        limit: Duration,
    ) -> Result<R::Response, KafkaError> {
        self.call_at_spliced(req, v, limit, &[]).await
    }

    /// [`Self::call`] for a request that carries `records` (a produce request's batches):
    /// they go to the socket as they are, not copied into the encoded frame.
    pub async fn call_spliced<R: Request>(
        &self,
        req: &R,
        max: i16,
        limit: Duration,
        records: &[Bytes],
    ) -> Result<(R::Response, i16), KafkaError> {
        let v = self.version::<R>(max)?;
        Ok((self.call_at_spliced(req, v, limit, records).await?, v))
    }

    async fn call_at_spliced<R: Request>(
        &self,
        req: &R,
        v: i16,
        limit: Duration,
        records: &[Bytes],
    ) -> Result<R::Response, KafkaError> {
        // The permit bounds requests in flight: it is held until the answer arrives.
        let (rx, _permit) = self.send(req, v, true, records).await?;
        let rx = rx.expect("a response was asked for");
        let body = match tokio::time::timeout(limit, rx).await {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => return Err(self.io_error("connection closed")),
            // A broker that does not answer in time is treated as broken: closing keeps
            // abandoned waiters from piling up; the client opens a new connection.
            Err(_) => {
                self.closed.store(true, Ordering::Relaxed);
                return Err(KafkaError::Timeout {
                    addr: self.addr.clone(),
                    timeout_ms: limit.as_millis() as u64,
                });
            }
        };
        let mut body = body;
        let api = ApiKey::try_from(R::KEY).map_err(|_| self.protocol_error("unknown api key"))?;
        ResponseHeader::decode(&mut body, api.response_header_version(v))
            .map_err(|e| self.protocol_error(&format!("response header: {e}")))?;
        R::Response::decode(&mut body, v)
            .map_err(|e| self.protocol_error(&format!("{} v{v} response: {e}", api_name(R::KEY))))
    }

    /// Sends `req` expecting no response (Produce with acks=0); `records` as in
    /// [`Self::call_spliced`].
    pub async fn send_only<R: Request>(
        &self,
        req: &R,
        max: i16,
        records: &[Bytes],
    ) -> Result<(), KafkaError> {
        let v = self.version::<R>(max)?;
        self.send(req, v, false, records).await.map(|_| ())
    }

    async fn send<R: Request>(
        &self,
        req: &R,
        v: i16,
        want_response: bool,
        records: &[Bytes],
    ) -> Result<
        (
            Option<oneshot::Receiver<Result<Bytes, KafkaError>>>,
            SemaphorePermit<'_>,
        ),
        KafkaError,
    > {
        if self.is_closed() {
            return Err(self.io_error("connection closed"));
        }
        let permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| self.io_error("connection closed"))?;
        let cid = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = v;
        header.correlation_id = cid;
        header.client_id = Some(StrBytes::from_static_str("gregor"));
        let frame =
            protocol::splice::encode_request_frame_spliced(&header, req, records).map_err(|e| {
                self.protocol_error(&format!(
                    "cannot encode {} v{v}: {}",
                    api_name(R::KEY),
                    e.message
                ))
            })?;
        let mut writer = self.writer.lock().await;
        let rx = if want_response {
            let (tx, rx) = oneshot::channel();
            // Registered under the write lock, so the queue order is the wire order.
            self.pending
                .lock()
                .expect("pending lock")
                .push_back((cid, tx));
            Some(rx)
        } else {
            None
        };
        if let Err(e) = write_all_pieces(&mut writer, frame).await {
            self.closed.store(true, Ordering::Relaxed);
            return Err(self.io_error(&e.to_string()));
        }
        drop(writer);
        Ok((rx, permit))
    }

    fn io_error(&self, message: &str) -> KafkaError {
        KafkaError::Io {
            addr: self.addr.clone(),
            message: message.to_string(),
        }
    }

    fn protocol_error(&self, message: &str) -> KafkaError {
        KafkaError::Protocol {
            addr: self.addr.clone(),
            message: message.to_string(),
        }
    }
}

/// Writes the pieces of a frame in order, with vectored writes.
async fn write_all_pieces(
    writer: &mut OwnedWriteHalf,
    mut pieces: Vec<Bytes>,
) -> std::io::Result<()> {
    let mut first = 0;
    while first < pieces.len() {
        let slices: Vec<std::io::IoSlice<'_>> = pieces[first..]
            .iter()
            .map(|p| std::io::IoSlice::new(p))
            .collect();
        let mut n = writer.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let len = pieces[first].len();
            if n >= len {
                n -= len;
                first += 1;
            } else {
                bytes::Buf::advance(&mut pieces[first], n);
                n = 0;
            }
        }
    }
    Ok(())
}

async fn read_loop(
    addr: String,
    mut read: OwnedReadHalf,
    pending: Arc<Mutex<VecDeque<Waiter>>>,
    closed: Arc<AtomicBool>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let reason = loop {
        match take_frame(&mut buf, MAX_RESPONSE_BYTES) {
            Ok(Some(frame)) => {
                let frame = frame.freeze();
                let Some(cid) = frame
                    .get(..4)
                    .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                else {
                    break "a response shorter than its header".to_string();
                };
                let waiter = pending.lock().expect("pending lock").pop_front();
                match waiter {
                    Some((want, tx)) if want == cid => {
                        let _ = tx.send(Ok(frame));
                    }
                    Some((want, _)) => {
                        break format!("response {cid} arrived while {want} was expected")
                    }
                    None => break format!("unexpected response {cid}"),
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break e.to_string(),
        }
        match read.read_buf(&mut buf).await {
            Ok(0) => break "connection closed by the broker".to_string(),
            Ok(_) => {}
            Err(e) => break e.to_string(),
        }
    };
    closed.store(true, Ordering::Relaxed);
    let waiters: Vec<Waiter> = pending.lock().expect("pending lock").drain(..).collect();
    for (_, tx) in waiters {
        let _ = tx.send(Err(KafkaError::Io {
            addr: addr.clone(),
            message: reason.clone(),
        }));
    }
}

/// A readable name of an API key.
pub fn api_name(key: i16) -> &'static str {
    match ApiKey::try_from(key) {
        Ok(ApiKey::Produce) => "Produce",
        Ok(ApiKey::Fetch) => "Fetch",
        Ok(ApiKey::ListOffsets) => "ListOffsets",
        Ok(ApiKey::Metadata) => "Metadata",
        Ok(ApiKey::CreateTopics) => "CreateTopics",
        Ok(ApiKey::DeleteTopics) => "DeleteTopics",
        Ok(ApiKey::DescribeConfigs) => "DescribeConfigs",
        Ok(ApiKey::IncrementalAlterConfigs) => "IncrementalAlterConfigs",
        Ok(ApiKey::ApiVersions) => "ApiVersions",
        Ok(ApiKey::FindCoordinator) => "FindCoordinator (consumer groups)",
        Ok(ApiKey::JoinGroup) => "JoinGroup",
        Ok(ApiKey::SyncGroup) => "SyncGroup",
        Ok(ApiKey::Heartbeat) => "Heartbeat",
        Ok(ApiKey::LeaveGroup) => "LeaveGroup",
        Ok(ApiKey::OffsetFetch) => "OffsetFetch",
        Ok(ApiKey::OffsetCommit) => "OffsetCommit",
        _ => "this API",
    }
}
