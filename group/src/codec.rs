//! The records of `__consumer_offsets`: keys and values in Kafka's own layouts
//! (`OffsetCommitKey` v1, `OffsetCommitValue` v3, `GroupMetadataKey` v2,
//! `GroupMetadataValue` v3; big-endian, `i16`-length strings, `i32`-length bytes), so the
//! topic reads the same as a Kafka cluster's. A `None` value is a tombstone.
//!
//! Decoding never panics and never allocates more than the input holds.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Key of a `__consumer_offsets` record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKey {
    /// A committed offset of one partition (key versions 0 and 1).
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    /// The metadata of a whole group (key version 2).
    Group { group: String },
}

/// A committed offset (`OffsetCommitValue` v3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// One member as stored in `GroupMetadataValue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's metadata after a completed generation (`GroupMetadataValue` v3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<MemberValue>,
}

/// A record that is not one of the layouts above.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record ends after {at} bytes, needed {need} more")]
    Truncated { at: usize, need: usize },
    #[error("unknown {what} version {version}")]
    UnknownVersion { what: &'static str, version: i16 },
    #[error("negative length {len} at byte {at}")]
    BadLength { len: i32, at: usize },
    #[error("string at byte {at} is not UTF-8")]
    NotUtf8 { at: usize },
    #[error("{extra} bytes left after the record")]
    Trailing { extra: usize },
}

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

fn put_str(buf: &mut BytesMut, s: &str) {
    let len = i16::try_from(s.len()).expect("strings of __consumer_offsets fit in i16");
    buf.put_i16(len);
    buf.put_slice(s.as_bytes());
}

fn put_opt_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    let len = i32::try_from(b.len()).expect("member metadata fits in i32");
    buf.put_i32(len);
    buf.put_slice(b);
}

/// Encodes a key.
pub fn encode_key(key: &RecordKey) -> Bytes {
    let mut buf = BytesMut::new();
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            buf.put_i16(OFFSET_KEY_VERSION);
            put_str(&mut buf, group);
            put_str(&mut buf, topic);
            buf.put_i32(*partition);
        }
        RecordKey::Group { group } => {
            buf.put_i16(GROUP_KEY_VERSION);
            put_str(&mut buf, group);
        }
    }
    buf.freeze()
}

/// Encodes a committed offset.
pub fn encode_offset(v: &OffsetValue) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(OFFSET_VALUE_VERSION);
    buf.put_i64(v.offset);
    buf.put_i32(v.leader_epoch);
    put_str(&mut buf, &v.metadata);
    buf.put_i64(v.commit_timestamp_ms);
    buf.freeze()
}

/// Encodes a group's metadata.
pub fn encode_group(v: &GroupValue) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_VALUE_VERSION);
    put_str(&mut buf, &v.protocol_type);
    buf.put_i32(v.generation);
    put_opt_str(&mut buf, v.protocol.as_deref());
    put_opt_str(&mut buf, v.leader.as_deref());
    buf.put_i64(v.state_timestamp_ms);
    buf.put_i32(i32::try_from(v.members.len()).expect("group size fits in i32"));
    for m in &v.members {
        put_str(&mut buf, &m.member_id);
        put_opt_str(&mut buf, m.group_instance_id.as_deref());
        put_str(&mut buf, &m.client_id);
        put_str(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

/// A bounds-checked reader over one record.
struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a Bytes) -> Self {
        Self { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(DecodeError::Truncated {
                at: self.pos,
                need: n - left,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn i16(&mut self) -> Result<i16, DecodeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn opt_str(&mut self) -> Result<Option<String>, DecodeError> {
        let at = self.pos;
        let len = self.i16()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| DecodeError::BadLength {
            len: i32::from(len),
            at,
        })?;
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| DecodeError::NotUtf8 { at })?;
        Ok(Some(s.to_owned()))
    }

    fn str(&mut self) -> Result<String, DecodeError> {
        let at = self.pos;
        self.opt_str()?
            .ok_or(DecodeError::BadLength { len: -1, at })
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let at = self.pos;
        let len = self.i32()?;
        let n = usize::try_from(len).map_err(|_| DecodeError::BadLength { len, at })?;
        self.take(n)?;
        Ok(self.buf.slice(self.pos - n..self.pos))
    }

    fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            extra => Err(DecodeError::Trailing { extra }),
        }
    }
}

