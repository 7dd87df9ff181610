//! Which `__consumer_offsets` partition a group lives in, exactly as Kafka computes it.

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units,
/// with 32-bit wrapping arithmetic.
pub fn java_string_hashcode(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition of `group_id`: Kafka's
/// `Utils.abs(groupId.hashCode) % groupMetadataTopicPartitionCount`, where `Utils.abs`
/// maps `i32::MIN` to 0 (`n & 0x7fffffff`).
pub fn partition_for(group_id: &str, offsets_partitions: i32) -> i32 {
    assert!(
        offsets_partitions > 0,
        "offsets_partitions must be positive"
    );
    (java_string_hashcode(group_id) & 0x7fff_ffff) % offsets_partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_java() {
        // Values computed with Java's String.hashCode.
        assert_eq!(java_string_hashcode(""), 0);
        assert_eq!(java_string_hashcode("a"), 97);
        assert_eq!(java_string_hashcode("hello"), 99_162_322);
        assert_eq!(java_string_hashcode("console-consumer-12345"), 158_455_506);
        assert_eq!(java_string_hashcode("my-group"), -1_906_497_762);
        // Non-BMP characters hash as their two UTF-16 surrogates.
        assert_eq!(java_string_hashcode("\u{1F600}"), 0xD83D * 31 + 0xDE00);
    }

    #[test]
    fn partition_in_range() {
        for g in [
            "",
            "a",
            "my-group",
            "console-consumer-12345",
            "polygenelubricants",
        ] {
            let p = partition_for(g, 50);
            assert!((0..50).contains(&p), "{g} -> {p}");
        }
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE; Utils.abs maps it to 0.
        assert_eq!(java_string_hashcode("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
    }
}
