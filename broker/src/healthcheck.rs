//! `gregor-broker healthcheck`: exit 0 iff the broker answers ApiVersions and lists itself
//! (registered and unfenced) in its Metadata. Made for `FROM scratch` images (no shell).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use protocol::frame::take_frame;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why the probe failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("cannot reach {addr}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Protocol(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("broker is up but not registered and unfenced ({0})")]
    NotReady(String),
}

/// Sends one request and reads its response body (after the response header).
pub async fn roundtrip<Req: Encodable, Resp: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    req: &Req,
) -> Result<Resp, HealthError> {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("gregor-healthcheck"));
    let mut body = BytesMut::new();
    let hv = key.request_header_version(version);
    header
        .encode(&mut body, hv)
        .map_err(|e| HealthError::Protocol(e.to_string()))?;
    req.encode(&mut body, version)
        .map_err(|e| HealthError::Protocol(e.to_string()))?;
    let mut out = BytesMut::new();
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    stream
        .write_all(&out)
        .await
        .map_err(|e| HealthError::Protocol(e.to_string()))?;
    let mut buf = BytesMut::new();
    let frame = loop {
        if let Some(f) =
            take_frame(&mut buf, 64 << 20).map_err(|e| HealthError::Protocol(e.to_string()))?
        {
            break f;
        }
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(|e| HealthError::Protocol(e.to_string()))?;
        if n == 0 {
            return Err(HealthError::Protocol("connection closed".into()));
        }
    };
    let mut frame: Bytes = frame.freeze();
    if frame.remaining() < 4 || frame.get_i32() != correlation_id {
        return Err(HealthError::Protocol("bad correlation id".into()));
    }
    if key.response_header_version(version) >= 1 {
        // Tagged fields of the response header: this probe sends none and expects none.
        let _ = frame.get_u8();
    }
    Resp::decode(&mut frame, version).map_err(|e| HealthError::Protocol(e.to_string()))
}

/// Probes the broker at `addr`. With `node_id`, that broker must be listed; without it,
/// some broker advertising `addr`'s port must be.
pub async fn check(addr: &str, node_id: Option<i32>, limit: Duration) -> Result<(), HealthError> {
    tokio::time::timeout(limit, async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|source| HealthError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let v: ApiVersionsResponse = roundtrip(
            &mut s,
            ApiKey::ApiVersions,
            0,
            1,
            &ApiVersionsRequest::default(),
        )
        .await?;
        if v.error_code != 0 {
            return Err(HealthError::Protocol(format!(
                "ApiVersions error {}",
                v.error_code
            )));
        }
        let mut req = MetadataRequest::default();
        req.topics = Some(Vec::new());
        let m: MetadataResponse = roundtrip(&mut s, ApiKey::Metadata, 1, 2, &req).await?;
        let port: Option<i32> = addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
        let listed = m.brokers.iter().any(|b| match node_id {
            Some(id) => b.node_id.0 == id,
            None => Some(b.port) == port,
        });
        if listed {
            Ok(())
        } else {
            Err(HealthError::NotReady(format!(
                "{} live brokers listed",
                m.brokers.len()
            )))
        }
    })
    .await
    .map_err(|_| HealthError::Timeout(limit))?
}
