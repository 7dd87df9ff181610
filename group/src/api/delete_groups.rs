//! DeleteGroups (key 42, v0-2): removes empty groups and their offsets (tombstones).
//! The tombstones are appended in order with every other write of the partition; the
//! answer does not wait for them (Kafka's old coordinator does the same).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::codec::{self, RecordKey};
use crate::group::GroupState;
use crate::state::{GroupStateMachine, WriteKind};

impl GroupStateMachine {
    /// Handles DeleteGroups; always answers at once.
    pub fn handle_delete_groups(
        &mut self,
        now_ms: i64,
        _version: i16,
        req: &DeleteGroupsRequest,
    ) -> DeleteGroupsResponse {
        let mut r = DeleteGroupsResponse::default();
        for id in &req.groups_names {
            let mut res = DeletableGroupResult::default();
            res.group_id = id.clone();
            res.error_code = self.delete_one(id.as_str(), now_ms);
            r.results.push(res);
        }
        r
    }

    fn delete_one(&mut self, group_id: &str, now_ms: i64) -> i16 {
        if let Err(code) = self.check(group_id) {
            return code;
        }
        let Some(g) = self.groups.get(group_id) else {
            return ResponseError::GroupIdNotFound.code();
        };
        match g.state {
            GroupState::Dead => return ResponseError::GroupIdNotFound.code(),
            GroupState::Empty if g.commit_waiters == 0 => {}
            _ => return ResponseError::NonEmptyGroup.code(),
        }
        let Some(mut g) = self.groups.remove(group_id) else {
            return ResponseError::GroupIdNotFound.code();
        };
        g.set_state(GroupState::Dead, now_ms);
        let mut records = vec![(
            codec::encode_key(&RecordKey::Group {
                group: g.id.clone(),
            }),
            None,
        )];
        for (topic, partition) in g.offsets.keys() {
            let key = RecordKey::Offset {
                group: g.id.clone(),
                topic: topic.clone(),
                partition: *partition,
            };
            records.push((codec::encode_key(&key), None));
        }
        self.emit_write(g.partition, records, WriteKind::Background);
        0
    }
}
