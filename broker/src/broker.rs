//! The state one broker process shares between its connections and background tasks.

use crate::config::Config;
use crate::metrics::BrokerMetrics;
use crate::partition::PartitionManager;
use crate::producer_ids::ProducerIdManager;
use crate::purgatory::Purgatory;
use controller::client::ControllerSet;
use protocol::control::MetadataImage;
use protocol::ids::BrokerEpoch;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;

/// The most requests that may wait in the purgatory at once.
pub const MAX_WAITERS: usize = 10_000;

/// This broker's registration as it last heard from the controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub epoch: Option<BrokerEpoch>,
    pub fenced: bool,
}

/// Shared broker state.
#[derive(Debug)]
pub struct Broker {
    pub config: Config,
    pub incarnation_id: uuid::Uuid,
    image: watch::Sender<Arc<MetadataImage>>,
    pub session: watch::Sender<Session>,
    pub partitions: PartitionManager,
    pub purgatory: Purgatory,
    /// Controllers for forwarded admin requests (heartbeats use their own set).
    pub admin_controllers: Mutex<ControllerSet>,
    /// The group coordinator (set once by [`crate::group_log::start`] in `run`).
    pub groups: std::sync::OnceLock<group::Coordinator>,
    /// Producer ids for InitProducerId, in blocks from the active controller.
    pub producer_ids: ProducerIdManager,
    pub metrics: BrokerMetrics,
}

impl Broker {
    pub fn new(config: Config) -> Self {
        let partitions = PartitionManager::new(config.node_id, config.data_dir.clone());
        let admin_controllers = Mutex::new(ControllerSet::new(&config.controllers));
        let image = MetadataImage::new(config.cluster_id.clone());
        Self {
            incarnation_id: uuid::Uuid::new_v4(),
            image: watch::Sender::new(Arc::new(image)),
            session: watch::Sender::new(Session {
                epoch: None,
                fenced: true,
            }),
            partitions,
            purgatory: Purgatory::new(MAX_WAITERS),
            admin_controllers,
            groups: std::sync::OnceLock::new(),
            producer_ids: ProducerIdManager::new(config.node_id, &config.controllers),
            metrics: BrokerMetrics::new(),
            config,
        }
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// Publishes a new image (metadata follower only).
    pub fn publish_image(&self, image: Arc<MetadataImage>) {
        self.image.send_replace(image);
    }

    /// Waits until `ready(image)` holds or `deadline` passes; returns the last answer.
    pub async fn wait_for_image(
        &self,
        deadline: Instant,
        ready: impl Fn(&MetadataImage) -> bool,
    ) -> bool {
        let mut rx = self.image.subscribe();
        loop {
            if ready(&rx.borrow_and_update()) {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return ready(&rx.borrow()),
            }
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch (Kafka timestamps).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
