//! `gregor cluster status` and `gregor cluster watch`: the active controller, voters,
//! brokers (fenced or not, epochs), partitions with leaders and ISR, under-replicated and
//! offline partitions.
//!
//! The view is a list of [`Line`]s built from the quorum status and the metadata image by a
//! pure function; [`crate::watch`] redraws it and highlights what changed.

use crate::control::Controllers;
use protocol::control::{MetadataImage, QuorumStatus};
use std::time::Duration;

/// One line of the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Identifies the line across refreshes (`broker-1`, `partition t-0`).
    pub key: String,
    /// What a change is judged on (e.g. a voter's role, not its moving log end offset).
    pub state: String,
    /// What is printed.
    pub text: String,
}

impl Line {
    fn new(key: impl Into<String>, state: impl Into<String>, text: impl Into<String>) -> Line {
        Line {
            key: key.into(),
            state: state.into(),
            text: text.into(),
        }
    }

    fn plain(key: &str, text: String) -> Line {
        Line::new(key, text.clone(), text)
    }
}

/// Options of `cluster status` and `cluster watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct ViewArgs {
    /// Show at most this many partitions (under-replicated and offline ones are always counted).
    #[arg(long, default_value_t = 40)]
    pub max_partitions: usize,
}

/// Builds the view.
pub fn build(q: &QuorumStatus, img: &MetadataImage, args: &ViewArgs) -> Vec<Line> {
    let mut lines = vec![Line::new(
        "cluster",
        q.cluster_id.clone(),
        format!(
            "Cluster {}   metadata offset {}",
            q.cluster_id, q.high_watermark
        ),
    )];
    lines.push(match q.leader_id {
        Some(l) => Line::plain(
            "active",
            format!(
                "Active controller: controller-{l} (epoch {})",
                q.leader_epoch
            ),
        ),
        None => Line::plain(
            "active",
            format!("Active controller: NONE (epoch {})", q.leader_epoch),
        ),
    });
    lines.push(Line::plain("voters-h", "Controllers:".into()));
    let leader_leo = q
        .leader_id
        .and_then(|l| q.voters.iter().find(|v| v.replica_id == l.0 as i64))
        .map(|v| v.log_end_offset)
        .unwrap_or(q.high_watermark);
    for v in &q.voters {
        let role = if q.leader_id.is_some_and(|l| l.0 as i64 == v.replica_id) {
            "leader"
        } else {
            "follower"
        };
        let lag = leader_leo.saturating_sub(v.log_end_offset);
        let contact = match v.last_fetch_ms_ago {
            Some(ms) if role == "follower" => format!("  last fetch {ms} ms ago"),
            None if role == "follower" => "  never fetched".into(),
            _ => String::new(),
        };
        lines.push(Line::new(
            format!("voter {}", v.replica_id),
            role,
            format!(
                "  controller-{:<3} {role:<9} log end {:<8} lag {lag}{contact}",
                v.replica_id, v.log_end_offset
            ),
        ));
    }
    lines.push(Line::plain("brokers-h", "Brokers:".into()));
    for b in img.brokers.values() {
        let state = if b.shutting_down {
            "shutting-down"
        } else if b.fenced {
            "FENCED"
        } else {
            "unfenced"
        };
        let addr = b
            .listeners
            .iter()
            .map(|e| format!("{}://{}:{}", e.listener, e.host, e.port))
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(Line::new(
            format!("broker {}", b.id),
            format!("{state} {}", b.epoch),
            format!(
                "  broker-{:<5} {state:<13} epoch {:<6} {addr}",
                b.id, b.epoch
            ),
        ));
    }
    partition_lines(img, args, &mut lines);
    lines
}

