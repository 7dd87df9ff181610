//! Leader-side replication bookkeeping as a pure state machine: no I/O, no clocks of its
//! own. Events (leader appends, follower fetches, ISR changes committed by the controller)
//! go in; the high watermark and ISR change proposals come out.
//!
//! ```text
//!   leader append ──┐                       ┌── high watermark (never goes back)
//!   follower fetch ─┼──> LeaderReplicaState ┼── ISR shrink candidates (lagging too long)
//!   committed ISR ──┘                       └── ISR expand candidates (caught up)
//! ```
//!
//! The high watermark is the minimum log end offset over the ISR. A follower is caught up
//! when its fetch offset reaches the leader's log end offset (now, or as of its previous
//! fetch); one that has not been caught up for longer than `replica.lag.time.max.ms` is
//! proposed for removal, and one outside the ISR that reaches the high watermark (and the
//! start of this leadership) is proposed for return.

use protocol::ids::{BrokerId, Offset};
use std::collections::BTreeMap;

/// What the leader knows about one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end offset (its last fetch offset); `None` until it fetched.
    pub log_end_offset: Option<Offset>,
    /// The last time (ms) the follower was caught up with the leader's log end.
    pub last_caught_up_ms: i64,
    /// The leader's log end and the time at the follower's previous fetch: a fetch that
    /// reaches that log end proves the follower was caught up then (Kafka's rule, so a
    /// follower under steady load is not taken for lagging).
    pub last_fetch_leader_log_end: Offset,
    pub last_fetch_ms: i64,
}

/// The replication state of a partition this broker leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderReplicaState {
    leader: BrokerId,
    isr: Vec<BrokerId>,
    leader_log_end: Offset,
    /// The leader's log end when this leadership began: a follower must reach it to join.
    epoch_start_offset: Offset,
    high_watermark: Offset,
    followers: BTreeMap<BrokerId, FollowerState>,
}

