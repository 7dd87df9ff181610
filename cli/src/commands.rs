//! The command line: every command group and its dispatch. Each group's options and work
//! live in its own module; this file only wires them together.

use crate::addrs::ControllerArgs;
use crate::launcher::process::NodeSignal;
use crate::launcher::{ops, up};
use crate::{consume, group_cmd, perf, produce, quorum, status, topic, watch};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// gregor: run a local Gregor cluster and talk to any Gregor (or Kafka) cluster.
#[derive(Debug, Parser)]
#[command(name = "gregor", version, about, propagate_version = true)]
pub struct Cli {
    /// The local cluster directory (cluster.json, node data and logs).
    #[arg(long, global = true, env = "GREGOR_DIR", default_value = ".gregor")]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start, stop and inspect a cluster.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The controllers' Raft quorum.
    #[command(subcommand)]
    Quorum(QuorumCommand),
    /// Create, list, describe, delete topics and change their configs.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Produce lines of stdin as records.
    Produce(produce::ProduceArgs),
    /// Print records of a topic.
    Consume(consume::ConsumeArgs),
    /// Consumer groups: list, describe (members, offsets, lag).
    #[command(subcommand)]
    Group(group_cmd::GroupCommand),
    /// Load tests in the style of kafka-producer-perf-test.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a local cluster of controller and broker processes.
    Up(up::UpArgs),
    /// Stop every node of the local cluster (SIGTERM, then SIGKILL).
    Down,
    /// Send a signal to one node (default SIGKILL).
    Kill {
        /// The node: a name (controller-1, broker-2), `active-controller`, or
        /// `leader:TOPIC-PARTITION` (the broker leading that partition).
        node: String,
        #[arg(long, value_enum, ignore_case = true, default_value = "kill")]
        signal: NodeSignal,
    },
    /// Restart one stopped node with its data.
    Start {
        /// The node, e.g. controller-1 or broker-2.
        node: String,
    },
    /// Active controller, voters, brokers, under-replicated and offline partitions.
    Status {
        #[command(flatten)]
        controllers: ControllerArgs,
        #[command(flatten)]
        view: status::ViewArgs,
    },
    /// A live view of the cluster status that highlights every change.
    Watch {
        #[command(flatten)]
        controllers: ControllerArgs,
        #[command(flatten)]
        watch: watch::WatchArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuorumCommand {
    /// Quorum status or per-replica replication state (kafka-metadata-quorum's fields).
    Describe {
        #[command(flatten)]
        what: quorum::DescribeArgs,
        #[command(flatten)]
        controllers: ControllerArgs,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = cli.dir;
    match cli.command {
        Command::Cluster(cmd) => match cmd {
            ClusterCommand::Up(args) => up::run(&dir, &args).await,
            ClusterCommand::Down => ops::down(&dir),
            ClusterCommand::Kill { node, signal } => ops::kill(&dir, &node, signal).await,
            ClusterCommand::Start { node } => ops::start(&dir, &node).await,
            ClusterCommand::Status { controllers, view } => {
                status::status(&controllers.resolve(&dir)?, &view).await
            }
            ClusterCommand::Watch { controllers, watch } => {
                watch::watch(&controllers.resolve(&dir)?, &watch).await
            }
        },
        Command::Quorum(QuorumCommand::Describe { what, controllers }) => {
            quorum::describe(&controllers.resolve(&dir)?, &what).await
        }
        Command::Topic(cmd) => topic::run(&dir, cmd).await,
        Command::Produce(args) => produce::run(&dir, &args).await,
        Command::Consume(args) => consume::run(&dir, &args).await,
        Command::Group(cmd) => group_cmd::run(&dir, cmd).await,
        Command::Perf(cmd) => perf::run(&dir, cmd).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cluster_up_takes_counts_and_detach() {
        let cli = Cli::try_parse_from([
            "gregor",
            "--dir",
            "/x",
            "cluster",
            "up",
            "--controllers",
            "1",
            "--brokers",
            "2",
            "--detach",
        ])
        .unwrap();
        let Command::Cluster(ClusterCommand::Up(up)) = cli.command else {
            panic!("not up")
        };
        assert_eq!((up.controllers, up.brokers, up.detach), (1, 2, true));
        assert_eq!(cli.dir, PathBuf::from("/x"));
    }

    #[test]
    fn kill_defaults_to_sigkill_and_accepts_names() {
        let cli = Cli::try_parse_from(["gregor", "cluster", "kill", "broker-1"]).unwrap();
        let Command::Cluster(ClusterCommand::Kill { node, signal }) = cli.command else {
            panic!()
        };
        assert_eq!((node.as_str(), signal), ("broker-1", NodeSignal::Kill));
        let cli = Cli::try_parse_from([
            "gregor",
            "cluster",
            "kill",
            "controller-2",
            "--signal",
            "STOP",
        ])
        .unwrap();
        let Command::Cluster(ClusterCommand::Kill { signal, .. }) = cli.command else {
            panic!()
        };
        assert_eq!(signal, NodeSignal::Stop);
    }

    #[test]
    fn produce_and_consume_options_parse() {
        let cli = Cli::try_parse_from([
            "gregor",
            "produce",
            "t",
            "--acks",
            "all",
            "--compression",
            "zstd",
            "--key-separator",
            ":",
            "--header",
            "a=b",
            "--bootstrap",
            "h:1,h:2",
        ])
        .unwrap();
        let Command::Produce(p) = cli.command else {
            panic!()
        };
        assert_eq!(p.acks, -1);
        assert_eq!(p.compression, kafka_protocol::records::Compression::Zstd);
        assert_eq!(p.headers, vec![("a".to_string(), "b".to_string())]);
        assert_eq!(p.bootstrap.bootstrap, vec!["h:1", "h:2"]);
        assert!(
            Cli::try_parse_from(["gregor", "produce", "t", "--compression", "brotli"]).is_err()
        );
        assert!(Cli::try_parse_from([
            "gregor",
            "consume",
            "t",
            "--from-beginning",
            "--offset",
            "3"
        ])
        .is_err());
        let cli = Cli::try_parse_from([
            "gregor",
            "consume",
            "t",
            "--timestamp",
            "17",
            "--max-messages",
            "2",
        ])
        .unwrap();
        let Command::Consume(c) = cli.command else {
            panic!()
        };
        assert_eq!((c.timestamp, c.max_messages), (Some(17), Some(2)));
    }

    #[test]
    fn topic_create_takes_repeated_configs() {
        let cli = Cli::try_parse_from([
            "gregor",
            "topic",
            "create",
            "t",
            "--partitions",
            "3",
            "--replication-factor",
            "2",
            "--config",
            "retention.ms=1000",
            "--config",
            "min.insync.replicas=2",
        ])
        .unwrap();
        let Command::Topic(topic::TopicCommand::Create {
            partitions,
            replication_factor,
            configs,
            ..
        }) = cli.command
        else {
            panic!()
        };
        assert_eq!((partitions, replication_factor, configs.len()), (3, 2, 2));
    }

    #[test]
    fn quorum_describe_needs_exactly_one_view() {
        assert!(Cli::try_parse_from(["gregor", "quorum", "describe"]).is_err());
        assert!(
            Cli::try_parse_from(["gregor", "quorum", "describe", "--status", "--replication"])
                .is_err()
        );
        let cli = Cli::try_parse_from([
            "gregor",
            "quorum",
            "describe",
            "--replication",
            "--controllers",
            "a:1,b:2",
        ])
        .unwrap();
        let Command::Quorum(QuorumCommand::Describe { what, controllers }) = cli.command else {
            panic!()
        };
        assert!(what.replication && !what.status);
        assert_eq!(controllers.controllers, vec!["a:1", "b:2"]);
    }
}
