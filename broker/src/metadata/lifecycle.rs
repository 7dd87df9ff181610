//! Registration, heartbeats and the controlled shutdown.
//!
//! ```text
//!   start ──register──> registered (fenced) ──heartbeats, caught up──> unfenced
//!     ^                    |  stale epoch / unknown broker                |
//!     └────────────────────┘                                             | SIGTERM
//!                                  heartbeat(want_shutdown) until should_shutdown
//! ```

use crate::broker::{Broker, Session};
use controller::client::ControllerSet;
use protocol::control::{
    BrokerHeartbeatRequest, BrokerRegistrationRequest, ControlRequest, ControlResponse,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The longest a controlled shutdown waits for the controller's permission.
pub const CONTROLLED_SHUTDOWN_MAX: Duration = Duration::from_secs(30);

/// Registers and heartbeats until a requested shutdown is granted (or times out).
pub async fn run(broker: Arc<Broker>, mut shutdown_requested: watch::Receiver<bool>) {
    let config = &broker.config;
    let mut controllers = ControllerSet::new(&config.controllers);
    controllers.attempt_timeout = config.heartbeat_interval.max(Duration::from_millis(500));
    let mut session = Session {
        epoch: None,
        fenced: true,
    };
    let mut shutdown_deadline: Option<Instant> = None;
    loop {
        let want_shutdown = *shutdown_requested.borrow();
        if want_shutdown && shutdown_deadline.is_none() {
            tracing::info!(
                "controlled shutdown requested; asking the controller to move leadership away"
            );
            shutdown_deadline = Some(Instant::now() + CONTROLLED_SHUTDOWN_MAX);
        }
        if let Some(d) = shutdown_deadline {
            if Instant::now() >= d {
                tracing::warn!("controlled shutdown not granted within {CONTROLLED_SHUTDOWN_MAX:?}; stopping anyway");
                return;
            }
            if session.epoch.is_none() {
                return;
            }
        }
        let call_deadline = Instant::now() + config.heartbeat_interval * 5;
        match session.epoch {
            None => {
                let req = ControlRequest::BrokerRegistration(BrokerRegistrationRequest {
                    broker_id: config.node_id,
                    cluster_id: config.cluster_id.clone(),
                    incarnation_id: broker.incarnation_id,
                    listeners: config.endpoints(),
                    rack: config.rack.clone(),
                });
                match controllers.call_active(&req, call_deadline).await {
                    Ok(ControlResponse::BrokerRegistration(r)) if r.error == 0 => {
                        tracing::info!(
                            "registered broker {} with epoch {} (incarnation {})",
                            config.node_id,
                            r.broker_epoch,
                            broker.incarnation_id
                        );
                        session = Session {
                            epoch: Some(r.broker_epoch),
                            fenced: true,
                        };
                        broker.session.send_replace(session);
                        continue;
                    }
                    Ok(ControlResponse::BrokerRegistration(r)) => {
                        tracing::warn!(
                            "registration refused: error {} {}",
                            r.error,
                            r.message.unwrap_or_default()
                        );
                    }
                    Ok(other) => tracing::warn!("registration got an unexpected answer: {other:?}"),
                    Err(e) => tracing::warn!("registration failed: {e}"),
                }
            }
            Some(epoch) => {
                let req = ControlRequest::BrokerHeartbeat(BrokerHeartbeatRequest {
                    broker_id: config.node_id,
                    broker_epoch: epoch,
                    current_metadata_offset: broker.image().offset,
                    want_fence: false,
                    want_shutdown,
                });
                match controllers.call_active(&req, call_deadline).await {
                    Ok(ControlResponse::BrokerHeartbeat(r)) if r.error == 0 => {
                        if r.is_fenced != session.fenced {
                            tracing::info!(
                                "broker {} epoch {epoch} is now {}",
                                config.node_id,
                                if r.is_fenced { "fenced" } else { "unfenced" }
                            );
                            session.fenced = r.is_fenced;
                            broker.session.send_replace(session);
                        }
                        if want_shutdown && r.should_shutdown {
                            tracing::info!("controlled shutdown granted");
                            return;
                        }
                    }
                    Ok(ControlResponse::BrokerHeartbeat(r)) => {
                        tracing::warn!(
                            "heartbeat refused with error {}; registering again",
                            r.error
                        );
                        session = Session {
                            epoch: None,
                            fenced: true,
                        };
                        broker.session.send_replace(session);
                        continue;
                    }
                    Ok(other) => tracing::warn!("heartbeat got an unexpected answer: {other:?}"),
                    Err(e) => tracing::warn!("heartbeat failed: {e}"),
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.heartbeat_interval) => {}
            _ = shutdown_requested.changed(), if !want_shutdown => {}
        }
    }
}
