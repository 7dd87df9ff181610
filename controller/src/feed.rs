//! The applied metadata state every controller serves: the image, a bounded window of
//! recent batches, and a watch channel for long polls.
//!
//! The state machine writes here as it applies committed entries; `FetchMetadata` reads
//! from here on any controller. A broker whose offset is older than the window receives the
//! whole image instead (the window's `floor` is the last offset the window no longer covers).
//! Only entries carrying a metadata batch are exposed; openraft's blank and membership
//! entries only move `image.offset`.

use protocol::control::codec::encode_value;
use protocol::control::{
    FetchMetadataRequest, FetchMetadataResponse, MetadataBatch, MetadataImage,
};
use protocol::ids::{BrokerId, MetadataOffset};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Most recent batches kept for incremental fetches.
pub const WINDOW_BATCHES: usize = 4096;
/// Longest long poll a fetch may ask for.
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(30);
/// Most brokers tracked as quorum observers.
const MAX_OBSERVERS: usize = 10_000;

#[derive(Debug)]
struct FeedState {
    image: MetadataImage,
    window: VecDeque<(MetadataOffset, MetadataBatch)>,
    /// Batches with offset <= floor are not in the window.
    floor: u64,
}

/// The applied metadata state of this controller.
#[derive(Debug)]
pub struct Feed {
    state: Mutex<FeedState>,
    /// The offset of the last applied batch (or of the image after a reset).
    last_batch: watch::Sender<u64>,
    observers: Mutex<BTreeMap<BrokerId, (MetadataOffset, Instant)>>,
}

impl Feed {
    pub fn new(cluster_id: &str) -> Arc<Feed> {
        Arc::new(Feed {
            state: Mutex::new(FeedState {
                image: MetadataImage::new(cluster_id),
                window: VecDeque::new(),
                floor: 0,
            }),
            last_batch: watch::channel(0).0,
            observers: Mutex::new(BTreeMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().expect("feed mutex poisoned")
    }

    /// Runs `f` on the current image.
    pub fn with_image<T>(&self, f: impl FnOnce(&MetadataImage) -> T) -> T {
        f(&self.lock().image)
    }

    /// A copy of the current image.
    pub fn image(&self) -> MetadataImage {
        self.lock().image.clone()
    }

    /// Replaces the state with `image` (a loaded or installed snapshot).
    pub fn reset(&self, image: MetadataImage) {
        let offset = image.offset.0;
        let mut s = self.lock();
        s.image = image;
        s.window.clear();
        s.floor = offset;
        drop(s);
        self.last_batch.send_replace(offset);
    }

    /// Applies the entry at `index`; `batch` is `None` for openraft's own entries.
    pub fn apply(&self, index: u64, batch: Option<&MetadataBatch>) {
        let mut s = self.lock();
        let offset = MetadataOffset(index);
        match batch {
            Some(batch) => {
                s.image.apply_batch(offset, batch);
                s.window.push_back((offset, batch.clone()));
                while s.window.len() > WINDOW_BATCHES {
                    if let Some((old, _)) = s.window.pop_front() {
                        s.floor = old.0;
                    }
                }
                drop(s);
                self.last_batch.send_replace(index);
            }
            None => s.image.offset = offset,
        }
    }

    /// The offset of the last applied entry.
    pub fn applied(&self) -> MetadataOffset {
        self.lock().image.offset
    }

    /// Brokers by the offset of their last fetch and when it was.
    pub fn observers(&self) -> Vec<(BrokerId, MetadataOffset, Instant)> {
        let o = self.observers.lock().expect("observer mutex poisoned");
        o.iter().map(|(b, (off, at))| (*b, *off, *at)).collect()
    }

    fn observe(&self, broker: BrokerId, offset: MetadataOffset) {
        let mut o = self.observers.lock().expect("observer mutex poisoned");
        if o.len() < MAX_OBSERVERS || o.contains_key(&broker) {
            o.insert(broker, (offset, Instant::now()));
        }
    }

    /// Serves a metadata fetch, waiting up to `max_wait_ms` for a batch after `after`.
    pub async fn fetch(&self, req: &FetchMetadataRequest) -> FetchMetadataResponse {
        if let Some(b) = req.broker_id {
            self.observe(b, req.after);
        }
        let wait = Duration::from_millis(u64::from(req.max_wait_ms)).min(MAX_FETCH_WAIT);
        let mut rx = self.last_batch.subscribe();
        let after = req.after.0;
        if !self.needs_snapshot(after) {
            let _ = tokio::time::timeout(wait, rx.wait_for(|last| *last > after)).await;
        }
        self.read(after, req.max_bytes as usize)
    }

    fn needs_snapshot(&self, after: u64) -> bool {
        after < self.lock().floor
    }

    fn read(&self, after: u64, max_bytes: usize) -> FetchMetadataResponse {
        let s = self.lock();
        let committed = s.image.offset;
        if after < s.floor {
            return FetchMetadataResponse {
                snapshot: Some(s.image.clone()),
                batches: Vec::new(),
                committed,
            };
        }
        let start = s.window.partition_point(|(o, _)| o.0 <= after);
        let mut batches = Vec::new();
        let mut bytes = 0usize;
        for (offset, batch) in s.window.range(start..) {
            let size = encode_value(batch).map(|v| v.len()).unwrap_or(0);
            if !batches.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            batches.push((*offset, batch.clone()));
        }
        FetchMetadataResponse {
            snapshot: None,
            batches,
            committed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::control::MetadataRecord;

    fn req(after: u64, max_wait_ms: u32) -> FetchMetadataRequest {
        FetchMetadataRequest {
            broker_id: Some(BrokerId(1)),
            after: MetadataOffset(after),
            max_wait_ms,
            max_bytes: 1 << 20,
        }
    }

    #[tokio::test]
    async fn serves_window_then_snapshot_when_behind() {
        let feed = Feed::new("c");
        feed.apply(1, None);
        feed.apply(2, Some(&vec![MetadataRecord::NoOp]));
        let r = feed.fetch(&req(0, 0)).await;
        assert_eq!(r.batches.len(), 1);
        assert_eq!(r.committed, MetadataOffset(2));
        // Nothing new: an empty answer after the wait.
        assert!(feed.fetch(&req(2, 10)).await.batches.is_empty());
        for i in 3..(3 + WINDOW_BATCHES as u64 + 5) {
            feed.apply(i, Some(&vec![MetadataRecord::NoOp]));
        }
        let r = feed.fetch(&req(1, 0)).await;
        assert!(r.snapshot.is_some());
        assert!(feed.observers()[0].1 == MetadataOffset(1));
    }

    #[tokio::test]
    async fn long_poll_wakes_on_new_batch() {
        let feed = Feed::new("c");
        let f2 = feed.clone();
        let h = tokio::spawn(async move { f2.fetch(&req(0, 10_000)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        feed.apply(1, Some(&vec![MetadataRecord::NoOp]));
        let r = tokio::time::timeout(Duration::from_secs(5), h)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.batches.len(), 1);
    }
}
