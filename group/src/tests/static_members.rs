//! Static membership (group.instance.id, KIP-345).

use super::harness::H;
use crate::group::GroupState;
use crate::state::Reply;

const G: &str = "static";

#[test]
fn static_member_rejoins_without_rebalance_and_fences_old_id() {
    let mut h = H::new();
    let req = H::join_req(G, "", Some("instance-1"), &["range"]);
    let Reply::Later(w) = h.join_with(5, &req) else {
        panic!("static members skip MEMBER_ID_REQUIRED")
    };
    h.advance(1_000);
    let r = h.join_done(w);
    let old_id = r.member_id.to_string();
    let generation = r.generation_id;
    let Reply::Later(sw) = h.sync(G, &old_id, generation, &[(&old_id, "assign")]) else {
        panic!()
    };
    assert_eq!(h.sync_done(sw).error_code, 0);

    // Restart: same instance id, no member id.
    let Reply::Now(r) = h.join_with(5, &req) else {
        panic!("unchanged static member answers at once")
    };
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, generation, "no new generation");
    let new_id = r.member_id.to_string();
    assert_ne!(new_id, old_id);
    assert_eq!(h.sm.group_state(G), Some(GroupState::Stable));
    // The new id gets the old assignment; the old id is fenced.
    let Reply::Now(s) = h.sync(G, &new_id, generation, &[]) else {
        panic!()
    };
    assert_eq!(&s.assignment[..], b"assign");
    assert_eq!(
        h.heartbeat_static(G, &old_id, "instance-1", generation),
        82,
        "FENCED_INSTANCE_ID"
    );
    assert_eq!(h.heartbeat_static(G, &new_id, "instance-1", generation), 0);
}

#[test]
fn static_member_survives_session_timeout_only_while_heartbeating() {
    let mut h = H::new();
    let req = H::join_req(G, "", Some("i"), &["range"]);
    let Reply::Later(w) = h.join_with(5, &req) else {
        panic!()
    };
    h.advance(1_000);
    let r = h.join_done(w);
    let id = r.member_id.to_string();
    let Reply::Later(sw) = h.sync(G, &id, r.generation_id, &[(&id, "a")]) else {
        panic!()
    };
    h.sync_done(sw);
    h.advance(60_000);
    assert_eq!(h.sm.group_state(G), Some(GroupState::Empty));
}
