//! The partitions this broker holds replicas of, and how metadata turns into roles.
//!
//! - [`partition`]: one replica: log, role, epochs; append and read.
//! - [`replica`]: the leader's replication bookkeeping (follower LEOs, HW, ISR) as a pure
//!   state machine.
//! - [`log_config`]: topic configs mapped onto the log's settings.
//!
//! [`PartitionManager::apply_image`] reconciles the replicas with a metadata image: it opens
//! (or creates) `<data>/<topic>-<partition>/` for every partition that lists this broker
//! as a replica, applies the partition state (leader or follower at the leader epoch), and
//! retires the replicas of removed topics: their directories are renamed to
//! `<topic>-<partition>.<unique>-delete` at once and removed by the [`deleter`] thread.
//!
//! Each partition directory holds `partition.metadata` with its topic id (as Kafka does), so
//! a log left by a deleted topic is never reopened for a new topic of the same name, and
//! directories of topics deleted while the broker was down are removed once the broker has
//! caught up with the metadata log.

pub mod deleter;
pub mod log_config;
#[allow(clippy::module_inception)]
pub mod partition;
pub mod replica;

pub use partition::{
    Appended, FollowerFetch, FollowerView, IsrChange, Partition, PartitionError, Positions,
    ReadResult, Reader, Role,
};

use deleter::Deleter;
use protocol::control::MetadataImage;
use protocol::ids::TopicId;
use protocol::ids::{BrokerId, TopicPartition};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use storage::{LogConfig, LogError, PartitionLog, RetiredDir};

/// The file naming a partition directory's topic id.
pub const PARTITION_METADATA: &str = "partition.metadata";

/// The topic id recorded in a partition directory, if any.
fn recorded_topic_id(dir: &Path) -> Option<TopicId> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id: "))
        .and_then(|id| uuid::Uuid::parse_str(id.trim()).ok())
        .map(TopicId)
}

fn write_topic_id(dir: &Path, id: TopicId) -> std::io::Result<()> {
    let tmp = dir.join(format!("{PARTITION_METADATA}.tmp"));
    std::fs::write(&tmp, format!("version: 0\ntopic_id: {}\n", id.0))?;
    std::fs::rename(&tmp, dir.join(PARTITION_METADATA))
}

