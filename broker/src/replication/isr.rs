//! ISR change decisions (pure): which ISR the leader proposes next.

use crate::partition::replica::LeaderReplicaState;
use protocol::ids::BrokerId;

/// The next ISR to propose, if any: lagging members leave first (Kafka shrinks before it
/// expands); otherwise caught-up replicas outside the ISR join. Never removes the leader.
pub fn next_isr(rs: &LeaderReplicaState, now_ms: i64, lag_max_ms: i64) -> Option<Vec<BrokerId>> {
    let lagging = rs.lagging_in_sync(now_ms, lag_max_ms);
    if !lagging.is_empty() {
        let isr: Vec<BrokerId> = rs
            .isr()
            .iter()
            .filter(|r| !lagging.contains(r))
            .copied()
            .collect();
        return Some(isr);
    }
    let joining = rs.caught_up_out_of_sync();
    if joining.is_empty() {
        return None;
    }
    let mut isr = rs.isr().to_vec();
    isr.extend(joining);
    isr.sort();
    isr.dedup();
    Some(isr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ids::Offset;

    const L: BrokerId = BrokerId(1);
    const F2: BrokerId = BrokerId(2);
    const F3: BrokerId = BrokerId(3);

    #[test]
    fn nothing_to_change_when_everyone_keeps_up() {
        let mut s = LeaderReplicaState::new(L, &[L, F2, F3], &[L, F2, F3], Offset(5), Offset(0), 0);
        s.on_follower_fetch(F2, Offset(5), 100);
        s.on_follower_fetch(F3, Offset(5), 100);
        assert_eq!(next_isr(&s, 1000, 2000), None);
    }

    #[test]
    fn a_lagging_follower_is_removed_then_added_back_once_caught_up() {
        let mut s = LeaderReplicaState::new(L, &[L, F2, F3], &[L, F2, F3], Offset(5), Offset(0), 0);
        s.on_follower_fetch(F2, Offset(5), 2500);
        s.on_follower_fetch(F3, Offset(1), 2500);
        assert_eq!(next_isr(&s, 2500, 2000), Some(vec![L, F2]));
        s.on_isr_committed(&[L, F2]);
        assert_eq!(s.high_watermark(), Offset(5));
        assert_eq!(next_isr(&s, 2600, 2000), None);
        s.on_leader_append(Offset(8));
        s.on_follower_fetch(F3, Offset(8), 2700);
        s.on_follower_fetch(F2, Offset(8), 2700);
        assert_eq!(next_isr(&s, 2700, 2000), Some(vec![L, F2, F3]));
    }

    #[test]
    fn the_leader_is_never_removed() {
        let s = LeaderReplicaState::new(L, &[L, F2], &[L, F2], Offset(5), Offset(0), 0);
        assert_eq!(next_isr(&s, 10_000, 2000), Some(vec![L]));
    }
}
