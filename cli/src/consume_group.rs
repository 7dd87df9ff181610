//! `gregor consume TOPIC --group G`: consume as a member of a consumer group. Partitions come
//! from the group's assignment, positions from its committed offsets (else the start given
//! by `--from-beginning`/`--timestamp`, else the end); offsets are committed every few
//! seconds, on rebalance and on exit, and the member leaves the group when it stops.

use crate::consume::{fetch_round, start_offset, ConsumeArgs, Flow, Sink};
use crate::kafka::group::{join, Heartbeat, Member, HEARTBEAT_INTERVAL};
use crate::kafka::Client;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often positions are committed while consuming.
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

pub async fn run(client: &mut Client, args: &ConsumeArgs, group: &str) -> anyhow::Result<()> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    let Some(mut member) = join_or_interrupt(client, group, &args.topic, "").await? else {
        return Ok(());
    };
    let mut positions = assigned_positions(client, args, &member).await?;
    eprintln!(
        "joined group {group} as {} (generation {}), assigned partitions {:?}",
        member.member_id, member.generation, member.assigned
    );
    let mut sink = Sink::new();
    let mut last_heartbeat = Instant::now();
    let mut last_commit = Instant::now();
    let mut committed = positions.clone();
    loop {
        let flow = if positions.is_empty() {
            // Nothing assigned (more members than partitions): keep heartbeating.
            tokio::time::sleep(Duration::from_millis(200)).await;
            Flow::Continue
        } else {
            fetch_round(client, args, &mut positions, &mut sink).await?
        };
        let stop = flow == Flow::Stop || interrupted.load(Ordering::Relaxed);
        if stop || (last_commit.elapsed() >= COMMIT_INTERVAL && committed != positions) {
            member.commit(&args.topic, &positions).await?;
            committed = positions.clone();
            last_commit = Instant::now();
        }
        if stop {
            if let Err(e) = member.leave().await {
                tracing::debug!("leaving group {group}: {e}");
            }
            return Ok(());
        }
        if last_heartbeat.elapsed() >= HEARTBEAT_INTERVAL {
            last_heartbeat = Instant::now();
            if member.heartbeat().await? == Heartbeat::Rejoin {
                // Commit what we have under the old generation when the group still takes it.
                if let Err(e) = member.commit(&args.topic, &positions).await {
                    tracing::debug!("commit before rejoining: {e}");
                }
                let old_id = member.member_id.clone();
                let Some(m) = join_or_interrupt(client, group, &args.topic, &old_id).await? else {
                    return Ok(());
                };
                member = m;
                positions = assigned_positions(client, args, &member).await?;
                committed = positions.clone();
                eprintln!(
                    "rejoined group {group} (generation {}), assigned partitions {:?}",
                    member.generation, member.assigned
                );
            }
        }
    }
}

/// Joins, unless Ctrl-C comes first (a join can wait for a whole rebalance).
async fn join_or_interrupt(
    client: &mut Client,
    group: &str,
    topic: &str,
    member_id: &str,
) -> anyhow::Result<Option<Member>> {
    tokio::select! {
        m = join(client, group, topic, member_id) => Ok(Some(m?)),
        _ = tokio::signal::ctrl_c() => Ok(None),
    }
}

/// Where to start in each assigned partition: the committed offset, else `--offset`,
/// `--timestamp`, `--from-beginning`, or the end.
async fn assigned_positions(
    client: &mut Client,
    args: &ConsumeArgs,
    member: &Member,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let committed = member.committed(&args.topic).await?;
    let mut positions = BTreeMap::new();
    for &p in &member.assigned {
        let offset = match committed.get(&p) {
            Some(&o) if o >= 0 => o,
            _ => start_offset(client, args, p).await?,
        };
        positions.insert(p, offset);
    }
    Ok(positions)
}
