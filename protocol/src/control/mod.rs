//! The internal control protocol: broker <-> controller and controller <-> controller.
//!
//! - [`records`]: metadata records, the entries of the Raft log.
//! - [`image`]: the metadata image those records build, shared by controllers and brokers.
//! - [`messages`]: typed requests and responses.
//! - [`codec`]: version-tagged, bounded binary encoding of frame bodies (framing itself is
//!   [`crate::frame`]).

pub mod codec;
pub mod image;
pub mod messages;
pub mod records;

pub use codec::{
    decode_request, decode_response, encode_request, encode_response, CodecError, CONTROL_VERSION,
    MAX_CONTROL_FRAME_BYTES,
};
pub use image::{BrokerImage, MetadataImage, TopicImage};
pub use messages::*;
pub use records::{Endpoint, MetadataBatch, MetadataRecord, PartitionState, TopicConfigs};