/// Decodes a key.
pub fn decode_key(buf: &Bytes) -> Result<RecordKey, DecodeError> {
    let mut r = Reader::new(buf);
    let key = match r.i16()? {
        0 | 1 => RecordKey::Offset {
            group: r.str()?,
            topic: r.str()?,
            partition: r.i32()?,
        },
        2 => RecordKey::Group { group: r.str()? },
        version => {
            return Err(DecodeError::UnknownVersion {
                what: "key",
                version,
            })
        }
    };
    r.finish()?;
    Ok(key)
}

/// Decodes a committed offset (`OffsetCommitValue` v1 and v3).
pub fn decode_offset(buf: &Bytes) -> Result<OffsetValue, DecodeError> {
    let mut r = Reader::new(buf);
    let v = match r.i16()? {
        1 => {
            let offset = r.i64()?;
            let metadata = r.str()?;
            let commit_timestamp_ms = r.i64()?;
            let _expire_timestamp_ms = r.i64()?;
            OffsetValue {
                offset,
                leader_epoch: -1,
                metadata,
                commit_timestamp_ms,
            }
        }
        3 => OffsetValue {
            offset: r.i64()?,
            leader_epoch: r.i32()?,
            metadata: r.str()?,
            commit_timestamp_ms: r.i64()?,
        },
        version => {
            return Err(DecodeError::UnknownVersion {
                what: "offset value",
                version,
            })
        }
    };
    r.finish()?;
    Ok(v)
}

/// Decodes a group's metadata (`GroupMetadataValue` v3).
pub fn decode_group(buf: &Bytes) -> Result<GroupValue, DecodeError> {
    let mut r = Reader::new(buf);
    let version = r.i16()?;
    if version != GROUP_VALUE_VERSION {
        return Err(DecodeError::UnknownVersion {
            what: "group value",
            version,
        });
    }
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.opt_str()?;
    let leader = r.opt_str()?;
    let state_timestamp_ms = r.i64()?;
    let at = r.pos;
    let count = r.i32()?;
    let count = usize::try_from(count).map_err(|_| DecodeError::BadLength { len: count, at })?;
    // Each member takes at least 28 bytes, so the count cannot make us allocate more than
    // the record holds.
    let mut members = Vec::with_capacity(count.min(buf.len() / 28));
    for _ in 0..count {
        members.push(MemberValue {
            member_id: r.str()?,
            group_instance_id: r.opt_str()?,
            client_id: r.str()?,
            client_host: r.str()?,
            rebalance_timeout_ms: r.i32()?,
            session_timeout_ms: r.i32()?,
            subscription: r.bytes()?,
            assignment: r.bytes()?,
        });
    }
    r.finish()?;
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp_ms,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_value() -> GroupValue {
        GroupValue {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp_ms: 1234,
            members: vec![MemberValue {
                member_id: "m1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"assign"),
            }],
        }
    }

    #[test]
    fn round_trips() {
        let k = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        assert_eq!(decode_key(&encode_key(&k)).unwrap(), k);
        let k = RecordKey::Group { group: "g".into() };
        assert_eq!(decode_key(&encode_key(&k)).unwrap(), k);
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 5,
            metadata: "meta".into(),
            commit_timestamp_ms: 99,
        };
        assert_eq!(decode_offset(&encode_offset(&v)).unwrap(), v);
        let g = group_value();
        assert_eq!(decode_group(&encode_group(&g)).unwrap(), g);
    }

    #[test]
    fn kafka_layout_of_offset_key() {
        let k = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 1,
        };
        assert_eq!(
            &encode_key(&k)[..],
            &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 1]
        );
    }

    #[test]
    fn every_prefix_fails_cleanly() {
        let full = encode_group(&group_value());
        for n in 0..full.len() {
            assert!(decode_group(&full.slice(..n)).is_err());
        }
        let huge_count = {
            let mut b = BytesMut::from(&full[..]);
            // members count sits after version(2)+"consumer"(10)+gen(4)+"range"(7)+"m1"(4)+ts(8)
            b[35..39].copy_from_slice(&i32::MAX.to_be_bytes());
            b.freeze()
        };
        assert!(decode_group(&huge_count).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let b = Bytes::from(raw);
            let _ = decode_key(&b);
            let _ = decode_offset(&b);
            let _ = decode_group(&b);
        }
    }
}
