//! Producer ids for InitProducerId, in blocks from the active controller (KIP-730).
//!
//! As Kafka's `RPCProducerIdManager`: the broker holds one block of ids that the active
//! controller allocated to it (AllocateProducerIds, committed as a `ProducerIds` metadata
//! record) and hands them out in order; when the block is used up it asks for the next one.
//! Ids are therefore unique across brokers and restarts: a block is never given twice, and
//! the ids left in a block when the broker stops are simply not used. Unlike Kafka there
//! is no prefetch: the request that finds the block empty waits for the next one (one
//! controller round trip per 1000 ids).

use crate::broker::Session;
use controller::client::{ClientError, ControllerSet};
use protocol::control::AllocateProducerIdsResponse;
use protocol::ids::{BrokerEpoch, BrokerId};
use protocol::kafka::ResponseError;
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;

/// Why no producer id could be handed out.
#[derive(Debug, thiserror::Error)]
pub enum AllocateError {
    #[error("the broker is not registered with the controller yet")]
    NotRegistered,
    #[error("no block of producer ids from the controller in time: {0}")]
    Unreachable(#[from] ClientError),
    #[error("the controller refused a block of producer ids with error {0}")]
    Refused(i16),
    #[error("the controller sent an unusable block [{start}, +{len}) after one ending at {end}")]
    BadBlock { start: i64, len: i32, end: i64 },
    #[error("timed out waiting for another request's block of producer ids")]
    Busy,
}

/// The ids of one block not handed out yet: `[next, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Block {
    next: i64,
    end: i64,
}

impl Block {
    fn take(&mut self) -> Option<i64> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// The block of a successful response that follows this one, checked as Kafka does: not empty, within i64,
    /// and past the current block (the controller never goes back).
    fn following(&self, r: &AllocateProducerIdsResponse) -> Result<Block, AllocateError> {
        let bad = AllocateError::BadBlock {
            start: r.producer_id_start,
            len: r.producer_id_len,
            end: self.end,
        };
        if r.producer_id_start < self.end || r.producer_id_len <= 0 {
            return Err(bad);
        }
        match r
            .producer_id_start
            .checked_add(i64::from(r.producer_id_len))
        {
            Some(end) => Ok(Block {
                next: r.producer_id_start,
                end,
            }),
            None => Err(bad),
        }
    }
}

#[derive(Debug)]
struct State {
    block: Block,
    /// This manager's own connections, so InitProducerId never waits behind forwarded
    /// admin requests.
    controllers: ControllerSet,
}

/// The broker's producer-id block and the way to the controller for the next one.
#[derive(Debug)]
pub struct ProducerIdManager {
    broker_id: BrokerId,
    state: Mutex<State>,
}

impl ProducerIdManager {
    pub fn new(broker_id: BrokerId, controllers: &[String]) -> Self {
        Self {
            broker_id,
            state: Mutex::new(State {
                block: Block::default(),
                controllers: ControllerSet::new(controllers),
            }),
        }
    }

    /// The next producer id, asking the controller for a block when the current one is
    /// used up. `session` is the broker's registration (the broker epoch goes with the
    /// request); gives up at `deadline`. Concurrent callers wait for one another: one
    /// block is fetched at a time.
    pub async fn next_id(
        &self,
        mut session: watch::Receiver<Session>,
        deadline: Instant,
    ) -> Result<i64, AllocateError> {
        let Ok(mut state) = tokio::time::timeout_at(deadline, self.state.lock()).await else {
            return Err(AllocateError::Busy);
        };
        if let Some(id) = state.block.take() {
            return Ok(id);
        }
        let mut tried: Option<BrokerEpoch> = None;
        loop {
            let epoch = registered_epoch(&mut session, tried, deadline).await?;
            tried = Some(epoch);
            let resp = state
                .controllers
                .allocate_producer_ids(self.broker_id, epoch, deadline)
                .await?;
            if resp.error == ResponseError::StaleBrokerEpoch.code() {
                // The registration changed under us (or is about to: the next heartbeat
                // is refused too and the broker registers again): retry with the new epoch.
                tracing::info!("AllocateProducerIds: broker epoch {epoch} is stale; waiting for the new registration");
                continue;
            }
            if resp.error != 0 {
                return Err(AllocateError::Refused(resp.error));
            }
            let block = state.block.following(&resp)?;
            tracing::info!(
                "producer id block [{}, {}) from the controller",
                block.next,
                block.end
            );
            state.block = block;
            return state.block.take().ok_or(AllocateError::BadBlock {
                start: resp.producer_id_start,
                len: resp.producer_id_len,
                end: block.end,
            });
        }
    }
}

/// The broker's epoch once it is registered, and other than `not` (an epoch the controller
/// already called stale), waiting until `deadline`.
async fn registered_epoch(
    session: &mut watch::Receiver<Session>,
    not: Option<BrokerEpoch>,
    deadline: Instant,
) -> Result<BrokerEpoch, AllocateError> {
    loop {
        if let Some(e) = session
            .borrow_and_update()
            .epoch
            .filter(|e| Some(*e) != not)
        {
            return Ok(e);
        }
        match tokio::time::timeout_at(deadline, session.changed()).await {
            Ok(Ok(())) => {}
            _ => return Err(AllocateError::NotRegistered),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn resp(start: i64, len: i32) -> AllocateProducerIdsResponse {
        AllocateProducerIdsResponse {
            error: 0,
            producer_id_start: start,
            producer_id_len: len,
        }
    }

    #[test]
    fn a_block_hands_out_each_id_once_then_runs_dry() {
        let mut b = Block::default().following(&resp(2000, 3)).unwrap();
        assert_eq!(
            (b.take(), b.take(), b.take(), b.take()),
            (Some(2000), Some(2001), Some(2002), None)
        );
        assert_eq!(Block::default().take(), None);
    }

    #[test]
    fn blocks_that_go_back_or_overflow_are_refused() {
        let current = Block::default().following(&resp(1000, 1000)).unwrap();
        assert!(current.following(&resp(2000, 1000)).is_ok());
        assert!(current.following(&resp(7000, 1000)).is_ok());
        assert!(current.following(&resp(1999, 1000)).is_err());
        assert!(current.following(&resp(1000, 1000)).is_err());
        assert!(current.following(&resp(0, 1000)).is_err());
        assert!(current.following(&resp(5000, 0)).is_err());
        assert!(current.following(&resp(i64::MAX - 10, 1000)).is_err());
        assert!(Block::default().following(&resp(-1, 1000)).is_err());
    }

    #[tokio::test]
    async fn unregistered_broker_gives_up_at_the_deadline() {
        let (tx, rx) = watch::channel(Session::default());
        // No controller listens on port 1; the session never gets an epoch.
        let m = ProducerIdManager::new(BrokerId(1), &["127.0.0.1:1".to_string()]);
        let started = Instant::now();
        let r = m.next_id(rx, started + Duration::from_millis(200)).await;
        assert!(matches!(r, Err(AllocateError::NotRegistered)), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(tx);
    }

    #[tokio::test]
    async fn unreachable_controller_gives_up_at_the_deadline() {
        let (_tx, rx) = watch::channel(Session {
            epoch: Some(BrokerEpoch(3)),
            fenced: false,
        });
        let m = ProducerIdManager::new(BrokerId(1), &["127.0.0.1:1".to_string()]);
        let started = Instant::now();
        let r = m.next_id(rx, started + Duration::from_millis(300)).await;
        assert!(matches!(r, Err(AllocateError::Unreachable(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
