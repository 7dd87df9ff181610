//! One client connection: framing, pipelining and in-order responses.
//!
//! The reader takes frames off a `BytesMut` buffer (the size is checked before anything is
//! allocated) and dispatches each request in arrival order. The part of a request that must
//! happen in order (a produce's append) runs inline; what may wait (acks=all, a fetch's
//! long-poll, a forwarded admin request) runs as a task. The tasks' handles go through a
//! bounded queue of `max_inflight_requests` to the writer, which awaits them in order, so
//! responses leave in request order and a client cannot have more requests in flight.
//! Each request is counted, with its bytes and latency, in [`crate::metrics`].

use crate::api::{self, Reply};
use crate::broker::Broker;
use bytes::BytesMut;
use protocol::frame::take_frame;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] protocol::frame::FrameError),
    #[error("bad request: {0}")]
    Request(#[from] protocol::kafka::RequestError),
}

/// Aborts the request task if the connection goes away first.
struct InFlight(JoinHandle<Reply>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A client connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    broker: Arc<Broker>,
    listener: Arc<str>,
}

impl Connection {
    pub fn new(stream: TcpStream, broker: Arc<Broker>, listener: Arc<str>) -> Self {
        Self {
            stream,
            broker,
            listener,
        }
    }

    /// Serves requests until the peer closes, a bad frame arrives, or `shutdown` fires.
    pub async fn run(self, mut shutdown: broadcast::Receiver<()>) -> Result<(), ConnectionError> {
        let (mut read, write) = self.stream.into_split();
        let max_frame = self.broker.config.max_frame_bytes;
        let (tx, rx) = mpsc::channel::<InFlight>(self.broker.config.max_inflight_requests);
        let writer = tokio::spawn(write_responses(write, rx));
        let mut buf = BytesMut::with_capacity(8 * 1024);
        let result = 'conn: loop {
            loop {
                let frame = match take_frame(&mut buf, max_frame) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => break 'conn Err(e.into()),
                };
                let started = Instant::now();
                let key = frame
                    .get(..2)
                    .map_or(-1, |k| i16::from_be_bytes([k[0], k[1]]));
                let metrics = &self.broker.metrics;
                metrics.bytes_in.add(frame.len() as u64 + 4);
                metrics.api(key).requests.inc();
                let reply = match api::dispatch(&self.broker, &self.listener, frame.freeze()).await
                {
                    Ok(r) => r,
                    Err(e) => break 'conn Err(e.into()),
                };
                let handle = tokio::spawn(timed(reply, self.broker.clone(), key, started));
                if tx.send(InFlight(handle)).await.is_err() {
                    break 'conn Ok(());
                }
            }
            let n = tokio::select! {
                n = read.read_buf(&mut buf) => n,
                _ = shutdown.recv() => break Ok(()),
            };
            match n {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e.into()),
            }
        };
        drop(tx);
        // Answer what was already accepted, then close.
        let _ = writer.await;
        result
    }
}

/// Runs a request's reply and records its latency and response size.
async fn timed(reply: api::Deferred, broker: Arc<Broker>, key: i16, started: Instant) -> Reply {
    let reply = reply.await;
    let metrics = &broker.metrics;
    match &reply {
        Reply::Frame(f) => {
            metrics.api(key).latency.observe(started.elapsed());
            metrics.bytes_out.add(f.len() as u64);
        }
        Reply::None => metrics.api(key).latency.observe(started.elapsed()),
        Reply::Close => {}
    }
    reply
}

async fn write_responses(mut write: OwnedWriteHalf, mut rx: mpsc::Receiver<InFlight>) {
    while let Some(mut inflight) = rx.recv().await {
        let reply = match (&mut inflight.0).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("request task failed: {e}");
                Reply::Close
            }
        };
        match reply {
            Reply::Frame(frame) => {
                if write.write_all(&frame).await.is_err() {
                    return;
                }
            }
            Reply::None => {}
            Reply::Close => return,
        }
    }
    let _ = write.shutdown().await;
}
