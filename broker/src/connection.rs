//! One client connection: framing, pipelining and in-order responses.
//!
//! The reader takes frames off a `BytesMut` buffer (the size is checked before anything is
//! allocated) and dispatches each request in arrival order. The part of a request that must
//! happen in order (a produce's append) runs inline, and the reply is polled once there:
//! a complete reply goes straight to the writer; one that waits (acks=all, a fetch's
//! long-poll, a forwarded admin request) goes as a future that the writer polls in its
//! turn. Replies go through a bounded
//! queue of `max_inflight_requests` to the writer, which takes them in order, so responses
//! leave in request order and a client cannot have more requests in flight. The writer
//! gathers every reply that is complete and writes them together ([`crate::send`]:
//! vectored writes, and `sendfile` for the record data of fetch replies).
//! Each request is counted, with its bytes and latency, in [`crate::metrics`].

use crate::api::{self, Reply};
use crate::broker::Broker;
use crate::send::{Piece, Pieces, MAX_WRITE_BYTES, MAX_WRITE_PIECES};
use bytes::{BufMut, BytesMut};
use protocol::frame::take_frame;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};

/// Read buffer growth step: requests are read in chunks of up to this much.
const READ_BUFFER: usize = 64 * 1024;
/// Below this much free space the read buffer grows by [`READ_BUFFER`] before a read.
const MIN_READ_SPACE: usize = 8 * 1024;
/// Frames at least this large are read up to their end and no further (see [`read_limit`]).
const LARGE_FRAME: usize = 16 * 1024;

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

/// A request's reply as the writer receives it. Most replies are complete as soon as the
/// request is handled. One that waits (acks=all, a fetch's long-poll, a forwarded admin
/// request) is polled by the writer itself when its turn comes: replies leave in request
/// order anyway, and Kafka too serves a connection's requests one at a time. So a waiting
/// reply costs no task of its own and its completion no extra wake-up (with a task per
/// waiting reply, an acks=all leader spent about a fifth of its samples switching tasks).
enum InFlight {
    Ready(Reply),
    Waiting {
        reply: api::Deferred,
        key: i16,
        started: Instant,
    },
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
        let client_host: Arc<str> = match self.stream.peer_addr() {
            Ok(addr) => Arc::from(format!("/{}", addr.ip())),
            Err(_) => Arc::from(""),
        };
        let (mut read, write) = self.stream.into_split();
        let max_frame = self.broker.config.max_frame_bytes;
        let (tx, rx) = mpsc::channel::<InFlight>(self.broker.config.max_inflight_requests);
        let writer = tokio::spawn(write_responses(write, rx, self.broker.clone()));
        let mut buf = BytesMut::with_capacity(8 * 1024);
        // Size of the last frame taken, size prefix included.
        let mut last_frame = 0;
        let result = 'conn: loop {
            loop {
                let frame = match take_frame(&mut buf, max_frame) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => break 'conn Err(e.into()),
                };
                last_frame = frame.len() + 4;
                let started = Instant::now();
                let key = frame
                    .get(..2)
                    .map_or(-1, |k| i16::from_be_bytes([k[0], k[1]]));
                let metrics = &self.broker.metrics;
                metrics.bytes_in.add(frame.len() as u64 + 4);
                metrics.api(key).requests.inc();
                let dispatched =
                    api::dispatch_from(&self.broker, &self.listener, &client_host, frame.freeze());
                let reply = match dispatched.await {
                    Ok(r) => r,
                    Err(e) => break 'conn Err(e.into()),
                };
                let inflight = start_reply(reply, &self.broker, key, started);
                if tx.send(inflight).await.is_err() {
                    break 'conn Ok(());
                }
            }
            let limit = read_limit(&buf, last_frame);
            if buf.is_empty() && limit < usize::MAX {
                // Room for a frame like the last one: the buffer holds nothing now, so
                // this moves no bytes.
                buf.reserve(limit);
            }
            if buf.capacity() - buf.len() < MIN_READ_SPACE {
                buf.reserve(READ_BUFFER);
            }
            let mut space = (&mut buf).limit(limit);
            let n = tokio::select! {
                n = read.read_buf(&mut space) => n,
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

/// How many bytes the next read may take. A large frame is read up to its end and no
/// further, so that once it is taken the buffer is empty and the next frame starts at the
/// front of it: bytes of the next frame read along with this one would have to be moved
/// when the buffer makes room for the rest of that frame (2.6% of an acks=1 leader's
/// samples went to that move). While a frame's size is not yet known, the read is bounded
/// by the last frame's size when that was large: producers send frames of a similar size.
fn read_limit(buf: &[u8], last_frame: usize) -> usize {
    let frame = match buf.get(..4) {
        Some(p) => 4 + u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize,
        None => last_frame,
    };
    if frame >= LARGE_FRAME && frame > buf.len() {
        frame - buf.len()
    } else {
        usize::MAX
    }
}

/// Polls a request's reply once, so that the request's work starts now, in arrival order
/// (a fetch's long-poll deadline counts from here): a complete reply goes to the writer as
/// it is, one that waits goes as the future the writer polls on.
fn start_reply(reply: api::Deferred, broker: &Broker, key: i16, started: Instant) -> InFlight {
    ready_now(
        InFlight::Waiting {
            reply,
            key,
            started,
        },
        broker,
    )
}

/// Polls a waiting reply once (a poll does not wait); returns it as `Ready` if complete.
fn ready_now(inflight: InFlight, broker: &Broker) -> InFlight {
    match inflight {
        InFlight::Waiting {
            mut reply,
            key,
            started,
        } => {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match reply.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(r) => {
                    record(broker, key, started, &r);
                    InFlight::Ready(r)
                }
                std::task::Poll::Pending => InFlight::Waiting {
                    reply,
                    key,
                    started,
                },
            }
        }
        ready => ready,
    }
}

