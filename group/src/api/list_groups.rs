//! ListGroups (key 16, v0-4): the groups this broker coordinates, filtered by state (v4).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::sb;
use crate::group::GroupState;
use crate::state::GroupStateMachine;

impl GroupStateMachine {
    /// Handles ListGroups; always answers at once.
    pub fn handle_list_groups(
        &mut self,
        version: i16,
        req: &ListGroupsRequest,
    ) -> ListGroupsResponse {
        let mut r = ListGroupsResponse::default();
        if self.any_loading() {
            r.error_code = ResponseError::CoordinatorLoadInProgress.code();
        }
        let mut groups: Vec<_> = self
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .collect();
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        for g in groups {
            let state = g.state.as_str();
            if version >= 4
                && !req.states_filter.is_empty()
                && !req
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(state))
            {
                continue;
            }
            let mut lg = ListedGroup::default();
            lg.group_id = GroupId(sb(&g.id));
            lg.protocol_type = sb(g.protocol_type.as_deref().unwrap_or_default());
            if version >= 4 {
                lg.group_state = sb(state);
            }
            r.groups.push(lg);
        }
        r
    }
}
