//! The local cluster launcher: `gregor cluster up | down | kill | start`.
//!
//! - [`plan`]: the layout of a cluster (names, ports, data dirs, command lines); pure.
//! - [`process`]: starting node processes, checking pids, signals, stopping.
//! - [`ready`]: waiting until the quorum has a leader and every broker is unfenced.
//! - [`up`]: `cluster up` (foreground or `--detach`).
//! - [`ops`]: `cluster down`, `cluster kill`, `cluster start`.
//!
//! Everything the launcher knows about a running cluster is in `DIR/cluster.json`
//! ([`crate::cluster_file`]), so each command is a separate process.

pub mod ops;
pub mod plan;
pub mod process;
pub mod ready;
pub mod up;
