//! Topic config validation (INVALID_CONFIG on failure).

/// Keys Kafka knows that Gregor stores without interpreting.
const PASS_THROUGH: &[&str] = &[
    "compression.type",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "remote.storage.enable",
    "segment.index.bytes",
    "segment.jitter.ms",
];

fn int(value: &str, min: i64, max: i64) -> Result<(), String> {
    match value.trim().parse::<i64>() {
        Ok(v) if v >= min && v <= max => Ok(()),
        Ok(v) => Err(format!("{v} is outside [{min}, {max}]")),
        Err(_) => Err(format!("`{value}` is not an integer")),
    }
}

/// Checks one topic config; the error says why.
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    let i32max = i64::from(i32::MAX);
    let r = match key {
        "retention.ms" | "retention.bytes" => int(value, -1, i64::MAX),
        "segment.bytes" => int(value, 14, i32max),
        "segment.ms" => int(value, 1, i64::MAX),
        "min.insync.replicas" => int(value, 1, i32max),
        "max.message.bytes" => int(value, 0, i32max),
        "flush.messages" => int(value, 1, i64::MAX),
        "flush.ms" => int(value, 0, i64::MAX),
        "unclean.leader.election.enable" | "preallocate" => {
            match value.trim().to_ascii_lowercase().as_str() {
                "true" | "false" => Ok(()),
                _ => Err(format!("`{value}` is not true or false")),
            }
        }
        "cleanup.policy" => {
            let ok = value
                .split(',')
                .map(str::trim)
                .all(|p| p == "delete" || p == "compact");
            if ok && !value.trim().is_empty() {
                Ok(())
            } else {
                Err(format!("`{value}` is not a list of delete/compact"))
            }
        }
        k if PASS_THROUGH.contains(&k) => Ok(()),
        _ => return Err(format!("unknown topic config `{key}`")),
    };
    r.map_err(|e| format!("invalid value for {key}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn known_keys_and_values() {
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("segment.bytes", "10").is_err());
        assert!(validate("min.insync.replicas", "2").is_ok());
        assert!(validate("min.insync.replicas", "x").is_err());
        assert!(validate("unclean.leader.election.enable", "TRUE").is_ok());
        assert!(validate("preallocate", "true").is_ok());
        assert!(validate("preallocate", "yes").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "keep").is_err());
        assert!(validate("no.such.key", "1").is_err());
        assert!(validate("compression.type", "lz4").is_ok());
    }
}