impl LeaderReplicaState {
    /// State for a new leadership. `high_watermark` is the best known lower bound (the log
    /// start offset, or a checkpointed value); it only advances from there.
    pub fn new(
        leader: BrokerId,
        replicas: &[BrokerId],
        isr: &[BrokerId],
        leader_log_end: Offset,
        high_watermark: Offset,
        now_ms: i64,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|r| **r != leader)
            .map(|r| {
                (
                    *r,
                    FollowerState {
                        log_end_offset: None,
                        last_caught_up_ms: now_ms,
                        last_fetch_leader_log_end: Offset(-1),
                        last_fetch_ms: now_ms,
                    },
                )
            })
            .collect();
        let mut s = Self {
            leader,
            isr: isr.to_vec(),
            leader_log_end,
            epoch_start_offset: leader_log_end,
            high_watermark: high_watermark.min(leader_log_end),
            followers,
        };
        s.recompute_high_watermark();
        s
    }

    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    pub fn isr(&self) -> &[BrokerId] {
        &self.isr
    }

    pub fn follower(&self, id: BrokerId) -> Option<&FollowerState> {
        self.followers.get(&id)
    }

    /// The leader appended; returns the new high watermark if it moved.
    pub fn on_leader_append(&mut self, log_end: Offset) -> Option<Offset> {
        self.leader_log_end = log_end;
        self.recompute_high_watermark()
    }

    /// A follower fetched at `fetch_offset` (its log end). Returns the new high watermark
    /// if it moved. Fetches from replicas not assigned to the partition are ignored.
    pub fn on_follower_fetch(
        &mut self,
        id: BrokerId,
        fetch_offset: Offset,
        now_ms: i64,
    ) -> Option<Offset> {
        let leader_log_end = self.leader_log_end;
        let f = self.followers.get_mut(&id)?;
        f.log_end_offset = Some(fetch_offset);
        if fetch_offset >= leader_log_end {
            f.last_caught_up_ms = now_ms;
        } else if fetch_offset >= f.last_fetch_leader_log_end {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.last_fetch_leader_log_end = leader_log_end;
        f.last_fetch_ms = now_ms;
        self.recompute_high_watermark()
    }

    /// The controller committed a new ISR (after AlterPartition or a leader election).
    pub fn on_isr_committed(&mut self, isr: &[BrokerId]) -> Option<Offset> {
        self.isr = isr.to_vec();
        self.recompute_high_watermark()
    }

    /// ISR members that have not been caught up for longer than `lag_max_ms`.
    pub fn lagging_in_sync(&self, now_ms: i64, lag_max_ms: i64) -> Vec<BrokerId> {
        self.isr
            .iter()
            .filter(|r| **r != self.leader)
            .filter(|r| {
                self.followers
                    .get(r)
                    .is_some_and(|f| now_ms - f.last_caught_up_ms > lag_max_ms)
            })
            .copied()
            .collect()
    }

    /// Followers outside the ISR that have caught up to the high watermark and to the start
    /// of this leadership (Kafka's rule for rejoining) and may be added back.
    pub fn caught_up_out_of_sync(&self) -> Vec<BrokerId> {
        self.followers
            .iter()
            .filter(|(id, _)| !self.isr.contains(id))
            .filter(|(_, f)| {
                f.log_end_offset
                    .is_some_and(|o| o >= self.high_watermark && o >= self.epoch_start_offset)
            })
            .map(|(id, _)| *id)
            .collect()
    }

    fn recompute_high_watermark(&mut self) -> Option<Offset> {
        let mut hw = self.leader_log_end;
        for r in &self.isr {
            if *r == self.leader {
                continue;
            }
            let leo = self
                .followers
                .get(r)
                .and_then(|f| f.log_end_offset)
                .unwrap_or(Offset(0));
            hw = hw.min(leo);
        }
        if hw > self.high_watermark {
            self.high_watermark = hw;
            Some(hw)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: BrokerId = BrokerId(1);
    const F2: BrokerId = BrokerId(2);
    const F3: BrokerId = BrokerId(3);

    #[test]
    fn single_replica_high_watermark_follows_the_log_end() {
        let mut s = LeaderReplicaState::new(L, &[L], &[L], Offset(5), Offset(0), 0);
        assert_eq!(s.high_watermark(), Offset(5));
        assert_eq!(s.on_leader_append(Offset(9)), Some(Offset(9)));
    }

    #[test]
    fn high_watermark_is_the_minimum_over_the_isr_and_never_goes_back() {
        let mut s =
            LeaderReplicaState::new(L, &[L, F2, F3], &[L, F2, F3], Offset(10), Offset(4), 0);
        assert_eq!(s.high_watermark(), Offset(4));
        assert_eq!(s.on_follower_fetch(F2, Offset(10), 1), None);
        assert_eq!(s.on_follower_fetch(F3, Offset(7), 1), Some(Offset(7)));
        assert_eq!(s.on_follower_fetch(F3, Offset(10), 2), Some(Offset(10)));
        // Shrinking the ISR to members behind the high watermark does not lower it.
        s.on_follower_fetch(F2, Offset(3), 3);
        assert_eq!(s.high_watermark(), Offset(10));
    }

    #[test]
    fn lagging_followers_are_proposed_for_removal_and_caught_up_ones_for_return() {
        let mut s =
            LeaderReplicaState::new(L, &[L, F2, F3], &[L, F2, F3], Offset(10), Offset(0), 0);
        s.on_follower_fetch(F2, Offset(10), 1000);
        s.on_follower_fetch(F3, Offset(2), 1000);
        assert_eq!(s.lagging_in_sync(2500, 2000), vec![F3]);
        assert_eq!(s.on_isr_committed(&[L, F2]), Some(Offset(10)));
        assert!(s.caught_up_out_of_sync().is_empty());
        s.on_follower_fetch(F3, Offset(10), 3000);
        assert_eq!(s.caught_up_out_of_sync(), vec![F3]);
    }

    #[test]
    fn a_follower_under_steady_load_is_not_lagging() {
        // Every fetch reaches the log end the leader had at the previous fetch, while the
        // leader keeps appending: the follower is never at the log end, yet keeps up.
        let mut s = LeaderReplicaState::new(L, &[L, F2], &[L, F2], Offset(0), Offset(0), 0);
        for i in 1..=10 {
            s.on_leader_append(Offset(i * 10));
            s.on_follower_fetch(F2, Offset((i - 1) * 10), i * 1000);
        }
        assert!(s.lagging_in_sync(10_500, 2000).is_empty());
        // A follower that stops fetching does lag.
        assert_eq!(s.lagging_in_sync(13_000, 2000), vec![F2]);
    }

    #[test]
    fn a_follower_rejoins_once_at_the_high_watermark() {
        let mut s = LeaderReplicaState::new(L, &[L, F2, F3], &[L, F2], Offset(10), Offset(10), 0);
        s.on_leader_append(Offset(20));
        s.on_follower_fetch(F2, Offset(15), 1);
        assert_eq!(s.high_watermark(), Offset(15));
        s.on_follower_fetch(F3, Offset(9), 2);
        assert!(s.caught_up_out_of_sync().is_empty());
        s.on_follower_fetch(F3, Offset(15), 3);
        assert_eq!(s.caught_up_out_of_sync(), vec![F3]);
    }
}
