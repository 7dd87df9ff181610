//! The Kafka listeners: accept loops bounded by a connection semaphore, with a shutdown
//! broadcast and drop-to-complete draining (mini-redis' `server.rs`).

use crate::broker::Broker;
use crate::connection::Connection;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, Semaphore};

/// Accepts connections on one listener until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    listener_name: Arc<str>,
    broker: Arc<Broker>,
    connections: Arc<Semaphore>,
    shutdown: broadcast::Sender<()>,
    done: mpsc::Sender<()>,
) {
    let mut stop = shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.recv() => return,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept on {listener_name} failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(
                "refusing connection from {peer}: {} connections open",
                broker.config.max_connections
            );
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let conn = Connection::new(socket, broker.clone(), listener_name.clone());
        let stop = shutdown.subscribe();
        let done = done.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.run(stop).await {
                tracing::debug!("connection from {peer} closed: {e}");
            }
            drop(permit);
            drop(done);
        });
    }
}
