//! `gregor-protocol`: everything Gregor puts on a wire, with no sockets and no tasks.
//!
//! - [`ids`]: newtypes for ids, epochs and offsets used across the workspace.
//! - [`frame`]: the `i32` size-prefixed framing of both protocols, bounded before allocation.
//! - [`control`]: the internal broker <-> controller and controller <-> controller protocol,
//!   including metadata records and the metadata image.
//! - [`kafka`]: the Kafka API surface Gregor serves, over the `kafka-protocol` crate.
//! - [`records`]: plain records for `kafka-protocol`'s batch encoder.
//! - [`splice`]: response frames whose record data is not copied (fetch), as pieces for a
//!   vectored write.

pub mod control;
pub mod frame;
pub mod ids;
pub mod kafka;
pub mod records;
pub mod splice;

pub use kafka_protocol;
