//! `gregor quorum describe --status | --replication`, printed with the field names of
//! Kafka's `kafka-metadata-quorum` tool.

use crate::table;
use protocol::control::{QuorumStatus, ReplicaStatus};

/// What to print.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct DescribeArgs {
    /// Leader, epoch, high watermark, follower lag, voters and observers.
    #[arg(long)]
    pub status: bool,
    /// One row per voter and observer: log end offset, lag, last fetch and catch-up times.
    #[arg(long)]
    pub replication: bool,
}

/// `gregor quorum describe`.
pub async fn describe(addrs: &[String], args: &DescribeArgs) -> anyhow::Result<()> {
    let mut controllers = crate::control::Controllers::new(addrs)?;
    let q = controllers
        .describe_quorum(std::time::Duration::from_secs(5))
        .await?;
    if args.replication {
        print!("{}", format_replication(&q, now_ms()));
    } else {
        print!("{}", format_status(&q));
    }
    Ok(())
}

/// The leader's log end offset (the high watermark when the leader is not listed).
fn leader_end_offset(q: &QuorumStatus) -> u64 {
    q.leader_id
        .and_then(|l| q.voters.iter().find(|v| v.replica_id == l.0 as i64))
        .map(|v| v.log_end_offset)
        .unwrap_or(q.high_watermark)
}

fn is_leader(q: &QuorumStatus, r: &ReplicaStatus) -> bool {
    q.leader_id.is_some_and(|l| l.0 as i64 == r.replica_id)
}

/// `--status`.
pub fn format_status(q: &QuorumStatus) -> String {
    let leader_leo = leader_end_offset(q);
    let followers = || q.voters.iter().filter(|v| !is_leader(q, v));
    let max_lag = followers()
        .map(|v| leader_leo.saturating_sub(v.log_end_offset))
        .max()
        .unwrap_or(0);
    let max_lag_ms = followers()
        .map(|v| v.last_caught_up_ms_ago.unwrap_or(0))
        .max()
        .unwrap_or(0);
    let leader = q.leader_id.map(|l| l.0 as i64).unwrap_or(-1);
    let fields = [
        ("ClusterId", q.cluster_id.clone()),
        ("LeaderId", leader.to_string()),
        ("LeaderEpoch", q.leader_epoch.to_string()),
        ("HighWatermark", q.high_watermark.to_string()),
        ("MaxFollowerLag", max_lag.to_string()),
        ("MaxFollowerLagTimeMs", max_lag_ms.to_string()),
        (
            "CurrentVoters",
            table::id_list(q.voters.iter().map(|v| v.replica_id)),
        ),
        (
            "CurrentObservers",
            table::id_list(q.observers.iter().map(|v| v.replica_id)),
        ),
    ];
    fields
        .iter()
        .map(|(k, v)| format!("{:<22}{v}\n", format!("{k}:")))
        .collect()
}

/// `--replication`; `now_ms` is the wall clock, to turn "ms ago" into timestamps.
pub fn format_replication(q: &QuorumStatus, now_ms: u64) -> String {
    let leader_leo = leader_end_offset(q);
    let ts = |ago: Option<u64>| match ago {
        Some(a) => now_ms.saturating_sub(a).to_string(),
        None => "-1".to_string(),
    };
    let mut rows = Vec::new();
    let voters = q.voters.iter().map(|v| {
        (
            v,
            if is_leader(q, v) {
                "Leader"
            } else {
                "Follower"
            },
        )
    });
    let observers = q.observers.iter().map(|o| (o, "Observer"));
    for (r, status) in voters.chain(observers) {
        let (fetch, caught_up) = if status == "Leader" {
            (now_ms.to_string(), now_ms.to_string())
        } else {
            (ts(r.last_fetch_ms_ago), ts(r.last_caught_up_ms_ago))
        };
        rows.push(vec![
            r.replica_id.to_string(),
            r.log_end_offset.to_string(),
            leader_leo.saturating_sub(r.log_end_offset).to_string(),
            fetch,
            caught_up,
            status.to_string(),
        ]);
    }
    table::render(
        &[
            "NodeId",
            "LogEndOffset",
            "Lag",
            "LastFetchTimestamp",
            "LastCaughtUpTimestamp",
            "Status",
        ],
        &rows,
    )
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ids::NodeId;

    fn replica(id: i64, leo: u64, ago: Option<u64>) -> ReplicaStatus {
        ReplicaStatus {
            replica_id: id,
            log_end_offset: leo,
            last_fetch_ms_ago: ago,
            last_caught_up_ms_ago: ago,
        }
    }

    fn sample() -> QuorumStatus {
        QuorumStatus {
            cluster_id: "cid".into(),
            leader_id: Some(NodeId(2)),
            leader_epoch: 7,
            high_watermark: 100,
            voters: vec![
                replica(1, 95, Some(30)),
                replica(2, 100, None),
                replica(3, 100, Some(5)),
            ],
            observers: vec![replica(1, 90, Some(200))],
        }
    }

    #[test]
    fn status_uses_kafka_field_names() {
        let out = format_status(&sample());
        let expected = "ClusterId:            cid\n\
                        LeaderId:             2\n\
                        LeaderEpoch:          7\n\
                        HighWatermark:        100\n\
                        MaxFollowerLag:       5\n\
                        MaxFollowerLagTimeMs: 30\n\
                        CurrentVoters:        [1,2,3]\n\
                        CurrentObservers:     [1]\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn replication_has_one_row_per_replica() {
        let out = format_replication(&sample(), 1_000);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "NodeId  LogEndOffset  Lag  LastFetchTimestamp  LastCaughtUpTimestamp  Status"
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["1", "95", "5", "970", "970", "Follower"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["2", "100", "0", "1000", "1000", "Leader"]
        );
        assert_eq!(
            lines[4].split_whitespace().collect::<Vec<_>>(),
            ["1", "90", "10", "800", "800", "Observer"]
        );
    }

    #[test]
    fn no_leader_prints_minus_one() {
        let q = QuorumStatus {
            leader_id: None,
            ..sample()
        };
        assert!(format_status(&q).contains("LeaderId:             -1\n"));
    }
}
