//! `gregor topic create | list | describe | delete | alter-config`.

use crate::addrs::BootstrapArgs;
use crate::kafka::client::TopicMeta;
use crate::kafka::ops::{self, TopicSpec};
use crate::kafka::Client;
use anyhow::{bail, Context};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, clap::Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Number of partitions (default: the cluster's default).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        partitions: i32,
        /// Replicas per partition (default: the cluster's default).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        replication_factor: i16,
        /// A topic config `key=value`; repeat for more.
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// List topic names.
    List {
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Partitions of one topic (or of all) with leader, leader epoch, replicas, ISR, offline.
    Describe {
        name: Option<String>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Delete a topic.
    Delete {
        name: String,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
    /// Set or delete topic configs.
    AlterConfig {
        name: String,
        /// `key=value` to set; repeat for more.
        #[arg(long = "set", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// A key to delete (back to the default); repeat for more.
        #[arg(long = "delete")]
        delete: Vec<String>,
        #[command(flatten)]
        bootstrap: BootstrapArgs,
    },
}

/// Parses `key=value`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got '{s}'")),
    }
}

pub async fn run(dir: &Path, cmd: TopicCommand) -> anyhow::Result<()> {
    match cmd {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            bootstrap,
        } => {
            let mut client = Client::connect(&bootstrap.resolve(dir)?).await?;
            let spec = TopicSpec {
                name: name.clone(),
                partitions,
                replication_factor,
                configs,
            };
            ops::create_topic(&mut client, &spec).await?;
            wait_for_leaders(&mut client, &name, Duration::from_secs(15)).await?;
            println!("Created topic {name}.");
        }
        TopicCommand::List { bootstrap } => {
            let mut client = Client::connect(&bootstrap.resolve(dir)?).await?;
            let meta = client.refresh(None).await?;
            for name in meta.topics.keys() {
                println!("{name}");
            }
        }
        TopicCommand::Describe { name, bootstrap } => {
            let mut client = Client::connect(&bootstrap.resolve(dir)?).await?;
            let topics: Vec<TopicMeta> = match name {
                Some(n) => vec![client.topic(&n).await?],
                None => client
                    .refresh(None)
                    .await?
                    .topics
                    .values()
                    .cloned()
                    .collect(),
            };
            for t in &topics {
                // Older or partial servers may not answer DescribeConfigs; the partitions
                // are still worth printing.
                let configs = ops::topic_config_overrides(&mut client, &t.name)
                    .await
                    .unwrap_or_default();
                print!("{}", format_topic(t, &configs));
            }
        }
        TopicCommand::Delete { name, bootstrap } => {
            let mut client = Client::connect(&bootstrap.resolve(dir)?).await?;
            ops::delete_topic(&mut client, &name).await?;
            println!("Deleted topic {name}.");
        }
        TopicCommand::AlterConfig {
            name,
            set,
            delete,
            bootstrap,
        } => {
            if set.is_empty() && delete.is_empty() {
                bail!("nothing to change: pass --set key=value and/or --delete key");
            }
            let mut client = Client::connect(&bootstrap.resolve(dir)?).await?;
            ops::alter_topic_configs(&mut client, &name, &set, &delete).await?;
            println!("Altered configs of topic {name}.");
        }
    }
    Ok(())
}

/// Waits until every partition of a new topic has a leader, so the next command can use it.
async fn wait_for_leaders(client: &mut Client, name: &str, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(t) = client.topic(name).await {
            if !t.partitions.is_empty() && t.partitions.values().all(|p| p.leader >= 0) {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(anyhow::anyhow!(
                "topic {name} was created but its partitions have no leader after {}s",
                limit.as_secs()
            ))
            .context("the brokers may still be starting");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn join(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// kafka-topics' describe format; `configs` are the topic's overrides.
pub fn format_topic(t: &TopicMeta, configs: &[(String, String)]) -> String {
    let rf = t
        .partitions
        .values()
        .map(|p| p.replicas.len())
        .max()
        .unwrap_or(0);
    let configs: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut out = format!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {rf}\tConfigs: {}\n",
        t.name,
        t.topic_id,
        t.partitions.len(),
        configs.join(",")
    );
    for p in t.partitions.values() {
        let leader = if p.leader < 0 {
            "none".to_string()
        } else {
            p.leader.to_string()
        };
        out.push_str(&format!(
            "\tTopic: {}\tPartition: {}\tLeader: {leader}\tLeaderEpoch: {}\tReplicas: {}\tIsr: {}\tOffline: {}\n",
            t.name,
            p.partition,
            p.leader_epoch,
            join(&p.replicas),
            join(&p.isr),
            join(&p.offline),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::client::PartitionMeta;

    #[test]
    fn key_values_split_at_the_first_equals() {
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }

    #[test]
    fn describe_shows_leader_epoch_replicas_isr_offline() {
        let p = |i, leader| PartitionMeta {
            partition: i,
            error_code: 0,
            leader,
            leader_epoch: 4,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            offline: vec![3],
        };
        let t = TopicMeta {
            name: "orders".into(),
            error_code: 0,
            topic_id: uuid::Uuid::nil(),
            is_internal: false,
            partitions: [(0, p(0, 1)), (1, p(1, -1))].into_iter().collect(),
        };
        let out = format_topic(
            &t,
            &[
                ("retention.ms".into(), "5".into()),
                ("x".into(), "y".into()),
            ],
        );
        assert!(
            out.starts_with(
                "Topic: orders\tTopicId: 00000000-0000-0000-0000-000000000000\tPartitionCount: 2\t\
                 ReplicationFactor: 3\tConfigs: retention.ms=5,x=y\n"
            ),
            "{out}"
        );
        assert!(out.contains("\tPartition: 0\tLeader: 1\tLeaderEpoch: 4\tReplicas: 1,2,3\tIsr: 1,2\tOffline: 3\n"), "{out}");
        assert!(out.contains("\tPartition: 1\tLeader: none\t"), "{out}");
    }
}
