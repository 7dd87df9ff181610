//! `gregor perf produce | consume`: kafka-producer-perf-test style load with progress
//! lines every 5 s and a final summary (records/s, MB/s, latency percentiles).
//!
//! - [`stats`]: latency samples, windows and percentiles; pure.
//! - [`produce`]: pipelined produce load with optional throttling.
//! - [`consume`]: reads partitions from the beginning as fast as possible.

pub mod consume;
pub mod produce;
pub mod stats;

#[derive(Debug, clap::Subcommand)]
pub enum PerfCommand {
    /// Produce synthetic records and report throughput and latency.
    Produce(produce::PerfProduceArgs),
    /// Consume a topic from the beginning and report throughput and fetch latency.
    Consume(consume::PerfConsumeArgs),
}

pub async fn run(dir: &std::path::Path, cmd: PerfCommand) -> anyhow::Result<()> {
    match cmd {
        PerfCommand::Produce(a) => produce::run(dir, &a).await,
        PerfCommand::Consume(a) => consume::run(dir, &a).await,
    }
}
