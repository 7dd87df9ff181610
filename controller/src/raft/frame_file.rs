//! Checksummed frames for the controller's own files (Raft log, vote, snapshot).
//!
//! A frame is `len: u32 LE`, `crc32: u32 LE` (crc32fast over the payload), then `len`
//! payload bytes. Reading stops at the first frame that is short or whose checksum does not
//! match: that is a torn tail from a crash during an append, and the caller truncates it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Header bytes before each payload.
pub const HEADER_BYTES: usize = 8;
/// Largest payload accepted when reading (a corrupt length cannot make us allocate more).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024 * 1024;

/// Appends one frame holding `payload` to `out`.
pub fn put(out: &mut Vec<u8>, payload: &[u8]) {
    assert!(
        payload.len() <= MAX_PAYLOAD_BYTES,
        "frame payload too large to write"
    );
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Splits `bytes` into whole, valid frames. Returns the payloads and the length of the
/// valid prefix (everything after it is a torn or corrupt tail).
pub fn split(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut frames = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= HEADER_BYTES {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len > MAX_PAYLOAD_BYTES || bytes.len() - pos - HEADER_BYTES < len {
            break;
        }
        let payload = &bytes[pos + HEADER_BYTES..pos + HEADER_BYTES + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        frames.push(payload);
        pos += HEADER_BYTES + len;
    }
    (frames, pos)
}

/// Writes `contents` to `path` atomically: a temp file, fsync, rename, fsync of the dir.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Fsyncs the directory holding `path`, so a rename or create survives a crash.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Writes one payload as a single-frame file, atomically.
pub fn write_single(path: &Path, payload: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(payload.len() + HEADER_BYTES);
    put(&mut out, payload);
    write_atomic(path, &out)
}

/// Reads a single-frame file: `Ok(None)` when absent, an error when corrupt.
pub fn read_single(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (frames, valid) = split(&bytes);
    if frames.len() != 1 || valid != bytes.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is corrupt (checksum or length mismatch)",
                path.display()
            ),
        ));
    }
    Ok(Some(frames[0].to_vec()))
}

/// Opens `path` for appending, creating it.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_and_corrupt_tails_are_cut() {
        let mut buf = Vec::new();
        put(&mut buf, b"one");
        put(&mut buf, b"two");
        let whole = buf.len();
        put(&mut buf, b"three");
        // Torn: the last frame lost its final byte.
        let (frames, valid) = split(&buf[..buf.len() - 1]);
        assert_eq!(frames, vec![&b"one"[..], &b"two"[..]]);
        assert_eq!(valid, whole);
        // Corrupt: a flipped payload bit fails the checksum.
        let last = buf.len() - 1;
        buf[last] ^= 1;
        assert_eq!(split(&buf).1, whole);
    }

    #[test]
    fn single_frame_files_roundtrip_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vote");
        assert_eq!(read_single(&p).unwrap(), None);
        write_single(&p, b"hello").unwrap();
        assert_eq!(read_single(&p).unwrap().unwrap(), b"hello");
        let mut bytes = fs::read(&p).unwrap();
        bytes[9] ^= 0xff;
        fs::write(&p, bytes).unwrap();
        assert!(read_single(&p).is_err());
    }
}
