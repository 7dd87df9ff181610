//! `gregor-storage`: the partition log — Kafka record batches (magic 2) stored byte for byte
//! in mmap-backed segment files, with sparse indexes, recovery, retention, truncation and
//! the leader-epoch checkpoint. No networking; the broker keeps each [`PartitionLog`] in a
//! `Mutex` and calls it from its request handlers, writing a leader append's bytes without
//! the lock ([`PreparedAppend`]).
//!
//! A partition directory (`<data>/<topic>-<partition>/`) holds:
//!
//! ```text
//! 00000000000000000000.log        record batches; the last segment is the active one,
//! 00000000000000000000.index      sized to segment.bytes as a sparse file and mapped rw;
//! 00000000000000000000.timeindex  older ones are trimmed and mapped read-only on demand
//! 00000000000000004711.log ...
//! 00000000000000004711.snapshot   producer state as of that offset (idempotence)
//! leader-epoch-checkpoint         (epoch, start offset) pairs
//! recovery-point                  segments below it are on disk (fsynced)
//! log-start-offset                set by DeleteRecords / truncate_fully_and_start_at
//! .clean-shutdown                 present only while cleanly closed
//! ```
//!
//! Files of this crate:
//! - [`log`](crate::PartitionLog): the log type, its offsets, `open` and recovery;
//!   `append.rs` (leader/follower appends, rolls), `read.rs` (zero-copy reads with the file
//!   range they lie in, for `sendfile`; timestamp lookup), `maintain.rs` (truncation, retention, flush, close).
//! - `prepared.rs`: leader appends in three steps (prepare and finish under the caller's
//!   lock, the `pwritev` between them without it), so reads go on while a write waits.
//! - `active.rs`: the active segment (file, map, index builder). Appends `pwritev` into the
//!   mapped file (measured: storing through the map was 3-7x slower here, see there); no
//!   blocks are allocated ahead (see there why).
//! - `segment.rs`: segment metadata, file names and the validating scan used by recovery.
//! - `index.rs`: the sparse offset and time indexes.
//! - `cache.rs`: the bounded LRU of read-only maps of older segments.
//! - `spare.rs`: the next segment file, allocated ahead without the log's lock (topic
//!   config `preallocate`).
//! - `trash.rs`: segments retention took out, deleted without the log's lock.
//! - `retire.rs`: whole log directories of deleted logs, renamed at once and deleted later
//!   in steps.
//! - `mmap.rs`: the only module with `unsafe` — maps with an immutable readable prefix and
//!   `Bytes` views that keep their map alive.
//! - `batch.rs`: v2 batch header parsing, validation (CRC-32C) and offset patching.
//! - `producers.rs`: idempotent producers' sequences per producer id, a pure state
//!   machine (duplicates, gaps, stale epochs); `producer_snapshots.rs`: its snapshot files
//!   and the replay that rebuilds it on open and truncation.
//! - `epoch.rs`: the leader-epoch cache; `checkpoint.rs`: atomically replaced small files.
//! - `config.rs`, `error.rs`: [`LogConfig`] and [`LogError`].

mod active;
mod append;
pub mod batch;
mod cache;
mod checkpoint;
mod config;
mod epoch;
mod error;
mod index;
mod log;
mod maintain;
mod mmap;
mod prepared;
mod producer_snapshots;
pub mod producers;
mod read;
mod retire;
mod segment;
mod spare;
mod trash;

pub use batch::{BatchError, BatchHeader};
pub use config::LogConfig;
pub use error::LogError;
pub use log::{AppendInfo, LogRead, PartitionLog, TimestampOffset};
pub use maintain::PendingSync;
pub use prepared::PreparedAppend;
pub use producers::{ProducerStates, SequenceError};
pub use read::FileRange;
pub use retire::{is_retired_dir_name, retire_dir, RetiredDir};
pub use spare::{Spare, SpareRequest};
pub use trash::Trash;
