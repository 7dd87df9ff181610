//! The Kafka API surface Gregor serves: supported version ranges, request header
//! handling and error codes, as a thin layer over the `kafka-protocol` crate.
//!
//! A request frame body is a request header followed by the request message. The header's
//! own version depends on the API key and version ([`ApiKey::request_header_version`]), so
//! the first 8 bytes (key, version, correlation id) are read raw first: that is enough to
//! answer an unknown key or an unsupported version with an error instead of dropping the
//! connection. Responses carry a response header whose version likewise depends on the API
//! (ApiVersions always answers with header v0, so a client that asked with a version the
//! broker does not know can still parse the answer).

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Decodable, Encodable};
pub use kafka_protocol::ResponseError;

/// The API keys and version ranges Gregor serves, in ApiVersions order.
///
/// The lower bounds are those of `kafka-protocol` 0.18 (Kafka 4.1's schemas dropped older
/// versions of ListOffsets, OffsetForLeaderEpoch, CreateTopics, DeleteTopics and
/// DescribeConfigs); the upper bounds are what the broker implements.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::InitProducerId, 0, 4),
    // The group coordinator (gregor-group's GROUP_APIS; a broker test checks they match).
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
];

/// The supported version range of `key`, if Gregor serves it.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
}

/// Whether `version` of `key` is served.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported_versions(key).is_some_and(|(min, max)| (min..=max).contains(&version))
}

/// The fixed-layout start of every request header: enough to answer any request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Why a request frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request frame is {len} bytes, shorter than the 8-byte header prefix")]
    Short { len: usize },
    #[error("request header of api {api_key} v{api_version} does not decode: {message}")]
    Header {
        api_key: i16,
        api_version: i16,
        message: String,
    },
    #[error("request body of api {api_key} v{api_version} does not decode: {message}")]
    Body {
        api_key: i16,
        api_version: i16,
        message: String,
    },
}

/// Reads the key, version and correlation id without consuming anything.
pub fn peek_prefix(body: &[u8]) -> Result<RequestPrefix, RequestError> {
    if body.len() < 8 {
        return Err(RequestError::Short { len: body.len() });
    }
    let mut b = &body[..8];
    Ok(RequestPrefix {
        api_key: b.get_i16(),
        api_version: b.get_i16(),
        correlation_id: b.get_i32(),
    })
}

/// Decodes the request header of a supported `key`/`version`, leaving `body` at the
/// start of the request message.
pub fn decode_header(
    body: &mut Bytes,
    key: ApiKey,
    version: i16,
) -> Result<RequestHeader, RequestError> {
    let header_version = key.request_header_version(version);
    RequestHeader::decode(body, header_version).map_err(|e| RequestError::Header {
        api_key: key as i16,
        api_version: version,
        message: e.to_string(),
    })
}

/// Decodes a request message of type `R` at `version` from the rest of the frame.
pub fn decode_body<R: Decodable>(
    body: &mut Bytes,
    key: ApiKey,
    version: i16,
) -> Result<R, RequestError> {
    R::decode(body, version).map_err(|e| RequestError::Body {
        api_key: key as i16,
        api_version: version,
        message: e.to_string(),
    })
}

/// Why a response could not be encoded (a programming error: a field set that the
/// negotiated version does not have).
#[derive(Debug, thiserror::Error)]
#[error("response of api {api_key:?} v{api_version} does not encode: {message}")]
pub struct EncodeError {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub message: String,
}

/// Encodes a whole request frame (size prefix, `header`, message) into one buffer of
/// exactly its size, so the message (record batches included) is copied once.
pub fn encode_request_frame<R: Encodable>(
    header: &RequestHeader,
    request: &R,
) -> Result<BytesMut, EncodeError> {
    encode_request_frame_into(header, request, |size| BytesMut::with_capacity(4 + size))
}

