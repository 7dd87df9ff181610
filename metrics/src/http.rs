//! A tiny HTTP/1.1 server for scrapes: `GET /metrics` answers 200 with the registry's text;
//! another path is 404, another method 405, a malformed head 400, a head over
//! [`MAX_HEAD_BYTES`] 431. Every response closes the connection. At most
//! [`MAX_CONNECTIONS`] are served at once (more are closed unanswered), and a client gets
//! [`IO_TIMEOUT`] to send its head and again to take the response.

use crate::registry::Registry;
use crate::text::CONTENT_TYPE;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// The longest request head accepted.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// Time a client gets to send its request head, and again to read the response.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The path served.
pub const METRICS_PATH: &str = "/metrics";

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for metrics: {source}")]
pub struct BindError {
    pub addr: String,
    pub source: std::io::Error,
}

/// Binds the metrics listener (`host:port`).
pub async fn bind(addr: &str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError {
        addr: addr.to_string(),
        source,
    })
}

/// Serves scrapes on `listener` in a task; abort the handle to stop.
pub fn spawn(listener: TcpListener, registry: Arc<Registry>) -> JoinHandle<()> {
    tokio::spawn(serve(listener, registry))
}

/// Accepts connections until the task is aborted.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    if let Ok(a) = listener.local_addr() {
        tracing::info!("metrics on http://{a}{METRICS_PATH}");
    }
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("metrics accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!("metrics: refusing {peer}, {MAX_CONNECTIONS} connections open");
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(socket, &registry).await {
                tracing::debug!("metrics connection from {peer}: {e}");
            }
            drop(permit);
        });
    }
}

/// The parts of a request the server looks at.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    Complete { method: String, path: String },
    TooLarge,
    Malformed,
}

async fn handle(mut socket: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let head = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut socket)).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    };
    let (status, body) = match head {
        Head::TooLarge => ("431 Request Header Fields Too Large", String::new()),
        Head::Malformed => ("400 Bad Request", String::new()),
        Head::Complete { method, path } => {
            let path = path.split('?').next().unwrap_or_default();
            if path != METRICS_PATH {
                ("404 Not Found", format!("only {METRICS_PATH} is served\n"))
            } else if method != "GET" {
                ("405 Method Not Allowed", String::new())
            } else {
                ("200 OK", registry.render())
            }
        }
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        if status.starts_with("200") {
            CONTENT_TYPE
        } else {
            "text/plain; charset=utf-8"
        },
        body.len()
    );
    if status.starts_with("405") {
        response.push_str("Allow: GET\r\n");
    }
    response.push_str("\r\n");
    response.push_str(&body);
    let write = async {
        socket.write_all(response.as_bytes()).await?;
        socket.shutdown().await
    };
    match tokio::time::timeout(IO_TIMEOUT, write).await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

/// Reads up to the blank line that ends the head (at most [`MAX_HEAD_BYTES`]).
async fn read_head(socket: &mut TcpStream) -> std::io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_end(&buf) {
            return Ok(parse_head(&buf[..end]));
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Ok(Head::TooLarge);
        }
        let want = chunk.len().min(MAX_HEAD_BYTES + 4 - buf.len());
        let n = socket.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Ok(Head::Malformed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_end(buf: &[u8]) -> Option<usize> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    (end <= MAX_HEAD_BYTES).then_some(end)
}

fn parse_head(head: &[u8]) -> Head {
    let Ok(text) = std::str::from_utf8(head) else {
        return Head::Malformed;
    };
    let line = text.split("\r\n").next().unwrap_or_default();
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(path), Some(version), None)
            if !method.is_empty() && path.starts_with('/') && version.starts_with("HTTP/1.") =>
        {
            Head::Complete {
                method: method.to_string(),
                path: path.to_string(),
            }
        }
        _ => Head::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn server() -> (std::net::SocketAddr, JoinHandle<()>) {
        let registry = Arc::new(Registry::new());
        registry.counter("test_total", "A test counter.").add(7);
        let listener = bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (addr, spawn(listener, registry))
    }

    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
            .await
            .expect("the server closes the connection")
            .unwrap();
        out
    }

    #[tokio::test]
    async fn get_metrics_answers_the_text_format() {
        let (addr, task) = server().await;
        let out = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(
            out.contains("Content-Type: text/plain; version=0.0.4"),
            "{out}"
        );
        assert!(out.contains("Connection: close\r\n"), "{out}");
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("# TYPE gregor_test_total counter\ngregor_test_total 7\n"));
        task.abort();
    }

    #[tokio::test]
    async fn other_paths_methods_and_bad_heads_are_refused() {
        let (addr, task) = server().await;
        let out = exchange(addr, b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 404"), "{out}");
        let out = exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 405"), "{out}");
        assert!(out.contains("Allow: GET"), "{out}");
        let out = exchange(addr, b"hello\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES + 100));
        big.extend_from_slice(b"\r\n\r\n");
        let out = exchange(addr, &big).await;
        assert!(out.starts_with("HTTP/1.1 431"), "{out}");
        // A query string is ignored.
        let out = exchange(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        task.abort();
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_and_others_still_served() {
        let (addr, task) = server().await;
        // A client that sends a partial head and then nothing: the server closes it after
        // IO_TIMEOUT; meanwhile other clients are answered.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        silent.write_all(b"GET /metr").await.unwrap();
        let out = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        let mut rest = Vec::new();
        let n = tokio::time::timeout(IO_TIMEOUT * 3, silent.read_to_end(&mut rest))
            .await
            .expect("closed after the read timeout")
            .unwrap_or(0);
        assert_eq!(n, 0, "no response to an incomplete head");
        task.abort();
    }

    #[test]
    fn heads_parse() {
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: a"),
            Head::Complete {
                method: "GET".into(),
                path: "/metrics".into()
            }
        );
        assert_eq!(parse_head(b"GET /metrics"), Head::Malformed);
        assert_eq!(parse_head(b"GET metrics HTTP/1.1"), Head::Malformed);
        assert_eq!(parse_head(&[0xff, 0xfe]), Head::Malformed);
    }
}
