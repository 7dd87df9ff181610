//! Leader and follower replicas over real logs, wired by hand (no sockets): what the
//! fetcher does with what the leader's fetch path returns.

use super::truncation::{truncation_point, LeaderAnswer};
use crate::partition::{FollowerFetch, Partition, PartitionError, Reader};
use protocol::control::{PartitionState, TopicConfigs};
use protocol::ids::TopicPartition;
use protocol::ids::{BrokerId, LeaderEpoch, Offset, PartitionEpoch, PartitionIndex, TopicId};
use storage::batch::build_test_batch;
use storage::{LogConfig, PartitionLog};

const B1: BrokerId = BrokerId(1);
const B2: BrokerId = BrokerId(2);

fn state(leader: BrokerId, epoch: i32, isr: &[BrokerId]) -> PartitionState {
    PartitionState {
        topic_id: TopicId(uuid::Uuid::nil()),
        partition: PartitionIndex(0),
        replicas: vec![B1, B2],
        isr: isr.to_vec(),
        leader: Some(leader),
        leader_epoch: LeaderEpoch(epoch),
        partition_epoch: PartitionEpoch(epoch),
    }
}

fn replica(dir: &std::path::Path, id: BrokerId, s: &PartitionState) -> Partition {
    let log = PartitionLog::open(dir, "t-0", LogConfig::default()).unwrap();
    Partition::new(
        id,
        TopicPartition::new("t", 0),
        log,
        s,
        &TopicConfigs::new(),
        0,
    )
}

fn produce(leader: &Partition, records: i32) {
    let b = build_test_batch(0, 0, records, 1_000, &vec![7u8; 10 * records as usize]);
    leader.append_as_leader(&b, 1_000).unwrap();
}

/// One fetch round: the follower fetches at its log end and appends what it gets.
fn fetch_once(leader: &Partition, follower: &Partition, id: BrokerId, now: i64) {
    let v = follower.follower_view().unwrap();
    let r = leader
        .read(
            Reader::Follower(id),
            v.leader_epoch.0,
            v.log_end_offset.0,
            1 << 20,
            now,
        )
        .unwrap();
    let fetched = FollowerFetch {
        records: &r.records,
        leader_hw: r.high_watermark,
        leader_log_start: r.log_start_offset,
    };
    follower
        .append_as_follower(v.leader_epoch, fetched, now)
        .unwrap();
}

#[test]
fn a_follower_copies_the_log_and_the_high_watermark_follows() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s = state(B1, 1, &[B1, B2]);
    let leader = replica(d1.path(), B1, &s);
    let follower = replica(d2.path(), B2, &s);
    produce(&leader, 3);
    produce(&leader, 2);
    assert_eq!(
        leader.leader_positions(-1).unwrap().high_watermark,
        Offset(0)
    );
    fetch_once(&leader, &follower, B2, 1_100);
    assert_eq!(follower.follower_view().unwrap().log_end_offset, Offset(5));
    // The follower's next fetch offset tells the leader it has everything.
    fetch_once(&leader, &follower, B2, 1_200);
    assert_eq!(
        leader.leader_positions(-1).unwrap().high_watermark,
        Offset(5)
    );
    assert_eq!(follower.follower_view().unwrap().high_watermark, Offset(5));
    // A fetch at a stale epoch is fenced.
    assert!(leader
        .read(Reader::Follower(B2), 0, 5, 1 << 20, 1_300)
        .is_err());
}

#[test]
fn records_the_leader_deletes_are_deleted_on_the_follower_too() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s = state(B1, 1, &[B1, B2]);
    let leader = replica(d1.path(), B1, &s);
    let follower = replica(d2.path(), B2, &s);
    produce(&leader, 5);
    fetch_once(&leader, &follower, B2, 1_100);
    fetch_once(&leader, &follower, B2, 1_200);
    assert_eq!(follower.follower_view().unwrap().high_watermark, Offset(5));
    // DeleteRecords (the coordinator's compaction of `__consumer_offsets`) on the leader.
    assert_eq!(
        leader.delete_records_before(-1, Offset(3)).unwrap(),
        Offset(3)
    );
    produce(&leader, 1);
    fetch_once(&leader, &follower, B2, 1_300);
    let v = follower.follower_view().unwrap();
    assert_eq!(v.log_start_offset, Offset(3));
    assert_eq!(v.log_end_offset, Offset(6));
}

