//! Broker sessions: heartbeat deadlines in logical milliseconds.
//!
//! Only the active controller keeps sessions. When a controller becomes active it cannot
//! know when brokers last heartbeated to its predecessor, so every registered broker gets a
//! fresh session ([`Sessions::reset`]), as in Kafka.

use protocol::control::MetadataImage;
use protocol::ids::{BrokerEpoch, BrokerId, MetadataOffset};
use std::collections::BTreeMap;

/// One broker's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub epoch: BrokerEpoch,
    /// Logical time after which the broker is fenced.
    pub deadline_ms: u64,
    /// The metadata offset the broker last reported.
    pub metadata_offset: MetadataOffset,
    /// Offset of the committed controlled-shutdown change, once known.
    pub shutdown_offset: Option<MetadataOffset>,
}

/// Sessions of all brokers.
#[derive(Clone, Debug)]
pub struct Sessions {
    timeout_ms: u64,
    by_broker: BTreeMap<BrokerId, Session>,
}

impl Sessions {
    pub fn new(timeout_ms: u64) -> Self {
        Sessions {
            timeout_ms,
            by_broker: BTreeMap::new(),
        }
    }

    fn fresh(&self, epoch: BrokerEpoch, now_ms: u64) -> Session {
        Session {
            epoch,
            deadline_ms: now_ms + self.timeout_ms,
            metadata_offset: MetadataOffset(0),
            shutdown_offset: None,
        }
    }

    /// Gives every registered broker a fresh session (a controller became active).
    pub fn reset(&mut self, image: &MetadataImage, now_ms: u64) {
        self.by_broker = image
            .brokers
            .values()
            .map(|b| (b.id, self.fresh(b.epoch, now_ms)))
            .collect();
    }

    /// A broker registered with `epoch`.
    pub fn registered(&mut self, broker: BrokerId, epoch: BrokerEpoch, now_ms: u64) {
        let s = self.fresh(epoch, now_ms);
        self.by_broker.insert(broker, s);
    }

    /// A heartbeat arrived; returns the updated session.
    pub fn heartbeat(
        &mut self,
        broker: BrokerId,
        epoch: BrokerEpoch,
        offset: MetadataOffset,
        now_ms: u64,
    ) -> &Session {
        let fresh = self.fresh(epoch, now_ms);
        let timeout_ms = self.timeout_ms;
        let s = self
            .by_broker
            .entry(broker)
            .or_insert_with(|| fresh.clone());
        if s.epoch != epoch {
            *s = fresh;
        }
        s.deadline_ms = now_ms + timeout_ms;
        s.metadata_offset = s.metadata_offset.max(offset);
        s
    }

    /// Records the offset of the committed controlled-shutdown change.
    pub fn shutdown_committed(&mut self, broker: BrokerId, offset: MetadataOffset) {
        if let Some(s) = self.by_broker.get_mut(&broker) {
            s.shutdown_offset = Some(offset);
        }
    }

    pub fn get(&self, broker: BrokerId) -> Option<&Session> {
        self.by_broker.get(&broker)
    }

    /// Unfenced brokers whose session expired at `now_ms`, with their epochs. A broker the
    /// image knows but that has no session gets a fresh one.
    pub fn expired(&mut self, image: &MetadataImage, now_ms: u64) -> Vec<(BrokerId, BrokerEpoch)> {
        let mut out = Vec::new();
        for b in image.brokers.values() {
            if self.by_broker.get(&b.id).is_none_or(|s| s.epoch != b.epoch) {
                let s = self.fresh(b.epoch, now_ms);
                self.by_broker.insert(b.id, s);
            }
            let s = &self.by_broker[&b.id];
            if !b.fenced && now_ms >= s.deadline_ms {
                out.push((b.id, b.epoch));
            }
        }
        self.by_broker
            .retain(|id, _| image.brokers.contains_key(id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testutil::image_with_brokers;

    #[test]
    fn heartbeats_extend_and_silence_expires() {
        let img = image_with_brokers(&[1, 2]);
        let mut s = Sessions::new(1000);
        s.reset(&img, 0);
        assert!(s.expired(&img, 999).is_empty());
        s.heartbeat(BrokerId(1), BrokerEpoch(1), MetadataOffset(5), 900);
        assert_eq!(s.expired(&img, 1000), vec![(BrokerId(2), BrokerEpoch(1))]);
        assert_eq!(
            s.expired(&img, 1900),
            vec![(BrokerId(1), BrokerEpoch(1)), (BrokerId(2), BrokerEpoch(1))]
        );
        assert_eq!(
            s.get(BrokerId(1)).unwrap().metadata_offset,
            MetadataOffset(5)
        );
    }

    #[test]
    fn reset_gives_everyone_a_fresh_session() {
        let img = image_with_brokers(&[1]);
        let mut s = Sessions::new(1000);
        s.reset(&img, 0);
        assert_eq!(s.expired(&img, 5000).len(), 1);
        s.reset(&img, 5000);
        assert!(s.expired(&img, 5999).is_empty());
    }

    #[test]
    fn fenced_brokers_do_not_expire_again() {
        let mut img = image_with_brokers(&[1]);
        img.brokers.get_mut(&BrokerId(1)).unwrap().fenced = true;
        let mut s = Sessions::new(10);
        assert!(s.expired(&img, 100).is_empty());
    }
}
