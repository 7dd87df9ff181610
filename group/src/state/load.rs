//! Partition leadership: loading a `__consumer_offsets` partition, resigning it, and
//! the compaction snapshot of its live records.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tracing::{debug, warn};

use super::{GroupStateMachine, PartitionStatus};
use crate::codec::{self, RecordKey};
use crate::group::Group;

impl GroupStateMachine {
    // ---- partition leadership -------------------------------------------------------

    /// This broker became leader of `partition`: its groups answer
    /// COORDINATOR_LOAD_IN_PROGRESS until [`Self::finish_load`] with the returned id.
    pub fn begin_load(&mut self, partition: i32) -> u64 {
        self.drop_partition(partition);
        let id = self.next_id();
        self.partitions
            .insert(partition, PartitionStatus::Loading(id));
        id
    }

    /// Builds the groups of `partition` from every record of it, latest value winning and
    /// tombstones deleting. Ignored (false) if the load was superseded by a resign or a
    /// newer load.
    pub fn finish_load(
        &mut self,
        partition: i32,
        load_id: u64,
        records: Vec<(Bytes, Option<Bytes>)>,
        now_ms: i64,
    ) -> bool {
        if self.partitions.get(&partition) != Some(&PartitionStatus::Loading(load_id)) {
            return false;
        }
        let mut latest: HashMap<RecordKey, Option<Bytes>> = HashMap::new();
        for (k, v) in records {
            match codec::decode_key(&k) {
                Ok(key) => {
                    latest.insert(key, v);
                }
                Err(e) => {
                    warn!(partition, error = %e, "skipping undecodable __consumer_offsets key")
                }
            }
        }
        let mut groups: HashMap<String, Group> = HashMap::new();
        // Group records first, so offsets attach to the loaded group.
        for (key, value) in &latest {
            let (RecordKey::Group { group }, Some(v)) = (key, value) else {
                continue;
            };
            match codec::decode_group(v) {
                Ok(gv) => {
                    let mut g = Group::from_value(group.clone(), partition, gv, now_ms);
                    g.persisted = Some(v.clone());
                    groups.insert(group.clone(), g);
                }
                Err(e) => warn!(partition, group, error = %e, "skipping undecodable group record"),
            }
        }
        for (key, value) in latest {
            let (
                RecordKey::Offset {
                    group,
                    topic,
                    partition: tp,
                },
                Some(v),
            ) = (key, value)
            else {
                continue;
            };
            match codec::decode_offset(&v) {
                Ok(ov) => {
                    groups
                        .entry(group.clone())
                        .or_insert_with(|| Group::new(group, partition, ov.commit_timestamp_ms))
                        .offsets
                        .insert((topic, tp), ov);
                }
                Err(e) => warn!(partition, group, error = %e, "skipping undecodable offset record"),
            }
        }
        debug!(
            partition,
            groups = groups.len(),
            "loaded __consumer_offsets partition"
        );
        for (id, g) in groups {
            if self.partition_of(&id) == partition {
                self.groups.insert(id, g);
            } else {
                warn!(
                    partition,
                    group = id,
                    "group record in the wrong partition; skipped"
                );
            }
        }
        self.partitions.insert(partition, PartitionStatus::Loaded);
        true
    }

    /// The load of `partition` failed: stop answering for it.
    pub fn fail_load(&mut self, partition: i32, load_id: u64) {
        if self.partitions.get(&partition) == Some(&PartitionStatus::Loading(load_id)) {
            self.partitions.remove(&partition);
        }
    }

    /// This broker no longer leads `partition`: forget its groups; their waiting requests
    /// get NOT_COORDINATOR.
    pub fn resign(&mut self, partition: i32) {
        self.drop_partition(partition);
        self.partitions.remove(&partition);
    }

    fn drop_partition(&mut self, partition: i32) {
        let ids: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.partition == partition)
            .map(|g| g.id.clone())
            .collect();
        let code = ResponseError::NotCoordinator.code();
        for id in ids {
            if let Some(mut g) = self.groups.remove(&id) {
                let members: Vec<String> = g.members.keys().cloned().collect();
                for m in members {
                    self.fail_member_waiters(&mut g, &m, code);
                }
            }
        }
    }

    /// Every live record of `partition`: the latest value of each key, including writes
    /// still in flight. Appending these records and then deleting everything before them
    /// leaves an equivalent log (see the crate docs on compaction).
    pub fn compaction_snapshot(&self, partition: i32) -> Vec<(Bytes, Bytes)> {
        let mut live: BTreeMap<Bytes, Option<Bytes>> = BTreeMap::new();
        for g in self.groups.values().filter(|g| g.partition == partition) {
            if let Some(v) = &g.persisted {
                let key = codec::encode_key(&RecordKey::Group {
                    group: g.id.clone(),
                });
                live.insert(key, Some(v.clone()));
            }
            for ((topic, p), v) in &g.offsets {
                let key = RecordKey::Offset {
                    group: g.id.clone(),
                    topic: topic.clone(),
                    partition: *p,
                };
                live.insert(codec::encode_key(&key), Some(codec::encode_offset(v)));
            }
        }
        for w in self
            .pending_writes
            .values()
            .filter(|w| w.partition == partition)
        {
            for (k, v) in &w.records {
                live.insert(k.clone(), v.clone());
            }
        }
        live.into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }
}
