//! The durable Raft log and vote.
//!
//! `raft.log` is an append-only sequence of checksummed frames ([`super::frame_file`]),
//! each holding one [`LogOp`]: an appended entry, a truncation, or a purge marker. Opening
//! replays the ops into an in-memory map (the metadata log is small) and cuts a torn tail.
//! A purge rewrites the file atomically with only the surviving entries, which bounds its
//! size. `vote` is a [`super::vote_file`] (two slots, one `fdatasync` per save). Every write
//! is on disk before `save_vote` returns and before the append callback fires.

use super::frame_file;
use super::vote_file::VoteFile;
use super::{LogId, StorageError, TypeConfig};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};
use protocol::control::codec::{decode_value, encode_value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::File;
use std::io::{self, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One durable change to the log.
#[derive(Debug, Serialize, Deserialize)]
enum LogOp {
    Append(Entry<TypeConfig>),
    /// Remove entries with index >= this.
    TruncateFrom(u64),
    /// Entries up to and including this id are purged.
    PurgedUpTo(LogId),
}

#[derive(Debug, Default)]
struct LogData {
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId>,
}

impl LogData {
    fn apply(&mut self, op: LogOp) {
        match op {
            LogOp::Append(e) => {
                self.entries.insert(e.log_id.index, e);
            }
            LogOp::TruncateFrom(index) => {
                self.entries.split_off(&index);
            }
            LogOp::PurgedUpTo(id) => {
                self.entries = self.entries.split_off(&(id.index + 1));
                self.last_purged = Some(id);
            }
        }
    }

    fn read<RB: RangeBounds<u64>>(&self, range: RB) -> Vec<Entry<TypeConfig>> {
        self.entries.range(range).map(|(_, e)| e.clone()).collect()
    }
}

/// The Raft log and vote files of one controller.
#[derive(Debug)]
pub struct LogStore {
    log_path: PathBuf,
    vote_file: VoteFile,
    file: File,
    data: Arc<Mutex<LogData>>,
    vote: Option<Vote<u64>>,
}

/// A reader sharing the store's in-memory log (used by replication tasks).
#[derive(Debug, Clone)]
pub struct LogReader {
    data: Arc<Mutex<LogData>>,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn encode_op(op: &LogOp, out: &mut Vec<u8>) -> io::Result<()> {
    let payload = encode_value(op).map_err(io_err)?;
    frame_file::put(out, &payload);
    Ok(())
}

impl LogStore {
    /// Opens (or creates) the log and vote in `dir`, cutting a torn tail of the log.
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let log_path = dir.join("raft.log");
        let vote_path = dir.join("vote");
        let bytes = match std::fs::read(&log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let (frames, mut valid) = frame_file::split(&bytes);
        let mut data = LogData::default();
        let mut pos = 0;
        for payload in frames {
            match decode_value::<LogOp>(payload) {
                Ok(op) => data.apply(op),
                Err(_) => {
                    valid = pos;
                    break;
                }
            }
            pos += frame_file::HEADER_BYTES + payload.len();
        }
        if valid < bytes.len() {
            tracing::warn!(
                path = %log_path.display(),
                kept = valid,
                dropped = bytes.len() - valid,
                "raft log has a torn or corrupt tail; truncating it"
            );
            let f = std::fs::OpenOptions::new().write(true).open(&log_path)?;
            f.set_len(valid as u64)?;
            f.sync_all()?;
        }
        let file = frame_file::open_append(&log_path)?;
        frame_file::sync_dir(&log_path)?;
        let (vote_file, vote) = VoteFile::open(&vote_path)?;
        let vote = match vote {
            Some(b) => Some(decode_value(&b).map_err(io_err)?),
            None => None,
        };
        Ok(LogStore {
            log_path,
            vote_file,
            file,
            data: Arc::new(Mutex::new(data)),
            vote,
        })
    }

    fn data(&self) -> std::sync::MutexGuard<'_, LogData> {
        self.data.lock().expect("log mutex poisoned")
    }

    fn write_ops(&mut self, ops: &[LogOp]) -> io::Result<()> {
        let mut buf = Vec::new();
        for op in ops {
            encode_op(op, &mut buf)?;
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()
    }

    /// Rewrites the log file with only what survives, atomically.
    fn compact(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        {
            let data = self.data.lock().expect("log mutex poisoned");
            if let Some(p) = data.last_purged {
                encode_op(&LogOp::PurgedUpTo(p), &mut buf)?;
            }
            for e in data.entries.values() {
                encode_op(&LogOp::Append(e.clone()), &mut buf)?;
            }
        }
        frame_file::write_atomic(&self.log_path, &buf)?;
        self.file = frame_file::open_append(&self.log_path)?;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        Ok(self.data().read(range))
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        Ok(self.data.lock().expect("log mutex poisoned").read(range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let data = self.data();
        let last = data
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(data.last_purged);
        Ok(LogState {
            last_purged_log_id: data.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader {
            data: self.data.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let payload = encode_value(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        super::disk::blocking("vote", || self.vote_file.save(&payload))
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        Ok(self.vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let ops: Vec<LogOp> = entries.into_iter().map(LogOp::Append).collect();
        if let Err(e) = super::disk::blocking("log", || self.write_ops(&ops)) {
            let err = StorageIOError::write_logs(&e);
            callback.log_io_completed(Err(e));
            return Err(err.into());
        }
        let mut data = self.data();
        for op in ops {
            data.apply(op);
        }
        drop(data);
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let op = LogOp::TruncateFrom(log_id.index);
        super::disk::blocking("log", || self.write_ops(std::slice::from_ref(&op)))
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.data().apply(op);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.data().apply(LogOp::PurgedUpTo(log_id));
        super::disk::blocking("log", || self.compact())
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn write(store: &mut LogStore, ops: Vec<LogOp>) {
        store.write_ops(&ops).unwrap();
        for op in ops {
            store.data().apply(op);
        }
    }

    #[test]
    fn reopen_replays_and_cuts_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = LogStore::open(dir.path()).unwrap();
            write(
                &mut s,
                vec![
                    LogOp::Append(entry(1, 1)),
                    LogOp::Append(entry(1, 2)),
                    LogOp::Append(entry(1, 3)),
                ],
            );
            write(&mut s, vec![LogOp::TruncateFrom(3)]);
        }
        // Tear the last frame (the truncate op): it is lost, entry 3 comes back.
        let path = dir.path().join("raft.log");
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(
            s.data().entries.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        // The torn bytes were cut from the file.
        assert!(std::fs::metadata(&path).unwrap().len() < len - 2);
    }

    #[test]
    fn purge_compacts_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStore::open(dir.path()).unwrap();
        write(
            &mut s,
            (1..=10).map(|i| LogOp::Append(entry(1, i))).collect(),
        );
        s.data().apply(LogOp::PurgedUpTo(entry(1, 8).log_id));
        s.compact().unwrap();
        write(&mut s, vec![LogOp::Append(entry(2, 11))]);
        drop(s);
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(
            s.data().entries.keys().copied().collect::<Vec<_>>(),
            vec![9, 10, 11]
        );
        assert_eq!(s.data().last_purged.unwrap().index, 8);
    }
}