#[test]
fn a_follower_never_deletes_past_its_own_high_watermark() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s = state(B1, 1, &[B1, B2]);
    let leader = replica(d1.path(), B1, &s);
    let follower = replica(d2.path(), B2, &s);
    produce(&leader, 4);
    fetch_once(&leader, &follower, B2, 1_100);
    // The follower has the records but not yet the high watermark that covers them.
    assert_eq!(follower.follower_view().unwrap().high_watermark, Offset(0));
    let fetched = FollowerFetch {
        records: &[],
        leader_hw: Offset(0),
        leader_log_start: Offset(4),
    };
    follower
        .append_as_follower(LeaderEpoch(1), fetched, 1_200)
        .unwrap();
    assert_eq!(
        follower.follower_view().unwrap().log_start_offset,
        Offset(0)
    );
}

#[test]
fn a_diverged_follower_truncates_to_the_new_leaders_end_of_its_epoch() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s1 = state(B1, 1, &[B1, B2]);
    let old_leader = replica(d1.path(), B1, &s1);
    let other = replica(d2.path(), B2, &s1);
    produce(&old_leader, 4);
    fetch_once(&old_leader, &other, B2, 1_100);
    // The old leader appends more that never reaches broker 2, then loses leadership.
    produce(&old_leader, 3);
    let s2 = state(B2, 2, &[B2]);
    other.apply_state(&s2, &TopicConfigs::new(), 2_000);
    old_leader.apply_state(&s2, &TopicConfigs::new(), 2_000);
    produce(&other, 2);
    let v = old_leader.follower_view().unwrap();
    assert_eq!(v.log_end_offset, Offset(7));
    let latest = v.latest_epoch.unwrap();
    let (e, end) = other
        .end_offset_for_epoch(v.leader_epoch.0, latest)
        .unwrap()
        .unwrap();
    let point = truncation_point(
        v.log_end_offset,
        v.high_watermark,
        v.latest_epoch,
        LeaderAnswer::EpochEnd(e, end),
        |e| old_leader.own_end_offset_for_epoch(e),
    );
    assert_eq!(point, Offset(4));
    old_leader
        .truncate_as_follower(v.leader_epoch, point)
        .unwrap();
    fetch_once(&other, &old_leader, B1, 2_100);
    assert_eq!(
        old_leader.follower_view().unwrap().log_end_offset,
        Offset(6)
    );
}

/// What the purgatory's waiters rely on: `leader_positions` answers from what the last
/// operation published (no lock), and the operations that moved the high watermark say so,
/// since only they wake the acks=all produces.
#[test]
fn published_positions_follow_every_change_and_high_watermark_moves_are_reported() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s = state(B1, 1, &[B1, B2]);
    let leader = replica(d1.path(), B1, &s);
    let follower = replica(d2.path(), B2, &s);

    let b = build_test_batch(0, 0, 4, 1_000, &[7u8; 40]);
    let a = leader.append_as_leader(&b, 1_000).unwrap();
    assert!(!a.high_watermark_moved, "the follower has not fetched yet");
    let pos = leader.leader_positions(1).unwrap();
    assert_eq!(
        (pos.log_end_offset, pos.high_watermark),
        (Offset(4), Offset(0))
    );

    let at = |offset| leader.read(Reader::Follower(B2), 1, offset, 1 << 20, 1_000);
    assert!(
        !at(0).unwrap().high_watermark_moved,
        "fetching at 0 moves nothing"
    );
    fetch_once(&leader, &follower, B2, 1_000);
    assert_eq!(follower.follower_view().unwrap().log_end_offset, Offset(4));
    assert!(
        at(4).unwrap().high_watermark_moved,
        "the follower's log end commits 0..4"
    );
    assert!(
        !at(4).unwrap().high_watermark_moved,
        "the same fetch again moves nothing"
    );
    assert_eq!(
        leader.leader_positions(-1).unwrap().high_watermark,
        Offset(4)
    );

    // Epoch checks and roles answer as the locked path does.
    assert!(matches!(
        leader.leader_positions(0),
        Err(PartitionError::FencedLeaderEpoch { .. })
    ));
    assert!(matches!(
        leader.leader_positions(2),
        Err(PartitionError::UnknownLeaderEpoch { .. })
    ));
    assert!(matches!(
        follower.leader_positions(1),
        Err(PartitionError::NotLeader(_))
    ));

    // A leader alone in the ISR commits on append.
    leader.apply_committed(&PartitionState {
        partition_epoch: PartitionEpoch(2),
        ..state(B1, 1, &[B1])
    });
    let a = leader.append_as_leader(&b, 1_000).unwrap();
    assert!(a.high_watermark_moved);
    assert_eq!(
        leader.leader_positions(1).unwrap().high_watermark,
        Offset(8)
    );

    leader.retire().unwrap().remove().unwrap();
    assert!(matches!(
        leader.leader_positions(1),
        Err(PartitionError::Removed(_))
    ));
}
