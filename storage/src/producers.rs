//! Producer state of one partition, for idempotent producers (Kafka's
//! `ProducerStateManager`): per producer id, its epoch and the sequence and offset ranges
//! of its last [`CACHED_BATCHES`] batches.
//!
//! A pure state machine, no files: [`ProducerStates::check`] judges a leader's incoming
//! batches (append, duplicate of a cached batch, or refused), and [`ProducerStates::record`]
//! takes in every batch the log stores — leader appends, follower appends and the replay of
//! recovery alike — so every replica holds the same state and a new leader deduplicates
//! retries after a failover. `producer_snapshots.rs` saves and reloads it.
//!
//! The rules are Kafka's (`ProducerAppendInfo`):
//! - an unknown producer id starts at any sequence (its older batches may have been deleted);
//! - an older epoch than the one seen is INVALID_PRODUCER_EPOCH;
//! - a newer epoch starts at sequence 0;
//! - within an epoch a batch whose sequence range equals a cached batch's is a duplicate
//!   (answered with that batch's offsets, nothing appended); otherwise it must start right
//!   after the last sequence (sequences wrap from `i32::MAX` to 0), or it is
//!   OUT_OF_ORDER_SEQUENCE_NUMBER.

use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;

/// Batches remembered per producer: Kafka's limit of in-flight requests per connection for
/// an idempotent producer (`max.in.flight.requests.per.connection` <= 5).
pub const CACHED_BATCHES: usize = 5;

/// Attribute bit of a control batch (transaction markers), which carries no sequence.
const CONTROL_FLAG: i16 = 0x20;

/// One stored batch of a producer: its sequence and offset ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchRange {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What the log knows of one producer id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first, at most [`CACHED_BATCHES`].
    pub batches: VecDeque<BatchRange>,
    /// The max timestamp of its last batch (for expiry).
    pub last_timestamp: i64,
}

impl ProducerEntry {
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
}

/// The verdict on a leader's incoming batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Append them.
    Append,
    /// A retry of a batch already stored: answer with its offsets, append nothing.
    Duplicate(BatchRange),
}

/// Why a producer's batch is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// INVALID_PRODUCER_EPOCH: a newer epoch of this producer id was seen (a fenced zombie).
    #[error("producer {producer_id}: epoch {epoch} is older than the current epoch {current}")]
    StaleEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    /// OUT_OF_ORDER_SEQUENCE_NUMBER: a gap (or a rewind) in the producer's sequences.
    #[error(
        "producer {producer_id} epoch {epoch}: sequence {found} where {expected} was expected"
    )]
    OutOfOrder {
        producer_id: i64,
        epoch: i16,
        expected: i32,
        found: i32,
    },
}

/// The sequence of a batch's last record: `base + delta`, wrapping past `i32::MAX` to 0.
pub fn last_sequence(base: i32, last_offset_delta: i32) -> i32 {
    let sum = i64::from(base) + i64::from(last_offset_delta.max(0));
    (sum % (i64::from(i32::MAX) + 1)) as i32
}

fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

/// Whether the batch takes part in idempotence at all.
fn tracked(h: &BatchHeader) -> bool {
    h.producer_id >= 0 && h.attributes & CONTROL_FLAG == 0
}

