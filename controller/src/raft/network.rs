//! Raft RPCs between controllers over the control protocol.
//!
//! Each RPC is a `ControlRequest::Raft { kind, payload }` whose payload is the bincode
//! encoding of openraft's request; the answer's payload encodes `Result<Response, RaftError>`.
//! Transport failures map to openraft's `Unreachable` (cannot connect: back off),
//! `Timeout`, or `NetworkError`; a remote Raft error maps to `RemoteError`.

use super::TypeConfig;
use crate::client::{ClientError, ControlClient};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode, RPCTypes};
use protocol::control::codec::{decode_value, encode_value};
use protocol::control::{ControlRequest, ControlResponse, RaftRpcKind};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When each peer last answered an RPC (openraft 0.9's metrics do not say).
#[derive(Debug, Default)]
pub struct Contacts {
    last: Mutex<BTreeMap<u64, Instant>>,
}

impl Contacts {
    fn touch(&self, peer: u64) {
        self.last
            .lock()
            .expect("contacts mutex poisoned")
            .insert(peer, Instant::now());
    }

    /// When `peer` last answered, if ever.
    pub fn last(&self, peer: u64) -> Option<Instant> {
        self.last
            .lock()
            .expect("contacts mutex poisoned")
            .get(&peer)
            .copied()
    }

    /// Whether this node (`me`) plus the peers that answered within `window` form a
    /// majority of `voters`. A leader that fails this has lost the quorum (it may be
    /// partitioned away) and should not accept writes it cannot commit.
    pub fn quorum_within(&self, me: u64, voters: &[u64], window: Duration) -> bool {
        let last = self.last.lock().expect("contacts mutex poisoned");
        let fresh = voters
            .iter()
            .filter(|v| **v == me || last.get(v).is_some_and(|t| t.elapsed() <= window))
            .count();
        fresh * 2 > voters.len()
    }
}

/// Creates one [`PeerClient`] per target controller.
#[derive(Debug, Clone)]
pub struct Network {
    /// This node's id (for timeout errors).
    pub node_id: u64,
    pub contacts: Arc<Contacts>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            node_id: self.node_id,
            target,
            client: ControlClient::new(node.addr.clone()),
            contacts: self.contacts.clone(),
        }
    }
}

/// One connection to one peer controller, reconnected lazily after an error.
#[derive(Debug)]
pub struct PeerClient {
    node_id: u64,
    target: u64,
    client: ControlClient,
    contacts: Arc<Contacts>,
}

type RpcErr<E> = RPCError<u64, BasicNode, E>;

impl PeerClient {
    async fn rpc<Req, Resp, E>(
        &mut self,
        kind: RaftRpcKind,
        action: RPCTypes,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let payload = encode_value(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let request = ControlRequest::Raft { kind, payload };
        let resp = match self.client.call(&request, ttl).await {
            Ok(r) => r,
            Err(ClientError::Connect { source, .. }) => {
                return Err(RPCError::Unreachable(Unreachable::new(&source)))
            }
            Err(ClientError::Timeout { timeout, .. }) => {
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.node_id,
                    target: self.target,
                    timeout,
                }))
            }
            Err(e) => return Err(RPCError::Network(NetworkError::new(&e))),
        };
        match resp {
            ControlResponse::Raft { payload } => {
                self.contacts.touch(self.target);
                let result: Result<Resp, E> =
                    decode_value(&payload).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            ControlResponse::Error(e) => {
                let err = AnyError::error(format!(
                    "peer {} answered error {}: {}",
                    self.target, e.code, e.message
                ));
                Err(RPCError::Network(NetworkError::new(&err)))
            }
            other => {
                let err = AnyError::error(format!(
                    "peer {} answered a non-Raft response: {other:?}",
                    self.target
                ));
                Err(RPCError::Network(NetworkError::new(&err)))
            }
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr<RaftError<u64>>> {
        self.rpc(
            RaftRpcKind::AppendEntries,
            RPCTypes::AppendEntries,
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<RaftError<u64, InstallSnapshotError>>> {
        self.rpc(
            RaftRpcKind::InstallSnapshot,
            RPCTypes::InstallSnapshot,
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcErr<RaftError<u64>>> {
        self.rpc(RaftRpcKind::Vote, RPCTypes::Vote, &rpc, option.hard_ttl())
            .await
    }

    fn backoff(&self) -> Backoff {
        // A dead peer is retried often enough to notice its return quickly.
        Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}

/// Serves one Raft RPC on the receiving node: decodes, calls `raft`, encodes the result.
pub async fn serve(
    raft: &super::Raft,
    kind: RaftRpcKind,
    payload: &[u8],
    leader_watch: &crate::failover::LeaderWatch,
) -> Result<Vec<u8>, String> {
    fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
        encode_value(v).map_err(|e| e.to_string())
    }
    match kind {
        RaftRpcKind::AppendEntries => {
            let req: AppendEntriesRequest<TypeConfig> =
                decode_value(payload).map_err(|e| e.to_string())?;
            let result = raft.append_entries(req).await;
            if matches!(
                result,
                Ok(AppendEntriesResponse::Success
                    | AppendEntriesResponse::PartialSuccess(_)
                    | AppendEntriesResponse::Conflict)
            ) {
                leader_watch.heard();
            }
            enc(&result)
        }
        RaftRpcKind::Vote => {
            let req: VoteRequest<u64> = decode_value(payload).map_err(|e| e.to_string())?;
            enc(&raft.vote(req).await)
        }
        RaftRpcKind::InstallSnapshot => {
            let req: InstallSnapshotRequest<TypeConfig> =
                decode_value(payload).map_err(|e| e.to_string())?;
            enc(&raft.install_snapshot(req).await)
        }
    }
}
