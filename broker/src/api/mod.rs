//! Kafka API dispatch: one `match` on the API key, one file per API.
//!
//! Every API module has `VERSIONS` (from [`protocol::kafka::SUPPORTED_APIS`]), `handle`
//! (the request, answered as a [`Deferred`] reply) and `error_response` (the same error for
//! every item of a request, used for versions the crate decodes but Gregor does not serve).
//! A request that cannot be decoded closes the connection, as Kafka does; an unsupported
//! key or version gets `UNSUPPORTED_VERSION`.

pub mod admin;
pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;

use crate::broker::Broker;
use crate::send::Piece;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use protocol::kafka::{
    decode_body, decode_header, encode_response_frame, is_supported, peek_prefix, RequestError,
    RequestPrefix, ResponseError,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use storage::FileRange;

/// What the connection writes for one request.
#[derive(Debug)]
pub enum Reply {
    /// A whole response frame (size prefix included).
    Frame(BytesMut),
    /// A whole response frame in pieces, some of them record data straight from the
    /// segment files (see [`protocol::splice`] and [`crate::send`]).
    Pieces(Vec<Piece>),
    /// No response (Produce with acks=0).
    None,
    /// Close the connection (a response could not be built).
    Close,
}

/// The part of a request that may wait; the connection runs it as a task.
pub type Deferred = Pin<Box<dyn Future<Output = Reply> + Send + 'static>>;

/// A reply that is already known.
pub fn ready(reply: Reply) -> Deferred {
    Box::pin(std::future::ready(reply))
}

/// Wraps an async block as a [`Deferred`].
pub fn deferred(f: impl Future<Output = Reply> + Send + 'static) -> Deferred {
    Box::pin(f)
}

/// Everything a handler knows about its request besides the message.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub broker: Arc<Broker>,
    /// The listener the request arrived on (Metadata answers with its addresses).
    pub listener: Arc<str>,
    pub key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    /// The request header's client id (group members report it).
    pub client_id: Option<Arc<str>>,
    /// The client's address as Kafka shows it (`/127.0.0.1`), empty when unknown.
    pub client_host: Arc<str>,
}

impl Ctx {
    /// Encodes `response` at the request's version without copying the `records` it
    /// carries (views of the mapped segments, with where they lie in their files): the
    /// reply goes out in pieces, the records sent from their files.
    pub fn reply_spliced<R: Encodable>(
        &self,
        response: &R,
        records: &[(Bytes, FileRange)],
    ) -> Reply {
        let views: Vec<Bytes> = records.iter().map(|(view, _)| view.clone()).collect();
        let encoded = protocol::splice::encode_response_frame_spliced(
            self.key,
            self.version,
            self.correlation_id,
            response,
            &views,
        );
        match encoded {
            Ok(pieces) => {
                // The encoder splices exactly the records of at least MIN_SPLICE_BYTES, in
                // the order given, so each piece is compared with the next of those only. A
                // piece that does not match goes out as bytes, which is correct either way.
                let mut next = records
                    .iter()
                    .filter(|(v, _)| v.len() >= protocol::splice::MIN_SPLICE_BYTES)
                    .peekable();
                Reply::Pieces(
                    pieces
                        .into_iter()
                        .map(|piece| match next.next_if(|(v, _)| same_view(v, &piece)) {
                            Some((_, range)) => Piece::File {
                                view: piece,
                                range: range.clone(),
                            },
                            None => Piece::Bytes(piece),
                        })
                        .collect(),
                )
            }
            Err(e) => {
                tracing::error!("{e}");
                Reply::Close
            }
        }
    }

    /// Encodes `response` at the request's version.
    pub fn reply<R: Encodable>(&self, response: &R) -> Reply {
        match encode_response_frame(self.key, self.version, self.correlation_id, response) {
            Ok(frame) => Reply::Frame(frame),
            Err(e) => {
                tracing::error!("{e}");
                Reply::Close
            }
        }
    }
}

/// Whether `a` and `b` are the same bytes in memory (a spliced piece is the very view).
fn same_view(a: &Bytes, b: &Bytes) -> bool {
    a.len() == b.len() && std::ptr::eq(a.as_ptr(), b.as_ptr())
}

macro_rules! serve {
    ($ctx:ident, $body:ident, $module:ident) => {{
        let req = decode_body(&mut $body, $ctx.key, $ctx.version)?;
        if !is_supported($ctx.key, $ctx.version) {
            let resp = $module::error_response(&req, ResponseError::UnsupportedVersion);
            return Ok(ready($ctx.reply(&resp)));
        }
        $module::handle($ctx, req).await
    }};
}

