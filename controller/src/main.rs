//! `gregor-controller`: parses flags and runs one controller (see the library docs).

use clap::{Parser, Subcommand};
use gregor_controller::config::Config;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "gregor-controller",
    about = "A Gregor metadata-quorum controller",
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Option<Config>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 iff the controller at --addr answers and knows a quorum leader.
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, clap::Args)]
struct HealthcheckArgs {
    #[arg(long, env = "GREGOR_HEALTHCHECK_ADDR")]
    addr: String,
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

// `gregor-controller healthcheck ...` is parsed on its own, so that `GREGOR_*` variables meant
// for the controller itself (a container sets some of them) cannot make it fail with
// "required argument missing".
#[derive(Debug, Parser)]
#[command(
    name = "gregor-controller healthcheck",
    about = "Exit 0 iff the controller at --addr answers and knows a quorum leader"
)]
struct HealthcheckCli {
    #[command(flatten)]
    args: HealthcheckArgs,
}

async fn healthcheck(args: HealthcheckArgs) -> ExitCode {
    let limit = Duration::from_millis(args.timeout_ms);
    if gregor_controller::healthcheck(&args.addr, limit).await {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        let hc = HealthcheckCli::parse_from(std::env::args().skip(1));
        return healthcheck(hc.args).await;
    }
    let cli = Cli::parse();
    if let Some(Command::Healthcheck(args)) = cli.command {
        return healthcheck(args).await;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let Some(config) = cli.config else {
        eprintln!("error: controller flags are required (see --help)");
        return ExitCode::FAILURE;
    };
    match gregor_controller::run(config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
