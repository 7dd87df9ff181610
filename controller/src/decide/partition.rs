//! Leader and ISR changes of one partition, following Kafka's KRaft rules.
//!
//! - A leader is chosen from the ISR, in replica order, among usable brokers; outside the
//!   ISR only when the topic sets `unclean.leader.election.enable=true`.
//! - Removing a broker never empties the ISR: the last member stays as the sole member and
//!   the partition goes offline (leader `None`) until it returns.
//! - Every change bumps the partition epoch; a leader change also bumps the leader epoch.

use protocol::control::{PartitionState, TopicConfigs};
use protocol::ids::BrokerId;

/// Whether the topic allows electing a leader outside the ISR.
pub fn unclean_allowed(configs: &TopicConfigs) -> bool {
    configs
        .get("unclean.leader.election.enable")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Finishes a change: bumps epochs relative to `old`.
fn finish(old: &PartitionState, mut new: PartitionState) -> Option<PartitionState> {
    if new.isr == old.isr && new.leader == old.leader && new.replicas == old.replicas {
        return None;
    }
    new.partition_epoch = old.partition_epoch.next();
    if new.leader != old.leader {
        new.leader_epoch = old.leader_epoch.next();
    }
    Some(new)
}

/// Picks a leader for `state` among `isr` (in replica order), or outside it when unclean
/// election is allowed; returns the leader and the ISR to go with it.
fn choose(
    state: &PartitionState,
    isr: &[BrokerId],
    usable: &dyn Fn(BrokerId) -> bool,
    unclean: bool,
) -> (Option<BrokerId>, Vec<BrokerId>) {
    if let Some(l) = state
        .replicas
        .iter()
        .copied()
        .find(|r| isr.contains(r) && usable(*r))
    {
        return (Some(l), isr.to_vec());
    }
    if unclean {
        if let Some(l) = state.replicas.iter().copied().find(|r| usable(*r)) {
            return (Some(l), vec![l]);
        }
    }
    (None, isr.to_vec())
}

/// Takes `broker` out of the ISR and the leadership (fencing, controlled shutdown,
/// re-registration). `usable` must already say no for `broker`.
pub fn remove_broker(
    state: &PartitionState,
    broker: BrokerId,
    usable: &dyn Fn(BrokerId) -> bool,
    unclean: bool,
) -> Option<PartitionState> {
    let in_isr = state.isr.contains(&broker);
    if !in_isr && state.leader != Some(broker) {
        return None;
    }
    let mut isr: Vec<BrokerId> = state.isr.iter().copied().filter(|b| *b != broker).collect();
    let mut new = state.clone();
    if isr.is_empty() {
        // Never empty the ISR: the last member stays, offline, unless unclean election finds
        // another usable replica.
        let (leader, unclean_isr) = if unclean {
            choose(state, &[], usable, true)
        } else {
            (None, Vec::new())
        };
        new.leader = leader;
        new.isr = if leader.is_some() {
            unclean_isr
        } else {
            vec![broker]
        };
        return finish(state, new);
    }
    if state.leader == Some(broker) || state.leader.is_none() {
        let (leader, chosen_isr) = choose(state, &isr, usable, unclean);
        new.leader = leader;
        isr = chosen_isr;
    }
    new.isr = isr;
    finish(state, new)
}

/// Elects a leader for an offline partition, if an eligible replica exists now.
pub fn elect_if_offline(
    state: &PartitionState,
    usable: &dyn Fn(BrokerId) -> bool,
    unclean: bool,
) -> Option<PartitionState> {
    if state.leader.is_some() {
        return None;
    }
    let (leader, isr) = choose(state, &state.isr, usable, unclean);
    leader?;
    let mut new = state.clone();
    new.leader = leader;
    new.isr = isr;
    finish(state, new)
}

/// Moves leadership back to the preferred replica (the first) when it is usable and in
/// the ISR.
pub fn elect_preferred(
    state: &PartitionState,
    usable: &dyn Fn(BrokerId) -> bool,
) -> Option<PartitionState> {
    let preferred = *state.replicas.first()?;
    if state.leader == Some(preferred) || !state.isr.contains(&preferred) || !usable(preferred) {
        return None;
    }
    let mut new = state.clone();
    new.leader = Some(preferred);
    finish(state, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ids::*;

    fn st(replicas: &[i32], isr: &[i32], leader: Option<i32>) -> PartitionState {
        PartitionState {
            topic_id: TopicId::default(),
            partition: PartitionIndex(0),
            replicas: replicas.iter().map(|&b| BrokerId(b)).collect(),
            isr: isr.iter().map(|&b| BrokerId(b)).collect(),
            leader: leader.map(BrokerId),
            leader_epoch: LeaderEpoch(3),
            partition_epoch: PartitionEpoch(7),
        }
    }

    fn ids(v: &[i32]) -> Vec<BrokerId> {
        v.iter().map(|&b| BrokerId(b)).collect()
    }

    #[test]
    fn removing_the_leader_elects_from_isr_and_bumps_epochs() {
        let s = st(&[1, 2, 3], &[1, 2, 3], Some(1));
        let n = remove_broker(&s, BrokerId(1), &|b| b != BrokerId(1), false).unwrap();
        assert_eq!(n.leader, Some(BrokerId(2)));
        assert_eq!(n.isr, ids(&[2, 3]));
        assert_eq!(n.leader_epoch, LeaderEpoch(4));
        assert_eq!(n.partition_epoch, PartitionEpoch(8));
    }

    #[test]
    fn removing_a_follower_keeps_leader_epoch() {
        let s = st(&[1, 2, 3], &[1, 2, 3], Some(1));
        let n = remove_broker(&s, BrokerId(3), &|b| b != BrokerId(3), false).unwrap();
        assert_eq!(n.leader, Some(BrokerId(1)));
        assert_eq!(n.leader_epoch, LeaderEpoch(3));
        assert_eq!(n.partition_epoch, PartitionEpoch(8));
        assert!(remove_broker(&n, BrokerId(3), &|_| true, false).is_none());
    }

    #[test]
    fn the_last_isr_member_stays_offline_and_returns() {
        let s = st(&[1, 2], &[1], Some(1));
        let n = remove_broker(&s, BrokerId(1), &|b| b == BrokerId(2), false).unwrap();
        assert_eq!(n.isr, ids(&[1]));
        assert_eq!(n.leader, None);
        // Broker 2 is usable but outside the ISR: no clean election.
        assert!(elect_if_offline(&n, &|b| b == BrokerId(2), false).is_none());
        // Broker 1 comes back.
        let back = elect_if_offline(&n, &|_| true, false).unwrap();
        assert_eq!(back.leader, Some(BrokerId(1)));
        assert_eq!(back.leader_epoch, LeaderEpoch(5));
    }

    #[test]
    fn unclean_election_goes_outside_the_isr() {
        let s = st(&[1, 2], &[1], Some(1));
        let n = remove_broker(&s, BrokerId(1), &|b| b == BrokerId(2), true).unwrap();
        assert_eq!(n.leader, Some(BrokerId(2)));
        assert_eq!(n.isr, ids(&[2]));
        let mut c = TopicConfigs::new();
        assert!(!unclean_allowed(&c));
        c.insert("unclean.leader.election.enable".into(), "true".into());
        assert!(unclean_allowed(&c));
    }

    #[test]
    fn preferred_leader_returns_when_in_isr() {
        let s = st(&[1, 2], &[2], Some(2));
        assert!(elect_preferred(&s, &|_| true).is_none());
        let s = st(&[1, 2], &[2, 1], Some(2));
        assert!(elect_preferred(&s, &|b| b != BrokerId(1)).is_none());
        assert_eq!(
            elect_preferred(&s, &|_| true).unwrap().leader,
            Some(BrokerId(1))
        );
    }
}
