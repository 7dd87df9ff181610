//! Where a replica that becomes follower cuts its log (Kafka KIP-101/KIP-279), as a pure
//! decision over what the follower knows and what the leader answered.

use protocol::ids::{LeaderEpoch, Offset};

/// What the leader answered to OffsetForLeaderEpoch for the follower's latest epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderAnswer {
    /// The largest epoch <= the one asked for that the leader knows, and where it ends.
    EpochEnd(LeaderEpoch, Offset),
    /// The leader knows no epoch at or below the one asked for.
    Unknown,
}

/// The offset to truncate to. `latest_epoch`: the follower's latest epoch (`None`: its log
/// has none, so the high watermark is the only safe point); `own_end_for`: where an epoch
/// ends in the follower's own log.
pub fn truncation_point(
    log_end: Offset,
    high_watermark: Offset,
    latest_epoch: Option<LeaderEpoch>,
    answer: LeaderAnswer,
    own_end_for: impl Fn(LeaderEpoch) -> Option<(LeaderEpoch, Offset)>,
) -> Offset {
    let Some(asked) = latest_epoch else {
        return high_watermark.min(log_end);
    };
    match answer {
        LeaderAnswer::Unknown => high_watermark.min(log_end),
        LeaderAnswer::EpochEnd(epoch, end) if epoch == asked => end.min(log_end),
        LeaderAnswer::EpochEnd(epoch, end) => {
            // The leader never had `asked`: our log diverged after the leader's `epoch`,
            // which ends at the lower of both replicas' end offsets for it.
            let own = own_end_for(epoch)
                .filter(|(e, _)| *e == epoch)
                .map_or(high_watermark, |(_, o)| o);
            end.min(own).min(log_end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        None
    }

    #[test]
    fn same_epoch_cuts_at_the_leaders_end_of_it() {
        let p = truncation_point(
            Offset(12),
            Offset(8),
            Some(LeaderEpoch(3)),
            LeaderAnswer::EpochEnd(LeaderEpoch(3), Offset(10)),
            none,
        );
        assert_eq!(p, Offset(10));
    }

    #[test]
    fn a_follower_behind_the_leader_keeps_its_whole_log() {
        let p = truncation_point(
            Offset(7),
            Offset(5),
            Some(LeaderEpoch(3)),
            LeaderAnswer::EpochEnd(LeaderEpoch(3), Offset(10)),
            none,
        );
        assert_eq!(p, Offset(7));
    }

    #[test]
    fn an_epoch_the_leader_never_had_cuts_at_the_common_earlier_epoch() {
        // Follower: epoch 2 ends at 9, then epoch 4 (never on the leader) up to 15.
        let own = |e: LeaderEpoch| (e == LeaderEpoch(2)).then_some((LeaderEpoch(2), Offset(9)));
        let p = truncation_point(
            Offset(15),
            Offset(6),
            Some(LeaderEpoch(4)),
            LeaderAnswer::EpochEnd(LeaderEpoch(2), Offset(11)),
            own,
        );
        assert_eq!(p, Offset(9));
    }

    #[test]
    fn no_epoch_or_unknown_epoch_falls_back_to_the_high_watermark() {
        let p = truncation_point(Offset(9), Offset(4), None, LeaderAnswer::Unknown, none);
        assert_eq!(p, Offset(4));
        let p = truncation_point(
            Offset(9),
            Offset(4),
            Some(LeaderEpoch(1)),
            LeaderAnswer::Unknown,
            none,
        );
        assert_eq!(p, Offset(4));
    }
}
