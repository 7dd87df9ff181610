//! Encoding of control-protocol frames.
//!
//! A frame body is `version: u16`, `correlation_id: u32`, then the bincode encoding of a
//! [`ControlRequest`] or [`ControlResponse`]. Decoding is bounded by the frame size, so a
//! hostile length inside the body cannot allocate more than the frame holds.

use super::messages::{ControlRequest, ControlResponse};
use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};

/// The version this build speaks; a frame with another version is refused.
pub const CONTROL_VERSION: u16 = 1;
/// Largest control frame (snapshots of big images travel in one frame).
pub const MAX_CONTROL_FRAME_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("control frame is {len} bytes, shorter than its 6-byte header")]
    Short { len: usize },
    #[error(
        "control protocol version {got} is not supported (this node speaks {CONTROL_VERSION})"
    )]
    Version { got: u16 },
    #[error("control message does not decode: {0}")]
    Body(#[from] bincode::Error),
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(MAX_CONTROL_FRAME_BYTES as u64)
        .with_fixint_encoding()
        .reject_trailing_bytes()
}

fn encode<T: Serialize>(correlation_id: u32, msg: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&CONTROL_VERSION.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    options().serialize_into(&mut out, msg)?;
    Ok(out)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<(u32, T), CodecError> {
    if body.len() < 6 {
        return Err(CodecError::Short { len: body.len() });
    }
    let version = u16::from_be_bytes([body[0], body[1]]);
    if version != CONTROL_VERSION {
        return Err(CodecError::Version { got: version });
    }
    let correlation_id = u32::from_be_bytes([body[2], body[3], body[4], body[5]]);
    Ok((correlation_id, options().deserialize(&body[6..])?))
}

/// Encodes a request frame body (without the size prefix).
pub fn encode_request(correlation_id: u32, req: &ControlRequest) -> Result<Vec<u8>, CodecError> {
    encode(correlation_id, req)
}

/// Encodes a response frame body (without the size prefix).
pub fn encode_response(correlation_id: u32, resp: &ControlResponse) -> Result<Vec<u8>, CodecError> {
    encode(correlation_id, resp)
}

/// Decodes a request frame body.
pub fn decode_request(body: &[u8]) -> Result<(u32, ControlRequest), CodecError> {
    decode(body)
}

/// Decodes a response frame body.
pub fn decode_response(body: &[u8]) -> Result<(u32, ControlResponse), CodecError> {
    decode(body)
}

/// Encodes any serde value with the control protocol's bounded options (used for Raft
/// payloads and snapshots, so they share one bounded encoding).
pub fn encode_value<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(options().serialize(value)?)
}

/// Decodes a value written by [`encode_value`].
pub fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    Ok(options().deserialize(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::messages::*;
    use crate::ids::*;

    #[test]
    fn roundtrip() {
        let req = ControlRequest::BrokerHeartbeat(BrokerHeartbeatRequest {
            broker_id: BrokerId(3),
            broker_epoch: BrokerEpoch(17),
            current_metadata_offset: MetadataOffset(20),
            want_fence: false,
            want_shutdown: true,
        });
        let body = encode_request(9, &req).unwrap();
        let (cid, back) = decode_request(&body).unwrap();
        assert_eq!(cid, 9);
        assert!(
            matches!(back, ControlRequest::BrokerHeartbeat(h) if h.want_shutdown && h.broker_epoch == BrokerEpoch(17))
        );
    }

    #[test]
    fn allocate_producer_ids_roundtrip() {
        let req = ControlRequest::AllocateProducerIds(AllocateProducerIdsRequest {
            broker_id: BrokerId(2),
            broker_epoch: BrokerEpoch(40),
        });
        let (_, back) = decode_request(&encode_request(1, &req).unwrap()).unwrap();
        assert!(matches!(
            back,
            ControlRequest::AllocateProducerIds(r) if r.broker_id == BrokerId(2) && r.broker_epoch == BrokerEpoch(40)
        ));
        let resp = ControlResponse::AllocateProducerIds(AllocateProducerIdsResponse {
            error: 0,
            producer_id_start: 5000,
            producer_id_len: PRODUCER_ID_BLOCK_SIZE,
        });
        let (_, back) = decode_response(&encode_response(2, &resp).unwrap()).unwrap();
        assert!(matches!(
            back,
            ControlResponse::AllocateProducerIds(r) if r.producer_id_start == 5000 && r.producer_id_len == 1000
        ));
    }

    #[test]
    fn wrong_version_and_short_frames_are_errors() {
        assert!(matches!(
            decode_request(&[0, 1]),
            Err(CodecError::Short { .. })
        ));
        let mut body = encode_request(1, &ControlRequest::DescribeQuorum).unwrap();
        body[1] = 99;
        assert!(matches!(
            decode_request(&body),
            Err(CodecError::Version { got: 99 })
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_without_panic(bytes: Vec<u8>) {
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
        }
    }
}
