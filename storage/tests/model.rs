//! Property test: the real log against an in-memory model, with tiny segments so appends
//! roll constantly; random appends (leader and follower), reads, truncations, record
//! deletion and reopening (clean or crashed) must give the same answers.

mod common;

use common::split;
use gregor_storage::batch::{build_test_batch, patch};
use gregor_storage::{BatchHeader, LogConfig, LogError, PartitionLog};
use proptest::prelude::*;
use protocol::ids::{LeaderEpoch, Offset};

const SEGMENT_BYTES: u64 = 300;

#[derive(Clone, Debug)]
enum Op {
    Append {
        batches: Vec<(i32, usize)>,
        new_epoch: bool,
    },
    /// A follower's fetched batches (count, value length each), back to back from the
    /// log end moved by `skew`.
    Follower {
        batches: Vec<(i32, usize)>,
        skew: i64,
    },
    Read {
        from: i64,
        max_bytes: usize,
        upper: i64,
    },
    Truncate {
        to: i64,
    },
    DeleteRecords {
        before: i64,
    },
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec((1i32..4, 0usize..120), 1..3), any::<bool>())
            .prop_map(|(batches, new_epoch)| Op::Append { batches, new_epoch }),
        2 => (
            proptest::collection::vec((1i32..4, 0usize..60), 1..4),
            prop_oneof![4 => Just(0i64), 1 => -2i64..3]
        )
            .prop_map(|(batches, skew)| Op::Follower { batches, skew }),
        6 => (-2i64..60, 0usize..600, -2i64..70)
            .prop_map(|(from, max_bytes, upper)| Op::Read { from, max_bytes, upper }),
        1 => (-3i64..60).prop_map(|to| Op::Truncate { to }),
        1 => (0i64..60).prop_map(|before| Op::DeleteRecords { before }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

#[derive(Clone, Debug)]
struct Batch {
    next: i64,
    bytes: Vec<u8>,
}

#[derive(Debug)]
struct Segment {
    base: i64,
    batches: Vec<Batch>,
}

impl Segment {
    fn size(&self) -> u64 {
        self.batches.iter().map(|b| b.bytes.len() as u64).sum()
    }
    fn next(&self) -> i64 {
        self.batches.last().map_or(self.base, |b| b.next)
    }
}

#[derive(Debug)]
struct Model {
    segments: Vec<Segment>,
    start: i64,
}

impl Model {
    fn end(&self) -> i64 {
        self.segments.last().unwrap().next()
    }

    fn append(&mut self, bytes: Vec<u8>) {
        let h = gregor_storage::BatchHeader::parse(&bytes).unwrap();
        let last = self.segments.last().unwrap();
        if last.size() > 0 && last.size() + bytes.len() as u64 > SEGMENT_BYTES {
            let base = self.end();
            self.segments.push(Segment {
                base,
                batches: vec![],
            });
        }
        let b = Batch {
            next: h.next_offset(),
            bytes,
        };
        self.segments.last_mut().unwrap().batches.push(b);
    }

    /// A leader's request goes whole into one segment, rolled first if it does not fit
    /// (as Kafka's); one larger than a segment starts a segment and goes batch by batch.
    fn append_request(&mut self, batches: Vec<Vec<u8>>) {
        let total: u64 = batches.iter().map(|b| b.len() as u64).sum();
        let last = self.segments.last().unwrap();
        if last.size() > 0 && last.size() + total > SEGMENT_BYTES {
            let base = self.end();
            self.segments.push(Segment {
                base,
                batches: vec![],
            });
        }
        for bytes in batches {
            if total > SEGMENT_BYTES {
                self.append(bytes);
            } else {
                let next = gregor_storage::BatchHeader::parse(&bytes)
                    .unwrap()
                    .next_offset();
                self.segments
                    .last_mut()
                    .unwrap()
                    .batches
                    .push(Batch { next, bytes });
            }
        }
    }

    fn read(&self, from: i64, max_bytes: usize, upper: i64) -> Option<Vec<Vec<u8>>> {
        let end = self.end();
        if from < self.start || from > end {
            return None;
        }
        let upper = upper.min(end);
        if from >= upper {
            return Some(vec![]);
        }
        let first = self.segments.iter().rposition(|s| s.base <= from).unwrap();
        for s in &self.segments[first..] {
            if s.batches.is_empty() || s.next() <= from {
                continue;
            }
            if s.base >= upper {
                break;
            }
            let i = s.batches.iter().position(|b| b.next > from).unwrap();
            let mut out: Vec<Vec<u8>> = vec![];
            let mut total = 0;
            for b in &s.batches[i..] {
                if b.next > upper || (!out.is_empty() && total + b.bytes.len() > max_bytes) {
                    break;
                }
                total += b.bytes.len();
                out.push(b.bytes.clone());
            }
            return Some(out);
        }
        Some(vec![])
    }

    fn truncate(&mut self, to: i64) {
        if to >= self.end() {
            return;
        }
        if to < self.start {
            self.segments = vec![Segment {
                base: to,
                batches: vec![],
            }];
            self.start = to;
            return;
        }
        let i = self.segments.iter().rposition(|s| s.base <= to).unwrap();
        self.segments.truncate(i + 1);
        let seg = self.segments.last_mut().unwrap();
        seg.batches.retain(|b| b.next <= to);
        self.start = self.start.min(self.end());
    }

    fn delete_records(&mut self, before: i64) {
        if before <= self.start {
            return;
        }
        while self.segments.len() > 1 && self.segments[0].next() <= before {
            self.segments.remove(0);
        }
        self.start = before;
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: SEGMENT_BYTES,
        segment_ms: None,
        index_interval_bytes: 100,
        retention_ms: None,
        max_mapped_segments: 2,
        ..LogConfig::default()
    }
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Some(PartitionLog::open(&path, "t-0", config()).unwrap());
    let mut model = Model {
        segments: vec![Segment {
            base: 0,
            batches: vec![],
        }],
        start: 0,
    };
    let mut epoch = LeaderEpoch(0);
    let mut tag = 0u8;
    // Views from earlier reads, with a copy of what they showed: truncation, rolls, reopen
    // and deletion must never change them.
    let mut held: Vec<(bytes::Bytes, Vec<u8>)> = Vec::new();
    for op in ops {
        let l = log.as_mut().unwrap();
        match op {
            Op::Append { batches, new_epoch } => {
                if new_epoch {
                    epoch = epoch.next();
                }
                let mut buf = Vec::new();
                for (count, len) in batches {
                    tag = tag.wrapping_add(1);
                    buf.extend(build_test_batch(
                        0,
                        0,
                        count,
                        i64::from(tag),
                        &vec![tag; len],
                    ));
                }
                let first = l.log_end_offset();
                let info = l.append(&buf, epoch, 0).unwrap();
                assert_eq!(info.first_offset, first);
                // The log stores each batch with the offsets and epoch it assigned.
                let mut next = first.0;
                let mut stored = Vec::new();
                for (_, mut b) in split(&buf) {
                    patch(&mut b, next, epoch.0);
                    next = BatchHeader::parse(&b).unwrap().next_offset();
                    stored.push(b);
                }
                model.append_request(stored);
            }
            Op::Follower { batches, skew } => {
                let mut base = model.end() + skew;
                let mut fetched = Vec::new();
                for (count, len) in batches {
                    tag = tag.wrapping_add(1);
                    let b = build_test_batch(base, epoch.0, count, 0, &vec![tag; len]);
                    base = BatchHeader::parse(&b).unwrap().next_offset();
                    fetched.push(b);
                }
                // What a fetch reply holds goes in as a leader's request does: whole into
                // one segment.
                match (skew, l.append_as_follower(&fetched.concat(), 0)) {
                    (0, Ok(_)) => model.append_request(fetched),
                    (s, Err(LogError::FollowerGap { .. })) if s > 0 => {}
                    (s, Err(LogError::FollowerOverlap { .. })) if s < 0 => {}
                    (s, other) => panic!("skew {s}: {other:?}"),
                }
            }
            Op::Read {
                from,
                max_bytes,
                upper,
            } => {
                let got = l.read(Offset(from), max_bytes, Offset(upper));
                match (model.read(from, max_bytes, upper), got) {
                    (None, Err(LogError::OffsetOutOfRange { .. })) => {}
                    (Some(want), Ok(r)) => {
                        let got: Vec<Vec<u8>> =
                            split(&r.records).into_iter().map(|(_, b)| b).collect();
                        assert_eq!(got, want, "read({from}, {max_bytes}, {upper})");
                        assert_eq!(r.log_start_offset, Offset(model.start));
                        assert_eq!(r.log_end_offset, Offset(model.end()));
                        if held.len() == 4 {
                            held.remove(0);
                        }
                        held.push((r.records.clone(), r.records.to_vec()));
                    }
                    (want, got) => {
                        panic!("read({from}, {max_bytes}, {upper}): want {want:?}, got {got:?}")
                    }
                }
            }
            Op::Truncate { to } => {
                if to < 0 {
                    assert!(matches!(
                        l.truncate_to(Offset(to)),
                        Err(LogError::InvalidOffset { .. })
                    ));
                } else {
                    l.truncate_to(Offset(to)).unwrap();
                    model.truncate(to);
                }
            }
            Op::DeleteRecords { before } => {
                let res = l.delete_records_before(Offset(before));
                if before > model.end() {
                    assert!(matches!(res, Err(LogError::OffsetOutOfRange { .. })));
                } else {
                    res.unwrap();
                    model.delete_records(before);
                }
            }
            Op::Reopen { clean } => {
                let l = log.take().unwrap();
                if clean {
                    l.close().unwrap();
                } else {
                    drop(l);
                }
                log = Some(PartitionLog::open(&path, "t-0", config()).unwrap());
            }
        }
        for (view, copy) in &held {
            assert_eq!(&view[..], &copy[..], "a held view changed");
        }
        let l = log.as_ref().unwrap();
        assert_eq!(l.log_end_offset(), Offset(model.end()));
        assert_eq!(l.log_start_offset(), Offset(model.start));
        let bases: Vec<Offset> = model.segments.iter().map(|s| Offset(s.base)).collect();
        assert_eq!(l.segment_bases(), bases);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