/// Records a reply's latency and response size.
fn record(broker: &Broker, key: i16, started: Instant, reply: &Reply) {
    let metrics = &broker.metrics;
    match reply {
        Reply::Frame(f) => {
            metrics.api(key).latency.observe(started.elapsed());
            metrics.bytes_out.add(f.len() as u64);
        }
        Reply::Pieces(pieces) => {
            metrics.api(key).latency.observe(started.elapsed());
            let len: usize = pieces.iter().map(Piece::len).sum();
            metrics.bytes_out.add(len as u64);
        }
        Reply::None => metrics.api(key).latency.observe(started.elapsed()),
        Reply::Close => {}
    }
}

/// The reply, once complete.
async fn reply_of(inflight: InFlight, broker: &Broker) -> Reply {
    match inflight {
        InFlight::Ready(r) => r,
        InFlight::Waiting {
            reply,
            key,
            started,
        } => {
            let r = reply.await;
            record(broker, key, started, &r);
            r
        }
    }
}

/// Writes replies in request order. Replies that are already complete when one is written
/// go out with it in the same vectored write, so pipelined requests cost few syscalls.
async fn write_responses(
    mut write: OwnedWriteHalf,
    mut rx: mpsc::Receiver<InFlight>,
    broker: Arc<Broker>,
) {
    let mut next: Option<InFlight> = None;
    let mut out = Pieces::default();
    loop {
        let inflight = match next.take() {
            Some(i) => i,
            None => match rx.recv().await {
                Some(i) => i,
                None => break,
            },
        };
        let mut close = gather(&mut out, reply_of(inflight, &broker).await);
        while !close && out.bytes() < MAX_WRITE_BYTES && out.len() < MAX_WRITE_PIECES {
            match rx.try_recv().map(|i| ready_now(i, &broker)) {
                Ok(InFlight::Ready(r)) => close = gather(&mut out, r),
                Ok(waiting) => {
                    next = Some(waiting);
                    break;
                }
                Err(_) => break,
            }
        }
        if out.write_to(&mut write).await.is_err() || close {
            return;
        }
    }
    let _ = write.shutdown().await;
}

/// Adds a reply to what the writer gathered; true if the connection must close after it.
fn gather(out: &mut Pieces, reply: Reply) -> bool {
    match reply {
        Reply::Frame(frame) => out.add(Piece::Bytes(frame.freeze())),
        Reply::Pieces(pieces) => pieces.into_iter().for_each(|p| out.add(p)),
        Reply::None => {}
        Reply::Close => return true,
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{read_limit, LARGE_FRAME};

    fn header(body: usize) -> Vec<u8> {
        (body as u32).to_be_bytes().to_vec()
    }

    #[test]
    fn a_large_frame_is_read_to_its_end_only() {
        let mut buf = header(100_000);
        buf.extend_from_slice(&[0; 1000]);
        assert_eq!(read_limit(&buf, 0), 100_004 - 1004);
    }

    #[test]
    fn small_frames_are_read_in_bulk() {
        let buf = header(100);
        assert_eq!(read_limit(&buf, 0), usize::MAX);
        assert_eq!(read_limit(&[], 200), usize::MAX);
    }

    #[test]
    fn an_unknown_frame_is_bounded_by_a_large_last_frame() {
        assert_eq!(read_limit(&[], LARGE_FRAME * 4), LARGE_FRAME * 4);
        assert_eq!(read_limit(&[0, 1], LARGE_FRAME * 4), LARGE_FRAME * 4 - 2);
    }
}
