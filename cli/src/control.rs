//! Questions for the controller quorum over the control protocol: the quorum status and
//! the full metadata image (brokers with fencing and epochs, partitions with ISR).

use anyhow::{bail, Context};
use controller::client::ControllerSet;
use protocol::control::{
    ControlRequest, ControlResponse, FetchMetadataRequest, MetadataImage, QuorumStatus,
};
use std::time::Duration;
use tokio::time::Instant;

/// Per-call byte limit of a metadata fetch; the image is fetched in as many calls as needed.
const FETCH_MAX_BYTES: u32 = 4 << 20;
/// At most this many fetches for one image (bounds a misbehaving server).
const FETCH_MAX_CALLS: usize = 10_000;

/// A connection to the controllers.
#[derive(Debug)]
pub struct Controllers {
    set: ControllerSet,
}

impl Controllers {
    pub fn new(addrs: &[String]) -> anyhow::Result<Controllers> {
        if addrs.is_empty() {
            bail!("no controller addresses (pass --controllers host:port,...)");
        }
        let mut set = ControllerSet::new(addrs);
        set.attempt_timeout = Duration::from_secs(1);
        Ok(Controllers { set })
    }

    /// The quorum status from the active controller.
    pub async fn describe_quorum(&mut self, limit: Duration) -> anyhow::Result<QuorumStatus> {
        let deadline = Instant::now() + limit;
        match self
            .set
            .call_active(&ControlRequest::DescribeQuorum, deadline)
            .await?
        {
            ControlResponse::DescribeQuorum(status) => Ok(status),
            ControlResponse::Error(e) => {
                bail!("DescribeQuorum failed: error {}: {}", e.code, e.message)
            }
            other => bail!(
                "unexpected answer to DescribeQuorum: {}",
                variant_name(&other)
            ),
        }
    }

    /// The whole committed metadata image, from the active controller.
    pub async fn fetch_image(&mut self, limit: Duration) -> anyhow::Result<MetadataImage> {
        let deadline = Instant::now() + limit;
        let mut image = MetadataImage::default();
        for _ in 0..FETCH_MAX_CALLS {
            let req = ControlRequest::FetchMetadata(FetchMetadataRequest {
                broker_id: None,
                after: image.offset,
                max_wait_ms: 0,
                max_bytes: FETCH_MAX_BYTES,
            });
            let resp = match self
                .set
                .call_active(&req, deadline)
                .await
                .context("fetching metadata")?
            {
                ControlResponse::FetchMetadata(r) => r,
                ControlResponse::Error(e) => {
                    bail!("FetchMetadata failed: error {}: {}", e.code, e.message)
                }
                other => bail!(
                    "unexpected answer to FetchMetadata: {}",
                    variant_name(&other)
                ),
            };
            if let Some(snapshot) = resp.snapshot {
                image = snapshot;
            }
            let empty = resp.batches.is_empty();
            for (offset, batch) in &resp.batches {
                if *offset > image.offset {
                    image.apply_batch(*offset, batch);
                }
            }
            // `committed` may count Raft entries that carry no metadata (a new leader's
            // blank entry), so an empty answer means "nothing more to apply".
            if empty || image.offset >= resp.committed {
                return Ok(image);
            }
        }
        bail!("metadata image needed more than {FETCH_MAX_CALLS} fetches")
    }
}

fn variant_name(resp: &ControlResponse) -> &'static str {
    match resp {
        ControlResponse::BrokerRegistration(_) => "BrokerRegistration",
        ControlResponse::BrokerHeartbeat(_) => "BrokerHeartbeat",
        ControlResponse::AlterPartition(_) => "AlterPartition",
        ControlResponse::CreateTopics(_) => "CreateTopics",
        ControlResponse::DeleteTopics(_) => "DeleteTopics",
        ControlResponse::CreatePartitions(_) => "CreatePartitions",
        ControlResponse::AlterConfigs(_) => "AlterConfigs",
        ControlResponse::FetchMetadata(_) => "FetchMetadata",
        ControlResponse::DescribeQuorum(_) => "DescribeQuorum",
        ControlResponse::Raft { .. } => "Raft",
        ControlResponse::Error(_) => "Error",
        ControlResponse::AllocateProducerIds(_) => "AllocateProducerIds",
    }
}
