//! Frames that carry record data without copying it.
//!
//! A fetch response is mostly record batches that already sit in memory as [`Bytes`] views
//! of the mapped log segments, and a produce request is mostly the batches the producer
//! encoded. [`encode_response_frame_spliced`] (and [`encode_request_frame_spliced`] for
//! requests) encodes the message with
//! kafka-protocol's own encoder into a [`SplicingBuf`]: every field is written as usual,
//! except that a `put_slice` of exactly one of the given `Bytes` (same address, same
//! length) is not copied; the buffer is cut there and the `Bytes` itself is kept as the
//! next piece. The frame is the pieces in order, ready for a vectored write.

use crate::kafka::{encode_request_frame_into, encode_response_frame_into, EncodeError};
use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::Encodable;
use std::ops::Range;

/// Slices shorter than this are copied even when they could be spliced: a separate piece
/// costs more than copying a few bytes.
pub const MIN_SPLICE_BYTES: usize = 512;

/// An encoder buffer that keeps the given `Bytes` as pieces instead of copying them.
///
/// `offset`, `seek` and `range` (kafka-protocol's gaps) work on the copied bytes only;
/// a gap is filled before any later field is written, so it never spans a splice.
#[derive(Debug)]
pub struct SplicingBuf<'a> {
    /// Copied bytes since the last piece was cut.
    buf: BytesMut,
    /// Copied bytes before `buf` (what `offset` counts).
    copied_before: usize,
    candidates: &'a [Bytes],
    pieces: Vec<Bytes>,
}

impl<'a> SplicingBuf<'a> {
    pub fn new(capacity: usize, candidates: &'a [Bytes]) -> Self {
        Self {
            buf: BytesMut::with_capacity(capacity),
            copied_before: 0,
            candidates,
            pieces: Vec::new(),
        }
    }

    fn candidate(&self, src: &[u8]) -> Option<&Bytes> {
        if src.len() < MIN_SPLICE_BYTES {
            return None;
        }
        self.candidates
            .iter()
            .find(|b| b.len() == src.len() && std::ptr::eq(b.as_ptr(), src.as_ptr()))
    }

    /// The pieces of the frame, in order.
    pub fn into_pieces(mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() {
            self.pieces.push(self.buf.freeze());
        }
        self.pieces
    }
}

// SAFETY: every method delegates to the inner `BytesMut`, whose own `BufMut` impl upholds
// the trait's contract; `put_slice` only adds a piece without touching the buffer.
#[allow(unsafe_code)]
unsafe impl BufMut for SplicingBuf<'_> {
    fn remaining_mut(&self) -> usize {
        self.buf.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's contract is passed through unchanged.
        unsafe { self.buf.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.buf.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        match self.candidate(src).cloned() {
            Some(piece) => {
                if !self.buf.is_empty() {
                    let head = self.buf.split();
                    self.copied_before += head.len();
                    self.pieces.push(head.freeze());
                }
                self.pieces.push(piece);
            }
            None => self.buf.put_slice(src),
        }
    }
}

impl ByteBufMut for SplicingBuf<'_> {
    fn offset(&self) -> usize {
        self.copied_before + self.buf.len()
    }

    fn seek(&mut self, offset: usize) {
        let local = offset.saturating_sub(self.copied_before);
        self.buf.resize(local, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let base = self.copied_before;
        &mut self.buf[r.start - base..r.end - base]
    }
}

/// Like [`crate::kafka::encode_response_frame`], but the `splice` byte strings (record
/// data of the response) are not copied: the frame comes back as pieces.
pub fn encode_response_frame_spliced<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &R,
    splice: &[Bytes],
) -> Result<Vec<Bytes>, EncodeError> {
    let spliced: usize = splice.iter().map(Bytes::len).sum();
    let out = encode_response_frame_into(key, version, correlation_id, response, |size| {
        SplicingBuf::new(4 + size.saturating_sub(spliced).min(1 << 20), splice)
    })?;
    Ok(out.into_pieces())
}

