//! Length-prefixed framing shared by the Kafka protocol and Gregor's control protocol.
//!
//! A frame is a big-endian `i32` size followed by that many bytes. The size is checked
//! against a limit *before* any buffer is allocated, so a hostile peer cannot make us
//! reserve memory it never sends.

use bytes::{Buf, BytesMut};

/// Why a frame could not be taken from the buffer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame size {size} is negative")]
    Negative { size: i32 },
    #[error("frame size {size} exceeds the limit of {max} bytes")]
    TooLarge { size: i32, max: usize },
}

/// Takes one whole frame body off the front of `buf`, if it holds one.
///
/// Returns `Ok(None)` when more bytes are needed. On `Ok(None)` the buffer is reserved to
/// hold the announced frame, which is bounded by `max_frame_bytes`.
pub fn take_frame(
    buf: &mut BytesMut,
    max_frame_bytes: usize,
) -> Result<Option<BytesMut>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::Negative { size });
    }
    let len = size as usize;
    if len > max_frame_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_bytes,
        });
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len)))
}

/// Appends `body` to `out` as one frame.
pub fn put_frame(out: &mut BytesMut, body: &[u8]) {
    out.reserve(4 + body.len());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_then_whole() {
        let mut buf = BytesMut::new();
        put_frame(&mut buf, b"hello");
        let mut part = buf.split_to(6);
        assert_eq!(take_frame(&mut part, 100).unwrap(), None);
        part.unsplit(buf);
        assert_eq!(&take_frame(&mut part, 100).unwrap().unwrap()[..], b"hello");
        assert!(part.is_empty());
    }

    #[test]
    fn oversized_and_negative_are_refused_before_allocation() {
        let mut buf = BytesMut::from(&i32::MAX.to_be_bytes()[..]);
        assert_eq!(
            take_frame(&mut buf, 1024),
            Err(FrameError::TooLarge {
                size: i32::MAX,
                max: 1024
            })
        );
        assert!(buf.capacity() < 1024);
        let mut buf = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert_eq!(
            take_frame(&mut buf, 1024),
            Err(FrameError::Negative { size: -5 })
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(bytes: Vec<u8>) {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = take_frame(&mut buf, 4096) {}
        }
    }
}