fn partition_lines(img: &MetadataImage, args: &ViewArgs, lines: &mut Vec<Line>) {
    let mut under = Vec::new();
    let mut offline = Vec::new();
    let mut shown = 0usize;
    let total: usize = img.topics.values().map(|t| t.partitions.len()).sum();
    lines.push(Line::plain(
        "partitions-h",
        format!(
            "Partitions ({} topics, {total} partitions):",
            img.topics.len()
        ),
    ));
    let mut topics: Vec<_> = img.topics.values().collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    for t in topics {
        for p in t.partitions.values() {
            let name = format!("{}-{}", t.name, p.partition);
            let live =
                |id: &protocol::ids::BrokerId| img.brokers.get(id).is_some_and(|b| !b.fenced);
            let is_offline = p.leader.is_none_or(|l| !live(&l));
            let is_under = p.isr.len() < p.replicas.len();
            let flag = if is_offline {
                offline.push(name.clone());
                "OFFLINE"
            } else if is_under {
                under.push(name.clone());
                "UNDER-REPLICATED"
            } else {
                ""
            };
            if shown >= args.max_partitions {
                continue;
            }
            shown += 1;
            let leader = p
                .leader
                .map(|l| l.to_string())
                .unwrap_or_else(|| "none".into());
            let text = format!(
                "  {name:<24} leader {leader:<4} epoch {:<4} replicas {:<10} isr {:<10} {flag}",
                p.leader_epoch,
                crate::table::id_list(&p.replicas),
                crate::table::id_list(&p.isr),
            );
            let state = format!("{leader} {} {:?} {flag}", p.leader_epoch, p.isr);
            lines.push(Line::new(
                format!("partition {name}"),
                state,
                text.trim_end().to_string(),
            ));
        }
    }
    if shown < total {
        lines.push(Line::plain(
            "partitions-more",
            format!("  ... {} more", total - shown),
        ));
    }
    lines.push(Line::plain(
        "urp",
        format!(
            "Under-replicated partitions: {}{}",
            under.len(),
            list_some(&under)
        ),
    ));
    lines.push(Line::plain(
        "offline",
        format!(
            "Offline partitions: {}{}",
            offline.len(),
            list_some(&offline)
        ),
    ));
}

