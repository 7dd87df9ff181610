//! A small async Kafka client over the `kafka-protocol` crate's messages and record codec.
//!
//! - [`conn`]: one connection: framing, correlation ids, pipelining, ApiVersions.
//! - [`client`]: bootstrap, metadata, a connection per broker, leader lookup.
//! - [`records`]: record batches in and out (with compression).
//! - [`ops`]: the requests the commands need (produce, fetch, list offsets, admin).
//! - [`group`]: a consumer group member (classic protocol, range assignor).
//! - [`error`]: errors worded for the user.

pub mod client;
pub mod conn;
pub mod error;
pub mod group;
pub mod ops;
pub mod records;

pub use client::Client;
pub use error::KafkaError;
