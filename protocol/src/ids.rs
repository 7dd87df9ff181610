//! Newtypes for every id and offset that crosses a crate boundary.
//!
//! Raw integers appear only at the protocol edge (Kafka messages carry `i32`/`i64`);
//! everything inside Gregor speaks in these types so that an offset can never be passed
//! where an epoch was meant.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }
    };
}

id_newtype!(
    /// A broker's node id (Kafka `broker.id` / `node.id`).
    BrokerId(i32)
);
id_newtype!(
    /// A controller's node id in the Raft quorum.
    NodeId(u64)
);
id_newtype!(
    /// A position in a partition log.
    Offset(i64)
);
id_newtype!(
    /// The epoch of a partition's leadership; bumps on every leader change.
    LeaderEpoch(i32)
);
id_newtype!(
    /// The epoch of a partition's state (leader, ISR, replicas); bumps on every change.
    PartitionEpoch(i32)
);
id_newtype!(
    /// A broker's epoch: the metadata offset of its registration record.
    BrokerEpoch(i64)
);
id_newtype!(
    /// The position of a record in the metadata log (its Raft log index).
    MetadataOffset(u64)
);
id_newtype!(
    /// A partition number within a topic.
    PartitionIndex(i32)
);

impl Offset {
    /// The offset `n` positions after this one.
    pub fn plus(self, n: i64) -> Offset {
        Offset(self.0 + n)
    }
}

impl LeaderEpoch {
    /// The next epoch.
    pub fn next(self) -> LeaderEpoch {
        LeaderEpoch(self.0 + 1)
    }
}

impl PartitionEpoch {
    /// The next epoch.
    pub fn next(self) -> PartitionEpoch {
        PartitionEpoch(self.0 + 1)
    }
}

/// A topic's id (Kafka's topic UUID).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TopicId(pub uuid::Uuid);

impl TopicId {
    /// A fresh random topic id.
    pub fn random() -> TopicId {
        TopicId(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A partition of a named topic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: PartitionIndex,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition: PartitionIndex(partition),
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition.0)
    }
}