fn list_some(names: &[String]) -> String {
    const SHOW: usize = 10;
    if names.is_empty() {
        return String::new();
    }
    let mut s = format!(
        " ({}",
        names
            .iter()
            .take(SHOW)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    if names.len() > SHOW {
        s.push_str(", ...");
    }
    s.push(')');
    s
}

/// Plain rendering for `cluster status`.
pub fn render_plain(lines: &[Line]) -> String {
    lines.iter().map(|l| format!("{}\n", l.text)).collect()
}

/// Fetches the quorum status and the image.
pub(crate) async fn fetch(
    controllers: &mut Controllers,
    limit: Duration,
) -> anyhow::Result<(QuorumStatus, MetadataImage)> {
    let q = controllers.describe_quorum(limit).await?;
    let img = controllers.fetch_image(limit).await?;
    Ok((q, img))
}

/// `gregor cluster status`.
pub async fn status(addrs: &[String], args: &ViewArgs) -> anyhow::Result<()> {
    let mut controllers = Controllers::new(addrs)?;
    let (q, img) = fetch(&mut controllers, Duration::from_secs(5)).await?;
    print!("{}", render_plain(&build(&q, &img, args)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::{changed, render_watch};
    use protocol::control::{BrokerImage, Endpoint, MetadataRecord, PartitionState, ReplicaStatus};
    use protocol::ids::{
        BrokerEpoch, BrokerId, LeaderEpoch, MetadataOffset, NodeId, PartitionEpoch, PartitionIndex,
        TopicId,
    };

    fn quorum(leader: u64) -> QuorumStatus {
        let r = |id: i64| ReplicaStatus {
            replica_id: id,
            log_end_offset: 10,
            last_fetch_ms_ago: Some(3),
            last_caught_up_ms_ago: Some(3),
        };
        QuorumStatus {
            cluster_id: "cid".into(),
            leader_id: Some(NodeId(leader)),
            leader_epoch: 4,
            high_watermark: 10,
            voters: vec![r(1), r(2), r(3)],
            observers: vec![],
        }
    }

    fn image(isr: Vec<i32>, leader: Option<i32>, fenced3: bool) -> MetadataImage {
        let mut img = MetadataImage::new("cid");
        for id in 1..=3 {
            img.brokers.insert(
                BrokerId(id),
                BrokerImage {
                    id: BrokerId(id),
                    epoch: BrokerEpoch(id as i64),
                    incarnation_id: uuid::Uuid::nil(),
                    listeners: vec![Endpoint {
                        listener: "EXTERNAL".into(),
                        host: "127.0.0.1".into(),
                        port: 9000 + id as u16,
                    }],
                    rack: None,
                    fenced: id == 3 && fenced3,
                    shutting_down: false,
                },
            );
        }
        let t = TopicId(uuid::Uuid::nil());
        img.apply_batch(
            MetadataOffset(9),
            &[
                MetadataRecord::Topic {
                    name: "orders".into(),
                    topic_id: t,
                },
                MetadataRecord::Partition(PartitionState {
                    topic_id: t,
                    partition: PartitionIndex(0),
                    replicas: vec![BrokerId(3), BrokerId(1), BrokerId(2)],
                    isr: isr.into_iter().map(BrokerId).collect(),
                    leader: leader.map(BrokerId),
                    leader_epoch: LeaderEpoch(2),
                    partition_epoch: PartitionEpoch(5),
                }),
            ],
        );
        img
    }

    #[test]
    fn status_shows_controller_brokers_and_partitions() {
        let lines = build(
            &quorum(2),
            &image(vec![3, 1, 2], Some(3), false),
            &ViewArgs { max_partitions: 40 },
        );
        let text = render_plain(&lines);
        assert!(
            text.contains("Active controller: controller-2 (epoch 4)"),
            "{text}"
        );
        assert!(
            text.contains("broker-3     unfenced      epoch 3"),
            "{text}"
        );
        assert!(text.contains("orders-0"), "{text}");
        assert!(text.contains("Under-replicated partitions: 0\n"), "{text}");
        assert!(text.contains("Offline partitions: 0\n"), "{text}");
    }

    #[test]
    fn fenced_leader_and_shrunk_isr_are_flagged_and_highlighted() {
        let args = ViewArgs { max_partitions: 40 };
        let before = build(&quorum(2), &image(vec![3, 1, 2], Some(3), false), &args);
        let after = build(&quorum(1), &image(vec![1, 2], Some(1), true), &args);
        let text = render_plain(&after);
        assert!(text.contains("FENCED"), "{text}");
        assert!(
            text.contains("Under-replicated partitions: 1 (orders-0)"),
            "{text}"
        );
        let keys = changed(&before, &after);
        assert!(keys.contains(&"active".to_string()));
        assert!(keys.contains(&"broker 3".to_string()));
        assert!(keys.contains(&"partition orders-0".to_string()));
        assert!(!keys.contains(&"broker 1".to_string()));
        // The voters' roles changed; their log end offsets did not matter.
        assert!(keys.contains(&"voter 1".to_string()) && keys.contains(&"voter 2".to_string()));
        assert!(!keys.contains(&"voter 3".to_string()));
        let frame = render_watch(&after, &keys, false);
        assert!(
            frame.contains("* Active controller: controller-1 (epoch 4)  (changed)"),
            "{frame}"
        );
        let colored = render_watch(&after, &keys, true);
        assert!(
            colored.contains("\x1b[1;33m* Active controller"),
            "{colored}"
        );
    }

    #[test]
    fn a_partition_without_leader_is_offline() {
        let lines = build(
            &quorum(2),
            &image(vec![3], None, true),
            &ViewArgs { max_partitions: 0 },
        );
        let text = render_plain(&lines);
        assert!(text.contains("Offline partitions: 1 (orders-0)"), "{text}");
        assert!(text.contains("... 1 more"), "{text}");
    }
}
