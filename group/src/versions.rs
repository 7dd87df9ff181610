//! The Kafka APIs the coordinator serves and the version range of each, chosen so that
//! kcat and confluent-kafka (librdkafka 2.x), kafka-python and aiokafka all find a version
//! they speak. Upper bounds stop before versions that batch several groups or keys in one
//! request (OffsetFetch v8+) or that need KIP-848 fields (JoinGroup v8+ reasons are fine to
//! ignore, but no client here needs them). `kafka-protocol` 0.18 starts OffsetCommit at v2
//! and OffsetFetch at v1, as Kafka 4 does.

use kafka_protocol::messages::ApiKey;

/// One served API and its inclusive version range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

/// Every API of the group coordinator with its supported versions.
pub const GROUP_APIS: &[ApiRange] = &[
    ApiRange {
        key: ApiKey::FindCoordinator,
        min: 0,
        max: 4,
    },
    ApiRange {
        key: ApiKey::JoinGroup,
        min: 0,
        max: 7,
    },
    ApiRange {
        key: ApiKey::SyncGroup,
        min: 0,
        max: 5,
    },
    ApiRange {
        key: ApiKey::Heartbeat,
        min: 0,
        max: 4,
    },
    ApiRange {
        key: ApiKey::LeaveGroup,
        min: 0,
        max: 4,
    },
    ApiRange {
        key: ApiKey::OffsetCommit,
        min: 2,
        max: 8,
    },
    ApiRange {
        key: ApiKey::OffsetFetch,
        min: 1,
        max: 7,
    },
    ApiRange {
        key: ApiKey::ListGroups,
        min: 0,
        max: 4,
    },
    ApiRange {
        key: ApiKey::DescribeGroups,
        min: 0,
        max: 5,
    },
    ApiRange {
        key: ApiKey::DeleteGroups,
        min: 0,
        max: 2,
    },
];

/// The supported range of `key`, if the coordinator serves it.
pub fn supported(key: ApiKey) -> Option<ApiRange> {
    GROUP_APIS.iter().copied().find(|r| r.key == key)
}

/// Whether `version` of `key` is served.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported(key).is_some_and(|r| (r.min..=r.max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inside_the_crate() {
        for r in GROUP_APIS {
            let valid = r.key.valid_versions();
            assert!(valid.min <= r.min && r.max <= valid.max, "{:?}", r.key);
        }
        assert!(is_supported(ApiKey::JoinGroup, 7));
        assert!(!is_supported(ApiKey::OffsetFetch, 8));
    }
}
