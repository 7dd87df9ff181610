//! `gregor cluster watch`: redraws the cluster status view every interval and highlights
//! each line whose state changed since the previous refresh (colour and a `*` marker, plus
//! a "Last changes" footer), so a user sees failover happen. Exits on Ctrl-C or after
//! `--iterations`.

use crate::control::Controllers;
use crate::quorum::now_ms;
use crate::status::{build, fetch, Line, ViewArgs};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::time::Duration;

/// At most this many recent changes are listed in the footer.
const FOOTER_CHANGES: usize = 5;

/// The keys of lines that are new or whose state changed since `prev`.
pub fn changed(prev: &[Line], cur: &[Line]) -> Vec<String> {
    let before: BTreeMap<&str, &str> = prev
        .iter()
        .map(|l| (l.key.as_str(), l.state.as_str()))
        .collect();
    cur.iter()
        .filter(|l| before.get(l.key.as_str()) != Some(&l.state.as_str()))
        .map(|l| l.key.clone())
        .collect()
}

const YELLOW_BOLD: &str = "\x1b[1;33m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";
const CLEAR: &str = "\x1b[2J\x1b[H";

/// One frame of `cluster watch`: changed lines in colour with a `*` marker.
pub fn render_watch(lines: &[Line], changed_keys: &[String], color: bool) -> String {
    let mut out = String::new();
    for l in lines {
        let is_changed = changed_keys.contains(&l.key);
        match (is_changed, color) {
            (true, true) => out.push_str(&format!("{YELLOW_BOLD}* {}  (changed){RESET}\n", l.text)),
            (true, false) => out.push_str(&format!("* {}  (changed)\n", l.text)),
            (false, _) => out.push_str(&format!("  {}\n", l.text)),
        }
    }
    out
}

/// Options of `cluster watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub view: ViewArgs,
    /// Refresh interval in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub interval_ms: u64,
    /// Stop after this many refreshes (default: until Ctrl-C).
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Print frames one after another instead of redrawing the screen, without colours
    /// (the default when stdout is not a terminal).
    #[arg(long)]
    pub no_clear: bool,
}

/// `gregor cluster watch`.
pub async fn watch(addrs: &[String], args: &WatchArgs) -> anyhow::Result<()> {
    let mut controllers = Controllers::new(addrs)?;
    let interval = Duration::from_millis(args.interval_ms);
    let limit = interval.max(Duration::from_secs(2));
    let mut prev: Vec<Line> = Vec::new();
    let mut recent: VecDeque<String> = VecDeque::with_capacity(FOOTER_CHANGES + 1);
    let mut n = 0u64;
    let color = !args.no_clear && std::io::IsTerminal::is_terminal(&std::io::stdout());
    loop {
        let frame = match fetch(&mut controllers, limit).await {
            Ok((q, img)) => {
                let lines = build(&q, &img, &args.view);
                let keys = if prev.is_empty() {
                    Vec::new()
                } else {
                    changed(&prev, &lines)
                };
                let stamp = clock(now_ms());
                for k in &keys {
                    note_change(&mut recent, format!("{k} at {stamp}"));
                }
                prev = lines;
                let mut f = render_watch(&prev, &keys, color);
                if !recent.is_empty() {
                    let list: Vec<&str> = recent.iter().map(String::as_str).collect();
                    f.push_str(&format!("Last changes: {}\n", list.join("; ")));
                }
                f
            }
            Err(e) if color => format!(
                "{RED}cannot reach the controllers: {e:#}{RESET}\n{}",
                render_watch(&prev, &[], color)
            ),
            Err(e) => format!("cannot reach the controllers: {e:#}\n"),
        };
        let header = format!(
            "gregor cluster watch — {} — every {} ms, Ctrl-C to exit\n",
            clock(now_ms()),
            args.interval_ms
        );
        let text = if color {
            format!("{CLEAR}{header}{frame}")
        } else {
            format!("{header}{frame}\n")
        };
        let mut stdout = std::io::stdout().lock();
        if stdout
            .write_all(text.as_bytes())
            .and_then(|_| stdout.flush())
            .is_err()
        {
            return Ok(()); // the terminal or pipe went away
        }
        drop(stdout);
        n += 1;
        if args.iterations.is_some_and(|max| n >= max) {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Remembers a change, newest first, keeping the last [`FOOTER_CHANGES`].
fn note_change(recent: &mut VecDeque<String>, change: String) {
    recent.push_front(change);
    recent.truncate(FOOTER_CHANGES);
}

/// `HH:MM:SS.mmm` (UTC) of a Unix time in milliseconds.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_footer_keeps_the_newest_changes() {
        let mut recent = VecDeque::new();
        for i in 0..8 {
            note_change(&mut recent, format!("c{i}"));
        }
        assert_eq!(recent, ["c7", "c6", "c5", "c4", "c3"]);
    }

    #[test]
    fn clock_formats_utc_time_of_day() {
        assert_eq!(clock(3_723_004), "01:02:03.004");
    }
}
