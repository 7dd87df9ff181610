//! The `gregor` command: a local cluster launcher, cluster and quorum views over the
//! control protocol, and topic, produce, consume and perf commands over the Kafka protocol.
//!
//! - [`commands`]: the clap command line and its dispatch (`main.rs` only parses and calls it).
//! - [`addrs`]: `--bootstrap` / `--controllers`, defaulting to `DIR/cluster.json`.
//! - [`cluster_file`]: `DIR/cluster.json`, written by `cluster up`, read by everything else.
//! - [`launcher`]: `cluster up | down | kill | start` (local processes).
//! - [`control`]: quorum status and the metadata image from the controllers.
//! - [`quorum`]: `quorum describe` in kafka-metadata-quorum's format.
//! - [`status`], [`watch`]: `cluster status` and `cluster watch`.
//! - [`kafka`]: a small async Kafka client (connections, metadata, records).
//! - [`topic`], [`produce`], [`consume`] (+ [`consume_group`]), [`group_cmd`], [`perf`]:
//!   the Kafka-protocol commands.
//! - [`table`]: plain-text tables.

pub mod addrs;
pub mod cluster_file;
pub mod commands;
pub mod consume;
pub mod consume_group;
pub mod control;
pub mod group_cmd;
pub mod kafka;
pub mod launcher;
pub mod perf;
pub mod produce;
pub mod quorum;
pub mod status;
pub mod table;
pub mod topic;
pub mod watch;

pub use commands::{run, Cli};
