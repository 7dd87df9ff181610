//! OffsetFetch (key 9, v1-7): the committed offsets of a group, for the listed partitions
//! or (v2+, `topics` null) for all of them. Partitions without a commit get offset -1.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::sb;
use crate::codec::OffsetValue;
use crate::state::GroupStateMachine;

fn partition(index: i32, v: Option<&OffsetValue>, code: i16) -> OffsetFetchResponsePartition {
    let mut p = OffsetFetchResponsePartition::default();
    p.partition_index = index;
    p.committed_offset = v.map_or(-1, |v| v.offset);
    p.committed_leader_epoch = v.map_or(-1, |v| v.leader_epoch);
    p.metadata = Some(v.map_or_else(StrBytes::new, |v| sb(&v.metadata)));
    p.error_code = code;
    p
}

impl GroupStateMachine {
    /// Handles OffsetFetch; always answers at once.
    pub fn handle_offset_fetch(
        &mut self,
        _now_ms: i64,
        version: i16,
        req: &OffsetFetchRequest,
    ) -> OffsetFetchResponse {
        let mut r = OffsetFetchResponse::default();
        let group_id = req.group_id.as_str();
        // v1 has no top-level error code: the error goes on every requested partition.
        let code = self.check(group_id).err().unwrap_or(0);
        if code != 0 && version >= 2 {
            r.error_code = code;
            return r;
        }
        let group = self.groups.get(group_id);
        match &req.topics {
            Some(topics) => {
                for t in topics {
                    let mut rt = OffsetFetchResponseTopic::default();
                    rt.name = t.name.clone();
                    for &i in &t.partition_indexes {
                        let v = group.and_then(|g| g.offsets.get(&(t.name.to_string(), i)));
                        rt.partitions.push(partition(i, v, code));
                    }
                    r.topics.push(rt);
                }
            }
            None => {
                let Some(g) = group else { return r };
                let mut current: Option<OffsetFetchResponseTopic> = None;
                for ((topic, i), v) in &g.offsets {
                    if current.as_ref().is_none_or(|t| t.name.as_str() != topic) {
                        r.topics.extend(current.take());
                        let mut rt = OffsetFetchResponseTopic::default();
                        rt.name = TopicName(sb(topic));
                        current = Some(rt);
                    }
                    if let Some(rt) = current.as_mut() {
                        rt.partitions.push(partition(*i, Some(v), 0));
                    }
                }
                r.topics.extend(current);
            }
        }
        r
    }
}
