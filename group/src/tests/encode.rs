//! Every response the coordinator builds encodes at every version it advertises (the
//! `kafka-protocol` encoder refuses fields a version does not have).

use bytes::BytesMut;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;

use super::harness::{s, H};
use crate::api::find_coordinator::{handle_find_coordinator, CoordinatorAddress};
use crate::state::Reply;
use crate::versions::supported;

fn encodes<T: Encodable + std::fmt::Debug>(key: ApiKey, r: &T) {
    let range = supported(key).expect("served API");
    for v in range.min..=range.max {
        let mut buf = BytesMut::new();
        r.encode(&mut buf, v)
            .unwrap_or_else(|e| panic!("{key:?} v{v}: {e}: {r:?}"));
    }
}

#[test]
fn all_responses_encode_at_all_versions() {
    let mut h = H::new();
    let Reply::Now(required) = h.join("g", "") else {
        panic!()
    };
    encodes(ApiKey::JoinGroup, &required);
    let (ids, generation) = h.stable_group("g", 2);
    let (_, w) = h.join_new("g");
    let Reply::Later(w0) = h.join("g", &ids[0]) else {
        panic!()
    };
    let Reply::Later(w1) = h.join("g", &ids[1]) else {
        panic!()
    };
    encodes(ApiKey::JoinGroup, &h.join_done(w0));
    encodes(ApiKey::JoinGroup, &h.join_done(w1));
    encodes(ApiKey::JoinGroup, &h.join_done(w));
    let Reply::Now(err) = h.sync("g", &ids[0], generation, &[]) else {
        panic!()
    };
    encodes(ApiKey::SyncGroup, &err);

    let (ids, generation) = h.stable_group("h", 1);
    let Reply::Now(ok) = h.sync("h", &ids[0], generation, &[]) else {
        panic!()
    };
    encodes(ApiKey::SyncGroup, &ok);
    let mut hb = HeartbeatRequest::default();
    hb.group_id = GroupId(s("h"));
    encodes(ApiKey::Heartbeat, &h.sm.handle_heartbeat(h.now, 4, &hb));

    let Reply::Later(cw) = h.commit("h", &ids[0], generation, &[("t", 0, 1)]) else {
        panic!()
    };
    encodes(ApiKey::OffsetCommit, &h.commit_done(cw));

    for v in 1..=7 {
        let mut req = OffsetFetchRequest::default();
        req.group_id = GroupId(s("h"));
        req.topics = if v >= 2 { None } else { Some(Vec::new()) };
        let mut buf = BytesMut::new();
        h.sm.handle_offset_fetch(h.now, v, &req)
            .encode(&mut buf, v)
            .unwrap();
        req.group_id = GroupId(s("not-here-xyz"));
        let mut other = H::unloaded(super::harness::config());
        other
            .sm
            .handle_offset_fetch(0, v, &req)
            .encode(&mut buf, v)
            .unwrap();
    }
    for v in 0..=4 {
        let mut buf = BytesMut::new();
        h.sm.handle_list_groups(v, &ListGroupsRequest::default())
            .encode(&mut buf, v)
            .unwrap();
    }
    let mut dg = DescribeGroupsRequest::default();
    dg.groups = vec![GroupId(s("g")), GroupId(s("h")), GroupId(s("none"))];
    encodes(ApiKey::DescribeGroups, &h.sm.handle_describe_groups(5, &dg));
    let mut del = DeleteGroupsRequest::default();
    del.groups_names = vec![GroupId(s("h"))];
    encodes(
        ApiKey::DeleteGroups,
        &h.sm.handle_delete_groups(h.now, 2, &del),
    );

    for v in 0..=4 {
        let mut buf = BytesMut::new();
        let mut lg = LeaveGroupRequest::default();
        lg.group_id = GroupId(s("g"));
        lg.member_id = s("ghost");
        h.sm.handle_leave_group(h.now, v, &lg)
            .encode(&mut buf, v)
            .unwrap();
    }

    let found = |_p: i32| {
        Some(CoordinatorAddress {
            node_id: 2,
            host: "h".into(),
            port: 9092,
        })
    };
    let missing = |_p: i32| None;
    for v in 0..=4 {
        let mut req = FindCoordinatorRequest::default();
        if v >= 4 {
            req.coordinator_keys = vec![s("g"), s("")];
        } else {
            req.key = s("g");
        }
        for f in [
            &found as &dyn Fn(i32) -> Option<CoordinatorAddress>,
            &missing,
        ] {
            let r = handle_find_coordinator(v, &req, 4, f);
            let mut buf = BytesMut::new();
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("FindCoordinator v{v}: {e}"));
        }
    }
}
