//! The Raft state machine: the metadata image (held by the [`Feed`]) plus the last applied
//! log id and membership, with snapshots on disk.
//!
//! The image is not persisted on every apply; instead a snapshot is built every
//! `--snapshot-every` entries and written atomically (`snapshot`: one checksummed frame of
//! meta + image). On start the image is rebuilt from the snapshot and openraft re-applies
//! the committed log after it.

use super::frame_file;
use super::{Applied, LogId, StorageError, TypeConfig};
use crate::feed::Feed;
use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use protocol::control::codec::{decode_value, encode_value};
use protocol::control::MetadataImage;
use serde::{Deserialize, Serialize};
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

type Meta = SnapshotMeta<u64, BasicNode>;
type Membership = StoredMembership<u64, BasicNode>;

/// What the snapshot file holds.
#[derive(Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: Meta,
    /// The encoded [`MetadataImage`].
    data: Vec<u8>,
}

/// The metadata state machine.
#[derive(Debug)]
pub struct StateMachine {
    snapshot_path: PathBuf,
    feed: Arc<Feed>,
    last_applied: Option<LogId>,
    last_membership: Membership,
    snapshot_seq: Arc<AtomicU64>,
}

/// Builds a snapshot from a copy of the state taken when it was requested.
#[derive(Debug)]
pub struct SnapshotBuilder {
    snapshot_path: PathBuf,
    image: MetadataImage,
    last_applied: Option<LogId>,
    last_membership: Membership,
    seq: u64,
}

fn read_snapshot(path: &Path) -> io::Result<Option<StoredSnapshot>> {
    match frame_file::read_single(path)? {
        Some(bytes) => decode_value(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        None => Ok(None),
    }
}

fn write_snapshot(path: &Path, snap: &StoredSnapshot) -> io::Result<()> {
    let bytes = encode_value(snap)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    frame_file::write_single(path, &bytes)
}

/// Decodes a snapshot's image, also one an older build wrote (see [`MetadataImage::decode`]).
fn decode_image(data: &[u8]) -> io::Result<MetadataImage> {
    MetadataImage::decode(data)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

impl StateMachine {
    /// Opens the state machine in `dir`, loading the snapshot into `feed` if there is one.
    pub fn open(dir: &Path, feed: Arc<Feed>) -> io::Result<StateMachine> {
        std::fs::create_dir_all(dir)?;
        let snapshot_path = dir.join("snapshot");
        let mut sm = StateMachine {
            snapshot_path,
            feed,
            last_applied: None,
            last_membership: Membership::default(),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
        };
        if let Some(snap) = read_snapshot(&sm.snapshot_path)? {
            let image = decode_image(&snap.data)?;
            tracing::info!(offset = image.offset.0, "loaded metadata snapshot");
            sm.feed.reset(image);
            sm.last_applied = snap.meta.last_log_id;
            sm.last_membership = snap.meta.last_membership;
        }
        Ok(sm)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let data =
            encode_value(&self.image).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, self.seq),
            None => format!("none-{}", self.seq),
        };
        let meta = Meta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        super::disk::blocking("snapshot", || write_snapshot(&self.snapshot_path, &stored))
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        tracing::info!(offset = self.image.offset.0, "wrote metadata snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            match &entry.payload {
                EntryPayload::Blank => self.feed.apply(index, None),
                EntryPayload::Normal(batch) => self.feed.apply(index, Some(batch)),
                EntryPayload::Membership(m) => {
                    self.last_membership = Membership::new(Some(entry.log_id), m.clone());
                    self.feed.apply(index, None);
                }
            }
            self.last_applied = Some(entry.log_id);
            out.push(Applied { offset: index });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            snapshot_path: self.snapshot_path.clone(),
            image: self.feed.image(),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            seq: self.snapshot_seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut image = decode_image(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        if let Some(l) = meta.last_log_id {
            image.offset = protocol::ids::MetadataOffset(l.index);
        }
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        super::disk::blocking("snapshot", || write_snapshot(&self.snapshot_path, &stored))
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        tracing::info!(
            offset = image.offset.0,
            "installed metadata snapshot from the leader"
        );
        self.feed.reset(image);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let snap = read_snapshot(&self.snapshot_path)
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(snap.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