/// Encodes a whole request frame into the buffer `make(size)` returns, where `size` is the
/// frame's length after its size prefix.
pub(crate) fn encode_request_frame_into<R: Encodable, B: ByteBufMut>(
    header: &RequestHeader,
    request: &R,
    make: impl FnOnce(usize) -> B,
) -> Result<B, EncodeError> {
    let version = header.request_api_version;
    let key = ApiKey::try_from(header.request_api_key).map_err(|_| EncodeError {
        api_key: ApiKey::ApiVersions,
        api_version: version,
        message: format!("unknown api key {}", header.request_api_key),
    })?;
    let err = |message: String| EncodeError {
        api_key: key,
        api_version: version,
        message,
    };
    let header_version = key.request_header_version(version);
    let size = header
        .compute_size(header_version)
        .and_then(|h| request.compute_size(version).map(|b| h + b))
        .map_err(|e| err(e.to_string()))?;
    let size_i32 = i32::try_from(size).map_err(|_| err(format!("{size} bytes is too large")))?;
    let mut out = make(size);
    out.put_i32(size_i32);
    header
        .encode(&mut out, header_version)
        .and_then(|_| request.encode(&mut out, version))
        .map_err(|e| err(e.to_string()))?;
    Ok(out)
}

/// Encodes a whole response frame: size prefix, response header, message.
pub fn encode_response_frame<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &R,
) -> Result<BytesMut, EncodeError> {
    encode_response_frame_into(key, version, correlation_id, response, |size| {
        BytesMut::with_capacity(4 + size)
    })
}

/// Encodes a whole response frame into the buffer `make(size)` returns, where `size` is
/// the frame's length after its size prefix.
pub(crate) fn encode_response_frame_into<R: Encodable, B: ByteBufMut>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &R,
    make: impl FnOnce(usize) -> B,
) -> Result<B, EncodeError> {
    let err = |message: String| EncodeError {
        api_key: key,
        api_version: version,
        message,
    };
    let header_version = key.response_header_version(version);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let size = header
        .compute_size(header_version)
        .and_then(|h| response.compute_size(version).map(|b| h + b))
        .map_err(|e| err(e.to_string()))?;
    let size_i32 = i32::try_from(size).map_err(|_| err(format!("{size} bytes is too large")))?;
    let mut out = make(size);
    out.put_i32(size_i32);
    header
        .encode(&mut out, header_version)
        .map_err(|e| err(e.to_string()))?;
    response
        .encode(&mut out, version)
        .map_err(|e| err(e.to_string()))?;
    Ok(out)
}

/// The error code of `e` (0 is success).
pub fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Kafka's config resource types (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs).
pub mod resource_type {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
}

/// Kafka's config sources (DescribeConfigs v1+).
pub mod config_source {
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// IncrementalAlterConfigs operations.
pub mod config_op {
    pub const SET: i8 = 0;
    pub const DELETE: i8 = 1;
    pub const APPEND: i8 = 2;
    pub const SUBTRACT: i8 = 3;
}

/// ListOffsets special timestamps.
pub mod list_offsets {
    pub const LATEST: i64 = -1;
    pub const EARLIEST: i64 = -2;
    pub const MAX_TIMESTAMP: i64 = -3;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsResponse;

    #[test]
    fn table_is_within_the_crate_ranges() {
        for &(key, min, max) in SUPPORTED_APIS {
            let r = key.valid_versions();
            assert!(
                r.min <= min && max <= r.max,
                "{key:?} {min}..{max} outside {r}"
            );
        }
    }

    #[test]
    fn prefix_of_short_frames_is_an_error() {
        assert!(peek_prefix(&[0, 18, 0]).is_err());
        let p = peek_prefix(&[0, 18, 0, 3, 0, 0, 0, 7]).unwrap();
        assert_eq!(
            p,
            RequestPrefix {
                api_key: 18,
                api_version: 3,
                correlation_id: 7
            }
        );
    }

    #[test]
    fn api_versions_response_uses_header_v0() {
        let resp = ApiVersionsResponse::default();
        let frame = encode_response_frame(ApiKey::ApiVersions, 3, 42, &resp).unwrap();
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(size, frame.len() - 4);
        assert_eq!(&frame[4..8], &42i32.to_be_bytes());
        // Header v0 has no tagged-field byte: the message starts right after the id.
        assert_eq!(&frame[8..10], &0i16.to_be_bytes());
    }
}
