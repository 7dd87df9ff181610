//! `gregor group list | describe`: consumer groups with their state, members, assignments,
//! committed offsets and lag (kafka-consumer-groups' columns).

use crate::addrs::BootstrapArgs;
use crate::kafka::group::{decode_assignment, fetch_committed, find_coordinator};
use crate::kafka::ops::{self, LATEST};
use crate::kafka::{Client, KafkaError};
use crate::table;
use kafka_protocol::messages::{DescribeGroupsRequest, GroupId, ListGroupsRequest};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::path::Path;

const LIST_GROUPS_MAX_VERSION: i16 = 4;
const DESCRIBE_GROUPS_MAX_VERSION: i16 = 5;

#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Every consumer group with its state.
    List {
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Members, assignments, committed offsets and lag of one group.
    Describe {
        group: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

pub async fn run(dir: &Path, cmd: GroupCommand) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::List { bootstrap } => {
            let mut client = Client::connect(&bootstrap.resolve(dir)?).await?;
            print!("{}", list(&mut client).await?);
        }
        GroupCommand::Describe { group, bootstrap } => {
            let mut client = Client::connect(&bootstrap.resolve(dir)?).await?;
            print!("{}", describe(&mut client, &group).await?);
        }
    }
    Ok(())
}

/// Groups live on their coordinators, so every broker is asked.
async fn list(client: &mut Client) -> anyhow::Result<String> {
    let brokers: Vec<i32> = client
        .refresh(Some(&[]))
        .await?
        .brokers
        .keys()
        .copied()
        .collect();
    let mut groups = BTreeMap::new();
    for b in brokers {
        let conn = client.broker_conn(b).await?;
        let (resp, _) = conn
            .call(
                &ListGroupsRequest::default(),
                LIST_GROUPS_MAX_VERSION,
                crate::kafka::client::REQUEST_TIMEOUT,
            )
            .await?;
        if let Some(e) =
            KafkaError::api(format!("list groups on broker {b}"), resp.error_code, None)
        {
            return Err(e.into());
        }
        for g in resp.groups {
            groups.insert(g.group_id.0.to_string(), g.group_state.to_string());
        }
    }
    let rows: Vec<Vec<String>> = groups
        .into_iter()
        .map(|(g, s)| vec![g, if s.is_empty() { "-".into() } else { s }])
        .collect();
    Ok(table::render(&["GROUP", "STATE"], &rows))
}

/// One row of `group describe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LagRow {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub log_end: Option<i64>,
    pub member: Option<(String, String, String)>,
}

/// Renders kafka-consumer-groups' describe table.
pub fn format_describe(group: &str, state: &str, members: usize, rows: &[LagRow]) -> String {
    let mut out = format!("Consumer group '{group}' is {state} with {members} member(s).\n\n");
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let lag = match (r.committed, r.log_end) {
                (Some(c), Some(e)) if c >= 0 => (e - c).max(0).to_string(),
                _ => dash(),
            };
            let (id, host, client) = r.member.clone().unwrap_or_else(|| (dash(), dash(), dash()));
            vec![
                group.to_string(),
                r.topic.clone(),
                r.partition.to_string(),
                r.committed
                    .filter(|c| *c >= 0)
                    .map(|c| c.to_string())
                    .unwrap_or_else(dash),
                r.log_end.map(|e| e.to_string()).unwrap_or_else(dash),
                lag,
                id,
                host,
                client,
            ]
        })
        .collect();
    out.push_str(&table::render(
        &[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &rows,
    ));
    out
}

async fn describe(client: &mut Client, group: &str) -> anyhow::Result<String> {
    let coordinator = find_coordinator(client, group).await?;
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![GroupId(StrBytes::from_string(group.to_string()))];
    let (resp, _) = coordinator
        .call(
            &req,
            DESCRIBE_GROUPS_MAX_VERSION,
            crate::kafka::client::REQUEST_TIMEOUT,
        )
        .await?;
    let Some(g) = resp.groups.into_iter().next() else {
        anyhow::bail!("no answer about group '{group}'")
    };
    if let Some(e) = KafkaError::api(
        format!("describe group '{group}'"),
        g.error_code,
        g.error_message.map(|m| m.to_string()),
    ) {
        return Err(e.into());
    }
    if g.group_state.as_str() == "Dead" {
        anyhow::bail!("unknown group '{group}'");
    }
    // Who owns what, from the members' assignments.
    let mut owners: BTreeMap<(String, i32), (String, String, String)> = BTreeMap::new();
    for m in &g.members {
        let assigned = decode_assignment(&m.member_assignment).unwrap_or_default();
        for (topic, parts) in assigned {
            for p in parts {
                let who = (
                    m.member_id.to_string(),
                    m.client_host.to_string(),
                    m.client_id.to_string(),
                );
                owners.insert((topic.clone(), p), who);
            }
        }
    }
    let committed = fetch_committed(&coordinator, group, None).await?;
    let mut keys: Vec<(String, i32)> = committed
        .keys()
        .cloned()
        .chain(owners.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    let mut rows = Vec::new();
    for (topic, p) in keys {
        let log_end = ops::list_offset(client, &topic, p, LATEST).await.ok();
        rows.push(LagRow {
            committed: committed.get(&(topic.clone(), p)).copied(),
            log_end,
            member: owners.get(&(topic.clone(), p)).cloned(),
            topic,
            partition: p,
        });
    }
    Ok(format_describe(
        group,
        g.group_state.as_str(),
        g.members.len(),
        &rows,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_shows_offsets_lag_and_owner() {
        let rows = vec![
            LagRow {
                topic: "t".into(),
                partition: 0,
                committed: Some(5),
                log_end: Some(9),
                member: Some(("m-1".into(), "/127.0.0.1".into(), "gregor".into())),
            },
            LagRow {
                topic: "t".into(),
                partition: 1,
                committed: Some(-1),
                log_end: Some(3),
                member: None,
            },
        ];
        let out = format_describe("g", "Stable", 1, &rows);
        assert!(
            out.starts_with("Consumer group 'g' is Stable with 1 member(s).\n\n"),
            "{out}"
        );
        let lines: Vec<Vec<&str>> = out
            .lines()
            .skip(3)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            ["g", "t", "0", "5", "9", "4", "m-1", "/127.0.0.1", "gregor"]
        );
        assert_eq!(lines[1], ["g", "t", "1", "-", "3", "-", "-", "-", "-"]);
    }
}