/// Opens the log of a partition of topic `id`, first retiring a directory left by another
/// topic of the same name.
fn open_log(
    dir: &Path,
    name: &str,
    id: TopicId,
    config: LogConfig,
    deleter: &Deleter,
) -> Result<PartitionLog, LogError> {
    if let Some(old) = recorded_topic_id(dir).filter(|old| *old != id) {
        tracing::info!(
            "{name}: {} holds topic id {old}, not {id}; deleting it",
            dir.display()
        );
        deleter.delete(storage::retire_dir(dir)?);
    }
    let log = PartitionLog::open(dir, name, config)?;
    if recorded_topic_id(dir) != Some(id) {
        write_topic_id(dir, id).map_err(|source| LogError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(log)
}

/// All replicas on this broker.
#[derive(Debug)]
pub struct PartitionManager {
    self_id: BrokerId,
    data_dir: PathBuf,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Whether stray directories were looked for (once, when first caught up).
    swept: AtomicBool,
    deleter: Deleter,
}

impl PartitionManager {
    /// Replicas kept under `data_dir`; directories retired before a restart are queued for
    /// deletion at once.
    pub fn new(self_id: BrokerId, data_dir: PathBuf) -> Self {
        let deleter = Deleter::start();
        for entry in std::fs::read_dir(&data_dir).into_iter().flatten().flatten() {
            if storage::is_retired_dir_name(&entry.file_name().to_string_lossy()) {
                deleter.delete(RetiredDir::found(entry.path()));
            }
        }
        Self {
            self_id,
            data_dir,
            partitions: RwLock::new(HashMap::new()),
            swept: AtomicBool::new(false),
            deleter,
        }
    }

    /// The replica of `topic`/`partition`, if this broker holds one.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let tp = TopicPartition::new(topic, partition);
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tp)
            .cloned()
    }

    /// Every replica (for housekeeping).
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Makes the replicas match `image`. Blocking (opens and deletes files). `caught_up`:
    /// the image is at the controllers' committed offset, so a directory it does not
    /// explain belongs to a deleted topic or a moved replica.
    pub fn apply_image(&self, image: &MetadataImage, now_ms: i64, caught_up: bool) {
        let mut wanted: HashMap<TopicPartition, _> = HashMap::new();
        for topic in image.topics.values() {
            for (idx, state) in &topic.partitions {
                if state.replicas.contains(&self.self_id) {
                    wanted.insert(
                        TopicPartition::new(topic.name.clone(), idx.0),
                        (topic, state),
                    );
                }
            }
        }
        // Replicas no longer assigned here (topic removed, recreated, or moved) leave the map
        // first and are retired without its lock: closing a log waits for an append in
        // progress, and every request looks its partition up in the map. A recreated topic's
        // new log opens in the same directory, so only after the old one is renamed away.
        let gone: Vec<(TopicPartition, Arc<Partition>)> = {
            let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<TopicPartition> = map
                .iter()
                .filter(|(tp, p)| wanted.get(*tp).is_none_or(|(t, _)| t.id != p.topic_id))
                .map(|(tp, _)| tp.clone())
                .collect();
            gone.into_iter()
                .filter_map(|tp| map.remove(&tp).map(|p| (tp, p)))
                .collect()
        };
        for (tp, p) in gone {
            tracing::info!("{tp}: replica removed (topic deleted or reassigned); deleting its log");
            if let Some(dir) = p.retire() {
                self.deleter.delete(dir);
            }
        }
        let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        for (tp, (topic, state)) in wanted {
            if let Some(p) = map.get(&tp) {
                if let Some(change) = p.apply_state(state, &topic.configs, now_ms) {
                    tracing::info!("{change}");
                }
                continue;
            }
            let dir = self
                .data_dir
                .join(format!("{}-{}", tp.topic, tp.partition.0));
            let name = tp.to_string();
            match open_log(
                &dir,
                &name,
                topic.id,
                log_config::log_config(&topic.configs),
                &self.deleter,
            ) {
                Ok(log) => {
                    let p = Partition::new(
                        self.self_id,
                        tp.clone(),
                        log,
                        state,
                        &topic.configs,
                        now_ms,
                    );
                    tracing::info!(
                        "{tp}: replica opened (leader {:?}, epoch {})",
                        state.leader.map(|l| l.0),
                        state.leader_epoch
                    );
                    map.insert(tp, Arc::new(p));
                }
                Err(e) => tracing::error!("{tp}: cannot open the log in {}: {e}", dir.display()),
            }
        }
        drop(map);
        if caught_up && !self.swept.swap(true, Ordering::SeqCst) {
            self.sweep_strays(image);
        }
    }

    /// Once caught up: deletes partition directories (those with `partition.metadata`)
    /// that the image does not assign to this broker.
    fn sweep_strays(&self, image: &MetadataImage) {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        let open: HashSet<String> = map
            .keys()
            .map(|tp| format!("{}-{}", tp.topic, tp.partition.0))
            .collect();
        drop(map);
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if open.contains(&name) || !dir.is_dir() || storage::is_retired_dir_name(&name) {
                continue;
            }
            let Some(id) = recorded_topic_id(&dir) else {
                continue;
            };
            let assigned = name
                .rsplit_once('-')
                .and_then(|(_, p)| p.parse().ok())
                .is_some_and(|p| {
                    image
                        .partition(id, protocol::ids::PartitionIndex(p))
                        .is_some_and(|s| s.replicas.contains(&self.self_id))
                });
            if !assigned {
                tracing::info!(
                    "{name}: topic {id} is gone or the replica moved; deleting {}",
                    dir.display()
                );
                match storage::retire_dir(&dir) {
                    Ok(retired) => self.deleter.delete(retired),
                    Err(e) => tracing::warn!("{name}: cannot delete {}: {e}", dir.display()),
                }
            }
        }
    }

    /// Closes every log cleanly (shutdown).
    pub fn close_all(&self) {
        let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        for (_, p) in map.drain() {
            p.close();
        }
    }

    /// Periodic log maintenance on every replica.
    pub fn tick(&self, now_ms: i64) {
        for p in self.all() {
            p.tick(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::control::{MetadataRecord, PartitionState};
    use protocol::ids::{LeaderEpoch, MetadataOffset, PartitionEpoch, PartitionIndex};

    fn image(topic: &str, id: TopicId, replicas: Vec<BrokerId>) -> MetadataImage {
        let mut img = MetadataImage::new("c");
        img.apply_batch(
            MetadataOffset(1),
            &[
                MetadataRecord::Topic {
                    name: topic.into(),
                    topic_id: id,
                },
                MetadataRecord::Partition(PartitionState {
                    topic_id: id,
                    partition: PartitionIndex(0),
                    isr: replicas.clone(),
                    leader: replicas.first().copied(),
                    replicas,
                    leader_epoch: LeaderEpoch(0),
                    partition_epoch: PartitionEpoch(0),
                }),
            ],
        );
        img
    }

    fn append(m: &PartitionManager) -> Offset {
        let p = m.get("t", 0).unwrap();
        let batch = storage::batch::build_test_batch(0, 0, 3, 1_000, b"abc");
        p.append_as_leader(&batch, 1_000).unwrap().last_offset
    }

    use protocol::ids::Offset;

    #[test]
    fn a_recreated_topic_never_reopens_the_old_log() {
        let dir = tempfile::tempdir().unwrap();
        let me = BrokerId(1);
        let (a, b) = (TopicId::random(), TopicId::random());
        let m = PartitionManager::new(me, dir.path().to_path_buf());
        m.apply_image(&image("t", a, vec![me]), 0, true);
        assert_eq!(append(&m), Offset(2));
        m.close_all();
        // Restart: the topic was deleted and recreated meanwhile.
        let m = PartitionManager::new(me, dir.path().to_path_buf());
        m.apply_image(&image("t", b, vec![me]), 0, true);
        assert_eq!(recorded_topic_id(&dir.path().join("t-0")), Some(b));
        assert_eq!(append(&m), Offset(2), "the new topic's log starts empty");
    }

    #[test]
    fn deleting_a_replica_does_not_hold_up_the_other_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let me = BrokerId(1);
        let (t, u) = (TopicId::random(), TopicId::random());
        let mut both = image("t", t, vec![me]);
        both.apply_batch(
            MetadataOffset(2),
            &[
                MetadataRecord::Topic {
                    name: "u".into(),
                    topic_id: u,
                },
                MetadataRecord::Partition(PartitionState {
                    topic_id: u,
                    partition: PartitionIndex(0),
                    isr: vec![me],
                    leader: Some(me),
                    replicas: vec![me],
                    leader_epoch: LeaderEpoch(0),
                    partition_epoch: PartitionEpoch(0),
                }),
            ],
        );
        let m = Arc::new(PartitionManager::new(me, dir.path().to_path_buf()));
        m.apply_image(&both, 0, true);
        // An append to t-0 in its write holds the writer lock, so t-0's deletion waits.
        let t0 = m.get("t", 0).unwrap();
        let writing = t0.hold_writer_lock();
        let deleter = {
            let m = m.clone();
            let only_u = image("u", u, vec![me]);
            std::thread::spawn(move || m.apply_image(&only_u, 0, true))
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let looker = {
            let m = m.clone();
            std::thread::spawn(move || {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while m.get("t", 0).is_some() && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                let _ = tx.send(m.get("u", 0).is_some());
            })
        };
        let other_reachable = rx.recv_timeout(std::time::Duration::from_secs(10));
        drop(writing);
        deleter.join().unwrap();
        looker.join().unwrap();
        assert_eq!(
            other_reachable,
            Ok(true),
            "u-0 was reachable while t-0's deletion waited"
        );
        assert!(!dir.path().join("t-0").exists());
        assert!(m.get("u", 0).is_some());
        assert_eq!(
            retired_dirs_left(dir.path()),
            0,
            "deleted in the background"
        );
    }

    /// The retired directories under `data` once the deleter has had up to 30 s for them.
    fn retired_dirs_left(data: &Path) -> usize {
        let count = || {
            std::fs::read_dir(data)
                .unwrap()
                .flatten()
                .filter(|e| storage::is_retired_dir_name(&e.file_name().to_string_lossy()))
                .count()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        count()
    }

    #[test]
    fn a_deleted_topic_is_renamed_at_once_and_a_directory_retired_before_a_restart_goes_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let me = BrokerId(1);
        let m = PartitionManager::new(me, dir.path().to_path_buf());
        m.apply_image(&image("t", TopicId::random(), vec![me]), 0, true);
        append(&m);
        let p = m.get("t", 0).unwrap();
        let retired = p.retire().unwrap();
        assert!(!dir.path().join("t-0").exists(), "renamed at once");
        assert!(retired.path().join(PARTITION_METADATA).exists());
        drop(m);
        // As if the broker stopped before the deleter got to it.
        let m = PartitionManager::new(me, dir.path().to_path_buf());
        assert_eq!(retired_dirs_left(dir.path()), 0);
        assert!(!retired.path().exists());
        // A topic recreated under the same name starts on an empty log.
        m.apply_image(&image("t", TopicId::random(), vec![me]), 0, true);
        assert_eq!(append(&m), Offset(2), "the new topic's log starts empty");
    }

    #[test]
    fn directories_of_deleted_topics_are_swept_once_caught_up() {
        let dir = tempfile::tempdir().unwrap();
        let me = BrokerId(1);
        let m = PartitionManager::new(me, dir.path().to_path_buf());
        m.apply_image(&image("t", TopicId::random(), vec![me]), 0, true);
        m.close_all();
        std::fs::create_dir_all(dir.path().join("unrelated")).unwrap();
        let m = PartitionManager::new(me, dir.path().to_path_buf());
        let other = image("u", TopicId::random(), vec![BrokerId(2)]);
        m.apply_image(&other, 0, false);
        assert!(
            dir.path().join("t-0").exists(),
            "not swept before catching up"
        );
        m.apply_image(&other, 0, true);
        assert!(!dir.path().join("t-0").exists());
        assert!(dir.path().join("unrelated").exists());
    }
}
