//! The control-protocol listener: one framed TCP port for brokers, admin tools and peer
//! controllers.
//!
//! Each connection is served by its own task, one request at a time (clients do not
//! pipeline). Raft RPCs go to openraft, `FetchMetadata` and `DescribeQuorum` are answered
//! from this node's applied state, and everything else goes to the controller task, or is
//! refused with NOT_CONTROLLER when this node is not the leader.

use crate::active::{not_controller, Command};
use crate::decide::code;
use crate::feed::Feed;
use crate::quorum;
use crate::raft::network::{self, Contacts};
use crate::raft::Raft;
use bytes::BytesMut;
use protocol::control::{
    decode_request, encode_response, ControlError, ControlRequest, ControlResponse,
    MAX_CONTROL_FRAME_BYTES,
};
use protocol::frame::{put_frame, take_frame};
use protocol::kafka::ResponseError;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most concurrent connections.
pub const MAX_CONNECTIONS: usize = 1024;
/// Longest a request may wait for the controller task.
const TASK_TIMEOUT: Duration = Duration::from_secs(30);

/// What connection handlers share.
pub struct Node {
    pub node_id: u64,
    pub raft: Raft,
    pub feed: Arc<Feed>,
    pub contacts: Arc<Contacts>,
    pub voters: BTreeMap<u64, String>,
    pub commands: mpsc::Sender<Command>,
    /// How recently a majority must have answered for this leader to accept writes.
    pub quorum_lease: Duration,
    pub leader_watch: Arc<crate::failover::LeaderWatch>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.node_id)
            .field("voters", &self.voters)
            .finish_non_exhaustive()
    }
}

/// Accepts connections until the listener fails; each is served on its own task.
pub async fn serve(listener: TcpListener, node: Arc<Node>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let node = node.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &node).await {
                tracing::debug!(%peer, error = %e, "control connection closed");
            }
            drop(permit);
        });
    }
}

async fn connection(mut stream: TcpStream, node: &Node) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let frame = take_frame(&mut buf, MAX_CONTROL_FRAME_BYTES)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        let Some(frame) = frame else {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
            continue;
        };
        let (cid, resp) = match decode_request(&frame) {
            Ok((cid, req)) => (cid, dispatch(node, req).await),
            Err(e) => {
                // The correlation id is readable whenever the header is.
                let cid = if frame.len() >= 6 {
                    u32::from_be_bytes([frame[2], frame[3], frame[4], frame[5]])
                } else {
                    0
                };
                let err = ControlError {
                    code: code(ResponseError::InvalidRequest),
                    message: e.to_string(),
                    leader: None,
                };
                (cid, ControlResponse::Error(err))
            }
        };
        let body = encode_response(cid, &resp).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut out = BytesMut::with_capacity(body.len() + 4);
        put_frame(&mut out, &body);
        stream.write_all(&out).await?;
    }
}

fn server_error(message: String) -> ControlResponse {
    ControlResponse::Error(ControlError {
        code: code(ResponseError::UnknownServerError),
        message,
        leader: None,
    })
}

async fn dispatch(node: &Node, req: ControlRequest) -> ControlResponse {
    match req {
        ControlRequest::Raft { kind, payload } => {
            match network::serve(&node.raft, kind, &payload, &node.leader_watch).await {
                Ok(payload) => ControlResponse::Raft { payload },
                Err(m) => ControlResponse::Error(ControlError {
                    code: code(ResponseError::InvalidRequest),
                    message: m,
                    leader: None,
                }),
            }
        }
        ControlRequest::FetchMetadata(r) => {
            ControlResponse::FetchMetadata(node.feed.fetch(&r).await)
        }
        ControlRequest::DescribeQuorum => {
            let ids: Vec<u64> = node.voters.keys().copied().collect();
            ControlResponse::DescribeQuorum(quorum::describe(
                &node.raft,
                &node.feed,
                &node.contacts,
                &ids,
            ))
        }
        req => {
            if node.raft.metrics().borrow().current_leader != Some(node.node_id) {
                return not_controller(&node.raft, &node.voters);
            }
            let ids: Vec<u64> = node.voters.keys().copied().collect();
            if !node
                .contacts
                .quorum_within(node.node_id, &ids, node.quorum_lease)
            {
                return ControlResponse::Error(ControlError {
                    code: code(ResponseError::NotController),
                    message: "this controller leads but has lost contact with the quorum".into(),
                    leader: None,
                });
            }
            let (tx, rx) = oneshot::channel();
            if node.commands.try_send(Command { req, reply: tx }).is_err() {
                return server_error("the controller's request queue is full or closed".into());
            }
            match tokio::time::timeout(TASK_TIMEOUT, rx).await {
                Ok(Ok(resp)) => resp,
                Ok(Err(_)) => server_error("the controller task stopped".into()),
                Err(_) => ControlResponse::Error(ControlError {
                    code: code(ResponseError::RequestTimedOut),
                    message: "the controller did not answer in time".into(),
                    leader: None,
                }),
            }
        }
    }
}
