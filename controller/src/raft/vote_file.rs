//! The durable Raft vote: two fixed slots overwritten in turn, one `fdatasync` per save.
//!
//! Every election saves a vote on the candidate and on each voter before it can finish, and
//! openraft counts that time against the election timeout. Replacing a file atomically
//! (temp file, fsync, rename, fsync of the directory) costs two or three device flushes;
//! under a busy disk each one can take hundreds of milliseconds, and elections that outlast
//! the timeout start over at a higher term without end. So the vote lives in a file of two
//! [`SLOT_BYTES`] slots. A save writes the slot the previous save did not use, in place, and
//! `fdatasync`s it: the file's size and blocks never change, so only that block and the
//! flush go to the device. Each slot is a checksummed frame holding a sequence number and
//! the vote; reading takes the valid slot with the higher number, so a save torn by a crash
//! leaves the previous vote (the last one a save returned for) in the other slot.
//!
//! A `vote` file in the older single-frame format is read as such and rewritten in slots
//! on the next save.

use super::frame_file;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes per slot (a vote frame is about 40 bytes).
pub const SLOT_BYTES: usize = 256;
const FILE_BYTES: usize = 2 * SLOT_BYTES;

/// The vote file of one controller.
#[derive(Debug)]
pub struct VoteFile {
    path: PathBuf,
    /// Open once the file has the slot layout.
    file: Option<File>,
    /// Sequence number of the last saved vote (0: none in slots).
    seq: u64,
}

/// One slot's bytes holding `payload` under sequence number `seq`.
fn slot(seq: u64, payload: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(8 + payload.len());
    body.extend_from_slice(&seq.to_le_bytes());
    body.extend_from_slice(payload);
    let mut out = Vec::with_capacity(SLOT_BYTES);
    frame_file::put(&mut out, &body);
    if out.len() > SLOT_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a vote of {} bytes does not fit a slot", payload.len()),
        ));
    }
    out.resize(SLOT_BYTES, 0);
    Ok(out)
}

/// The sequence number and payload in `bytes` (one slot), if it holds a valid frame.
fn parse_slot(bytes: &[u8]) -> Option<(u64, Vec<u8>)> {
    let (frames, _) = frame_file::split(bytes);
    let body = frames.first()?;
    let seq = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
    Some((seq, body[8..].to_vec()))
}

impl VoteFile {
    /// Opens the vote file at `path` and reads the saved vote's payload (`None`: no vote
    /// was ever saved). A file with no valid slot, or an old-format file that does not
    /// check, is an error naming the file.
    pub fn open(path: &Path) -> io::Result<(VoteFile, Option<Vec<u8>>)> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let vf = VoteFile {
                    path: path.to_path_buf(),
                    file: None,
                    seq: 0,
                };
                return Ok((vf, None));
            }
            Err(e) => return Err(e),
        };
        if bytes.len() != FILE_BYTES {
            // The older format: one frame, replaced atomically.
            let payload = frame_file::read_single(path)?;
            let vf = VoteFile {
                path: path.to_path_buf(),
                file: None,
                seq: 0,
            };
            return Ok((vf, payload));
        }
        let best = [&bytes[..SLOT_BYTES], &bytes[SLOT_BYTES..]]
            .into_iter()
            .filter_map(parse_slot)
            .max_by_key(|(seq, _)| *seq);
        let Some((seq, payload)) = best else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is corrupt: neither vote slot checks", path.display()),
            ));
        };
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let vf = VoteFile {
            path: path.to_path_buf(),
            file: Some(file),
            seq,
        };
        Ok((vf, Some(payload)))
    }

    /// Saves `payload` durably: returns once it is on disk.
    pub fn save(&mut self, payload: &[u8]) -> io::Result<()> {
        let seq = self.seq + 1;
        let bytes = slot(seq, payload)?;
        match &self.file {
            Some(f) => {
                let at = (seq % 2) as usize * SLOT_BYTES;
                f.write_all_at(&bytes, at as u64)?;
                f.sync_data()?;
            }
            None => {
                // First save (or an old-format file): lay out both slots atomically, once.
                let mut image = vec![0u8; FILE_BYTES];
                let at = (seq % 2) as usize * SLOT_BYTES;
                image[at..at + SLOT_BYTES].copy_from_slice(&bytes);
                frame_file::write_atomic(&self.path, &image)?;
                self.file = Some(OpenOptions::new().read(true).write(true).open(&self.path)?);
            }
        }
        self.seq = seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    #[test]
    fn saves_alternate_slots_and_reopen_reads_the_latest() {
        let d = dir();
        let path = d.path().join("vote");
        let (mut vf, none) = VoteFile::open(&path).unwrap();
        assert!(none.is_none());
        for i in 0..5u8 {
            vf.save(&[i; 20]).unwrap();
            let (_, got) = VoteFile::open(&path).unwrap();
            assert_eq!(got, Some(vec![i; 20]));
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), FILE_BYTES as u64);
    }

    #[test]
    fn a_torn_save_leaves_the_previous_vote() {
        let d = dir();
        let path = d.path().join("vote");
        let (mut vf, _) = VoteFile::open(&path).unwrap();
        vf.save(b"first").unwrap();
        vf.save(b"second").unwrap();
        // A crash tore the third save: its slot (the first one's) holds garbage.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = SLOT_BYTES; // the third save (odd sequence number) goes to slot 1
        bytes[at + 10] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (mut vf, got) = VoteFile::open(&path).unwrap();
        assert_eq!(got.as_deref(), Some(&b"second"[..]));
        // Saving again goes on from the surviving sequence number.
        vf.save(b"third").unwrap();
        assert_eq!(
            VoteFile::open(&path).unwrap().1.as_deref(),
            Some(&b"third"[..])
        );
    }

    #[test]
    fn both_slots_corrupt_is_an_error_naming_the_file() {
        let d = dir();
        let path = d.path().join("vote");
        std::fs::write(&path, vec![7u8; FILE_BYTES]).unwrap();
        let err = VoteFile::open(&path).unwrap_err();
        assert!(err.to_string().contains("vote"), "{err}");
    }

    #[test]
    fn the_old_single_frame_format_is_read_and_replaced() {
        let d = dir();
        let path = d.path().join("vote");
        frame_file::write_single(&path, b"legacy").unwrap();
        let (mut vf, got) = VoteFile::open(&path).unwrap();
        assert_eq!(got.as_deref(), Some(&b"legacy"[..]));
        vf.save(b"new").unwrap();
        assert_eq!(
            VoteFile::open(&path).unwrap().1.as_deref(),
            Some(&b"new"[..])
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), FILE_BYTES as u64);
    }

    #[test]
    fn an_oversized_vote_is_refused() {
        let d = dir();
        let (mut vf, _) = VoteFile::open(&d.path().join("vote")).unwrap();
        assert!(vf.save(&[0u8; SLOT_BYTES]).is_err());
    }
}