/// [`dispatch_from`] a client whose address is not known.
pub async fn dispatch(
    broker: &Arc<Broker>,
    listener: &Arc<str>,
    frame: Bytes,
) -> Result<Deferred, RequestError> {
    dispatch_from(broker, listener, &Arc::from(""), frame).await
}

/// Decodes one request frame from the client at `client_host` and starts handling it.
/// Work that must happen in request order (a produce's append) is done before this
/// returns.
pub async fn dispatch_from(
    broker: &Arc<Broker>,
    listener: &Arc<str>,
    client_host: &Arc<str>,
    frame: Bytes,
) -> Result<Deferred, RequestError> {
    let prefix = peek_prefix(&frame)?;
    let Ok(key) = ApiKey::try_from(prefix.api_key) else {
        tracing::debug!("unknown api key {} from a client", prefix.api_key);
        return Ok(ready(bare_error(prefix)));
    };
    if key == ApiKey::ApiVersions && !is_supported(key, prefix.api_version) {
        return Ok(ready(api_versions::unsupported(prefix)));
    }
    let crate_range = key.valid_versions();
    if prefix.api_version < crate_range.min || prefix.api_version > crate_range.max {
        return Ok(ready(bare_error(prefix)));
    }
    let mut body = frame;
    let header = decode_header(&mut body, key, prefix.api_version)?;
    let ctx = Ctx {
        broker: broker.clone(),
        listener: listener.clone(),
        key,
        version: prefix.api_version,
        correlation_id: prefix.correlation_id,
        client_id: header.client_id.as_deref().map(Arc::from),
        client_host: client_host.clone(),
    };
    let deferred = match key {
        ApiKey::ApiVersions => serve!(ctx, body, api_versions),
        ApiKey::Metadata => serve!(ctx, body, metadata),
        ApiKey::Produce => serve!(ctx, body, produce),
        ApiKey::Fetch => serve!(ctx, body, fetch),
        ApiKey::ListOffsets => serve!(ctx, body, list_offsets),
        ApiKey::OffsetForLeaderEpoch => serve!(ctx, body, offset_for_leader_epoch),
        ApiKey::CreateTopics => serve!(ctx, body, create_topics),
        ApiKey::DeleteTopics => serve!(ctx, body, delete_topics),
        ApiKey::CreatePartitions => serve!(ctx, body, create_partitions),
        ApiKey::DescribeConfigs => serve!(ctx, body, describe_configs),
        ApiKey::AlterConfigs => serve!(ctx, body, alter_configs),
        ApiKey::IncrementalAlterConfigs => serve!(ctx, body, incremental_alter_configs),
        ApiKey::DescribeCluster => serve!(ctx, body, describe_cluster),
        ApiKey::InitProducerId => serve!(ctx, body, init_producer_id),
        ApiKey::FindCoordinator => serve!(ctx, body, find_coordinator),
        ApiKey::JoinGroup => serve!(ctx, body, join_group),
        ApiKey::SyncGroup => serve!(ctx, body, sync_group),
        ApiKey::Heartbeat => serve!(ctx, body, heartbeat),
        ApiKey::LeaveGroup => serve!(ctx, body, leave_group),
        ApiKey::OffsetCommit => serve!(ctx, body, offset_commit),
        ApiKey::OffsetFetch => serve!(ctx, body, offset_fetch),
        ApiKey::ListGroups => serve!(ctx, body, list_groups),
        ApiKey::DescribeGroups => serve!(ctx, body, describe_groups),
        ApiKey::DeleteGroups => serve!(ctx, body, delete_groups),
        other => {
            tracing::debug!("api {other:?} is not served");
            ready(bare_error(prefix))
        }
    };
    Ok(deferred)
}

/// For an API Gregor does not serve at all: a v0 response header and the error code
/// `UNSUPPORTED_VERSION`, which is how most responses start.
fn bare_error(prefix: RequestPrefix) -> Reply {
    let mut out = BytesMut::with_capacity(10);
    out.put_i32(6);
    out.put_i32(prefix.correlation_id);
    out.put_i16(ResponseError::UnsupportedVersion.code());
    Reply::Frame(out)
}

/// Converts a string from the image into the crate's string type.
pub fn str_bytes(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}

/// A topic name for a response.
pub fn topic_name(s: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(str_bytes(s))
}

/// A broker id for a response.
pub fn kbroker(id: protocol::ids::BrokerId) -> kafka_protocol::messages::BrokerId {
    kafka_protocol::messages::BrokerId(id.0)
}