/// Like [`crate::kafka::encode_request_frame`], but the `splice` byte strings (a
/// produce request's record batches) are not copied: the frame comes back as pieces.
pub fn encode_request_frame_spliced<R: Encodable>(
    header: &RequestHeader,
    request: &R,
    splice: &[Bytes],
) -> Result<Vec<Bytes>, EncodeError> {
    let spliced: usize = splice.iter().map(Bytes::len).sum();
    let out = encode_request_frame_into(header, request, |size| {
        SplicingBuf::new(4 + size.saturating_sub(spliced).min(1 << 20), splice)
    })?;
    Ok(out.into_pieces())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::encode_response_frame;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn response(records: &[Bytes]) -> FetchResponse {
        let mut r = FetchResponse::default();
        let mut t = FetchableTopicResponse::default();
        t.topic = TopicName(StrBytes::from_static_str("t"));
        for (i, rec) in records.iter().enumerate() {
            let mut p = PartitionData::default();
            p.partition_index = i as i32;
            p.high_watermark = 10;
            p.records = Some(rec.clone());
            t.partitions.push(p);
        }
        r.responses.push(t);
        r
    }

    #[test]
    fn spliced_frames_equal_copied_frames_at_every_version() {
        let records: Vec<Bytes> = vec![
            Bytes::from(vec![1u8; 4096]),
            Bytes::from(vec![2u8; 10]),
            Bytes::from(vec![3u8; 100_000]),
        ];
        let resp = response(&records);
        for version in 4..=ApiKey::Fetch.valid_versions().max {
            let copied = encode_response_frame(ApiKey::Fetch, version, 7, &resp).unwrap();
            let pieces =
                encode_response_frame_spliced(ApiKey::Fetch, version, 7, &resp, &records).unwrap();
            let joined: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
            assert_eq!(joined, copied.to_vec(), "version {version}");
            // The two large record sets are pieces of their own, pointing at the originals.
            for big in [&records[0], &records[2]] {
                assert!(
                    pieces.iter().any(|p| p.as_ptr() == big.as_ptr()),
                    "version {version}: not spliced"
                );
            }
            assert!(!pieces.iter().any(|p| p.as_ptr() == records[1].as_ptr()));
        }
    }

    #[test]
    fn spliced_produce_requests_equal_copied_ones_at_every_version() {
        use crate::kafka::encode_request_frame;
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::ProduceRequest;

        let records = Bytes::from(vec![9u8; 65_536]);
        let mut req = ProduceRequest::default();
        req.acks = -1;
        req.timeout_ms = 30_000;
        let mut t = TopicProduceData::default();
        t.name = TopicName(StrBytes::from_static_str("t"));
        let mut p = PartitionProduceData::default();
        p.index = 3;
        p.records = Some(records.clone());
        t.partition_data.push(p);
        req.topic_data.push(t);
        for version in 3..=ApiKey::Produce.valid_versions().max {
            let mut header = RequestHeader::default();
            header.request_api_key = ApiKey::Produce as i16;
            header.request_api_version = version;
            header.correlation_id = 11;
            header.client_id = Some(StrBytes::from_static_str("c"));
            let copied = encode_request_frame(&header, &req).unwrap();
            let pieces =
                encode_request_frame_spliced(&header, &req, std::slice::from_ref(&records))
                    .unwrap();
            assert_eq!(pieces.concat(), copied[..], "version {version}");
            assert!(
                pieces.iter().any(|p| p.as_ptr() == records.as_ptr()),
                "version {version}: the records were copied"
            );
        }
    }

    #[test]
    fn equal_contents_at_another_address_are_copied() {
        let records = vec![Bytes::from(vec![5u8; 2048])];
        let other = vec![Bytes::from(vec![5u8; 2048])];
        let resp = response(&records);
        let pieces = encode_response_frame_spliced(ApiKey::Fetch, 12, 1, &resp, &other).unwrap();
        assert_eq!(pieces.len(), 1);
    }
}