/// The producer state of one partition (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// Judges a leader's incoming `batches`, in order, as if each earlier one had been
    /// appended: the first duplicate makes the whole request a duplicate (as in Kafka,
    /// where a produce request holds one batch per partition).
    pub fn check<'a>(
        &self,
        batches: impl IntoIterator<Item = &'a BatchHeader>,
    ) -> Result<Verdict, SequenceError> {
        // (epoch, last sequence) of producers seen earlier in this request.
        let mut pending: HashMap<i64, (i16, i32)> = HashMap::new();
        for h in batches {
            if !tracked(h) {
                continue;
            }
            let pid = h.producer_id;
            let known = self.producers.get(&pid);
            let current = pending
                .get(&pid)
                .map(|&(e, s)| (e, Some(s)))
                .or_else(|| known.map(|k| (k.epoch, k.last_seq())));
            let last = last_sequence(h.base_sequence, h.last_offset_delta);
            if let Some((epoch, last_seq)) = current {
                if h.producer_epoch < epoch {
                    return Err(SequenceError::StaleEpoch {
                        producer_id: pid,
                        epoch: h.producer_epoch,
                        current: epoch,
                    });
                }
                let out_of_order = |expected| SequenceError::OutOfOrder {
                    producer_id: pid,
                    epoch: h.producer_epoch,
                    expected,
                    found: h.base_sequence,
                };
                if h.producer_epoch > epoch {
                    if h.base_sequence != 0 {
                        return Err(out_of_order(0));
                    }
                } else {
                    if !pending.contains_key(&pid) {
                        let dup = known.and_then(|k| {
                            k.batches
                                .iter()
                                .find(|b| b.first_seq == h.base_sequence && b.last_seq == last)
                        });
                        if let Some(d) = dup {
                            return Ok(Verdict::Duplicate(*d));
                        }
                    }
                    match last_seq {
                        Some(s) if h.base_sequence != next_sequence(s) => {
                            return Err(out_of_order(next_sequence(s)));
                        }
                        _ if h.base_sequence < 0 => return Err(out_of_order(0)),
                        _ => {}
                    }
                }
            } else if h.base_sequence < 0 {
                // A producer id without sequences: nothing to check or remember.
                continue;
            }
            pending.insert(pid, (h.producer_epoch, last));
        }
        Ok(Verdict::Append)
    }

    /// Takes in a batch the log stored at `h.base_offset` (any replica, any path).
    pub fn record(&mut self, h: &BatchHeader) {
        if !tracked(h) || h.base_sequence < 0 {
            return;
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
                last_timestamp: h.max_timestamp,
            });
        if entry.epoch != h.producer_epoch {
            // A new epoch starts over (the leader's log decides; a follower never refuses).
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchRange {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h.base_sequence, h.last_offset_delta),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
        });
        entry.last_timestamp = entry.last_timestamp.max(h.max_timestamp);
    }

    /// Forgets producers whose last batch was written before `now_ms - max_age_ms`
    /// (Kafka's `producer.id.expiration.ms`). Returns how many went.
    pub fn expire(&mut self, now_ms: i64, max_age_ms: i64) -> usize {
        let before = self.producers.len();
        let cutoff = now_ms.saturating_sub(max_age_ms);
        self.producers.retain(|_, e| e.last_timestamp >= cutoff);
        before - self.producers.len()
    }

    /// Forgets producers with no batch left at or after `log_start` (retention or
    /// DeleteRecords removed them), as Kafka does when the log start moves.
    pub fn evict_below(&mut self, log_start: i64) {
        self.producers
            .retain(|_, e| e.batches.back().is_none_or(|b| b.last_offset >= log_start));
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// One line per producer, sorted by id: `pid epoch last_timestamp` then four numbers
    /// per batch (first and last sequence, first and last offset).
    pub fn to_lines(&self) -> Vec<String> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        ids.into_iter()
            .map(|pid| {
                let e = &self.producers[pid];
                let mut line = format!("{pid} {} {}", e.epoch, e.last_timestamp);
                for b in &e.batches {
                    line.push_str(&format!(
                        " {} {} {} {}",
                        b.first_seq, b.last_seq, b.first_offset, b.last_offset
                    ));
                }
                line
            })
            .collect()
    }

    /// The inverse of [`Self::to_lines`]; `None` if any line does not parse.
    pub fn from_lines(lines: &[String]) -> Option<ProducerStates> {
        let mut producers = HashMap::new();
        for line in lines {
            let mut f = line.split_ascii_whitespace();
            let pid: i64 = f.next()?.parse().ok()?;
            let epoch: i16 = f.next()?.parse().ok()?;
            let last_timestamp: i64 = f.next()?.parse().ok()?;
            let rest: Vec<i64> = f.map(|n| n.parse().ok()).collect::<Option<_>>()?;
            if !rest.len().is_multiple_of(4) || rest.len() / 4 > CACHED_BATCHES {
                return None;
            }
            let batches = rest
                .chunks(4)
                .map(|c| {
                    Some(BatchRange {
                        first_seq: i32::try_from(c[0]).ok()?,
                        last_seq: i32::try_from(c[1]).ok()?,
                        first_offset: c[2],
                        last_offset: c[3],
                    })
                })
                .collect::<Option<VecDeque<_>>>()?;
            producers.insert(
                pid,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                },
            );
        }
        Some(ProducerStates { producers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batch(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 1_000,
            max_timestamp: 1_000,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: count,
        }
    }

    fn appended(s: &mut ProducerStates, h: BatchHeader) {
        assert_eq!(s.check([&h]), Ok(Verdict::Append), "{h:?}");
        s.record(&h);
    }

    #[test]
    fn a_retried_batch_is_a_duplicate_with_its_first_offsets() {
        let mut s = ProducerStates::default();
        appended(&mut s, batch(7, 0, 0, 3, 10));
        appended(&mut s, batch(7, 0, 3, 2, 13));
        let dup = s.check([&batch(7, 0, 0, 3, -1)]).unwrap();
        assert_eq!(
            dup,
            Verdict::Duplicate(BatchRange {
                first_seq: 0,
                last_seq: 2,
                first_offset: 10,
                last_offset: 12
            })
        );
        appended(&mut s, batch(7, 0, 5, 1, 15));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..6 {
            appended(&mut s, batch(1, 0, i, 1, i64::from(i)));
        }
        assert!(matches!(
            s.check([&batch(1, 0, 1, 1, -1)]),
            Ok(Verdict::Duplicate(_))
        ));
        assert!(matches!(
            s.check([&batch(1, 0, 0, 1, -1)]),
            Err(SequenceError::OutOfOrder { expected: 6, .. })
        ));
    }

    #[test]
    fn gaps_stale_epochs_and_new_epochs() {
        let mut s = ProducerStates::default();
        appended(&mut s, batch(1, 3, 40, 2, 0)); // unknown producer: any sequence
        assert_eq!(
            s.check([&batch(1, 3, 43, 1, -1)]),
            Err(SequenceError::OutOfOrder {
                producer_id: 1,
                epoch: 3,
                expected: 42,
                found: 43
            })
        );
        assert!(matches!(
            s.check([&batch(1, 2, 42, 1, -1)]),
            Err(SequenceError::StaleEpoch { current: 3, .. })
        ));
        assert!(matches!(
            s.check([&batch(1, 4, 5, 1, -1)]),
            Err(SequenceError::OutOfOrder { expected: 0, .. })
        ));
        appended(&mut s, batch(1, 4, 0, 1, 2));
        assert_eq!(
            s.get(1).unwrap().batches.len(),
            1,
            "a new epoch starts over"
        );
    }

    #[test]
    fn batches_of_one_request_follow_each_other() {
        let s = ProducerStates::default();
        let (a, b, c) = (
            batch(1, 0, 0, 2, 0),
            batch(1, 0, 2, 2, 2),
            batch(1, 0, 5, 1, 4),
        );
        assert_eq!(s.check([&a, &b]), Ok(Verdict::Append));
        assert!(s.check([&a, &c]).is_err());
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = ProducerStates::default();
        appended(&mut s, batch(1, 0, i32::MAX - 1, 3, 0));
        assert_eq!(s.get(1).unwrap().batches[0].last_seq, 0);
        appended(&mut s, batch(1, 0, 1, 1, 3));
    }

    #[test]
    fn plain_and_control_batches_are_not_tracked() {
        let mut s = ProducerStates::default();
        appended(&mut s, batch(-1, -1, -1, 5, 0));
        let mut control = batch(9, 0, -1, 1, 5);
        control.attributes = CONTROL_FLAG;
        appended(&mut s, control);
        assert!(s.is_empty());
    }

    #[test]
    fn expiry_and_eviction() {
        let mut s = ProducerStates::default();
        appended(&mut s, batch(1, 0, 0, 1, 0));
        let mut late = batch(2, 0, 0, 1, 1);
        late.max_timestamp = 5_000;
        appended(&mut s, late);
        assert_eq!(s.expire(5_500, 1_000), 1);
        assert!(s.get(1).is_none() && s.get(2).is_some());
        s.evict_below(2);
        assert!(s.is_empty());
    }

    proptest! {
        #[test]
        fn lines_round_trip(ops in proptest::collection::vec((0i64..4, 0i16..3, 1i32..5), 0..40)) {
            let mut s = ProducerStates::default();
            let mut offset = 0;
            for (pid, epoch, count) in ops {
                let seq = s.get(pid).and_then(|e| e.last_seq()).map_or(0, next_sequence);
                let h = batch(pid, epoch, seq, count, offset);
                offset += i64::from(count);
                s.record(&h);
            }
            prop_assert_eq!(ProducerStates::from_lines(&s.to_lines()), Some(s));
        }
    }
}
