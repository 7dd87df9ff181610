//! Faster takeover when the active controller dies.
//!
//! openraft 0.9 lets a follower campaign only after the leader lease (the maximum election
//! timeout) *plus* its own random election timeout, and a voter refuses votes while its
//! lease runs. So the earliest an election can succeed is one lease after the last
//! heartbeat, but openraft's timer waits up to twice that. This watcher starts the election
//! right after the lease instead: each follower tracks when it last accepted an
//! AppendEntries, and once that is older than the lease plus a stagger by rank (so the
//! followers do not split the vote), it triggers an election. Raft's safety does not depend
//! on timers; if the campaign fails, openraft's own timers take over.

use crate::raft::Raft;
use openraft::ServerState;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Margin after the lease before the first-ranked follower campaigns.
pub const STAGGER_BASE: Duration = Duration::from_millis(30);
/// Extra wait per rank, so one follower usually wins before the next one tries.
pub const STAGGER_STEP: Duration = Duration::from_millis(150);
/// How often the watcher looks.
const POLL: Duration = Duration::from_millis(10);

/// When this node last accepted AppendEntries from a leader.
#[derive(Debug, Default)]
pub struct LeaderWatch {
    last: Mutex<Option<Instant>>,
}

impl LeaderWatch {
    /// A leader's AppendEntries was accepted (or conflicted: the leader is alive).
    pub fn heard(&self) {
        *self.last.lock().expect("leader watch mutex poisoned") = Some(Instant::now());
    }

    fn last(&self) -> Option<Instant> {
        *self.last.lock().expect("leader watch mutex poisoned")
    }
}

/// This node's rank among the voters other than the (silent) leader.
pub fn rank(me: u64, voters: &[u64], leader: Option<u64>) -> usize {
    voters
        .iter()
        .filter(|v| Some(**v) != leader && **v < me)
        .count()
}

/// Whether a follower silent for `silent` should campaign now.
pub fn election_due(silent: Duration, lease: Duration, rank: usize) -> bool {
    silent >= lease + STAGGER_BASE + STAGGER_STEP * rank as u32
}

/// Runs the watcher for this node until the Raft node stops.
pub async fn watch(
    raft: Raft,
    watch: std::sync::Arc<LeaderWatch>,
    me: u64,
    voters: Vec<u64>,
    lease: Duration,
) {
    let mut triggered_for: Option<Instant> = None;
    loop {
        tokio::time::sleep(POLL).await;
        let (state, leader) = {
            let m = raft.metrics();
            let m = m.borrow();
            (m.state, m.current_leader)
        };
        // Only followers that have heard from a leader before; a fresh cluster elects on
        // openraft's own timers.
        let Some(last) = watch.last() else { continue };
        if state == ServerState::Leader || triggered_for == Some(last) {
            continue;
        }
        let silent = last.elapsed();
        if election_due(silent, lease, rank(me, &voters, leader)) {
            triggered_for = Some(last);
            tracing::info!(
                node_id = me,
                silent_leader = ?leader,
                silent_ms = silent.as_millis() as u64,
                "no heartbeat from the active controller past its lease; starting an election"
            );
            if raft.trigger().elect().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_skip_the_leader_and_stagger() {
        let voters = [1, 2, 3];
        assert_eq!(rank(2, &voters, Some(1)), 0);
        assert_eq!(rank(3, &voters, Some(1)), 1);
        assert_eq!(rank(3, &voters, Some(2)), 1);
        assert_eq!(rank(1, &voters, Some(3)), 0);
        let lease = Duration::from_millis(800);
        assert!(!election_due(Duration::from_millis(800), lease, 0));
        assert!(election_due(Duration::from_millis(830), lease, 0));
        assert!(!election_due(Duration::from_millis(900), lease, 1));
        assert!(election_due(Duration::from_millis(980), lease, 1));
    }
}
