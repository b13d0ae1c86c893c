//! `bench resume run`: per run and mode, a fresh server on CPU 0 and the load generator on
//! CPU 1 (with `bench run`'s launcher); the load generator's JSON lines on stderr, their
//! medians as Markdown tables on stdout, with the ratio resume/plain.

use std::time::Duration;

use super::Mode;
use crate::child::{lines, median, wait_for};
use crate::load::connect_deadline;
use crate::run::Launcher;
use crate::{Args, BoxError};

/// Deadline for the server to announce its address.
const LISTEN_DEADLINE: Duration = Duration::from_secs(20);
/// Deadline for the load's result after its set-up: memory settling (up to 15 s each, three
/// or four times), the outage and recovery (up to 120 s), the refill of the detached phase.
const RESULT_DEADLINE: Duration = Duration::from_secs(420);
/// Files the load generator needs per client: the client's socket and the proxy's two.
const FILES_PER_CLIENT: u64 = 3;
/// Files a process needs beyond its connections.
const SPARE_FILES: u64 = 64;

/// How a column's value is taken from the runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Over {
    /// The median of the runs.
    Median,
    /// The sum over the runs (counts of what must not happen).
    Sum,
}

/// A column of a table: its title, where the value is in the load's JSON, how the runs
/// combine, and how it is shown.
struct Column {
    title: &'static str,
    path: &'static [&'static str],
    over: Over,
    /// Divides the value before it is shown (1024 for KiB to MiB).
    scale: f64,
    /// Shown as a percentage.
    share: bool,
}

const fn column(title: &'static str, path: &'static [&'static str]) -> Column {
    Column { title, path, over: Over::Median, scale: 1.0, share: false }
}

const RECOVERY: [Column; 15] = [
    column("all back, s after reset", &["all_back_s"]),
    column("reset to back p50, ms", &["reset_to_back_ms", "p50"]),
    column("reset to back p99, ms", &["reset_to_back_ms", "p99"]),
    column("attempt to back p50, ms", &["attempt_to_back_ms", "p50"]),
    column("attempt to back p99, ms", &["attempt_to_back_ms", "p99"]),
    column("attempt to back max, ms", &["attempt_to_back_ms", "max"]),
    column("server CPU-s, reset to all back", &["server_cpu_s"]),
    Column { share: true, ..column("server CPU", &["server_cpu_share"]) },
    Column { share: true, ..column("load CPU", &["load_cpu_share"]) },
    Column { share: true, ..column("server waiting for a CPU", &["server_waiting_share"]) },
    column("missed frames delivered", &["frames_delivered"]),
    column("of (clients x missed)", &["frames_expected"]),
    Column { over: Over::Sum, ..column("out of sequence (all runs)", &["sequence_errors"]) },
    Column { over: Over::Sum, ..column("Reset events (all runs)", &["reset_events"]) },
    Column { over: Over::Sum, ..column("new connections (all runs)", &["new_sessions"]) },
];

const MEMORY: [Column; 7] = [
    Column { scale: 1024.0, ..column("server RSS, no client, MiB", &["base_kib"]) },
    Column { scale: 1024.0, ..column("with the idle clients, MiB", &["attached_kib"]) },
    column("bytes per idle connection or attached session", &["attached_bytes_each"]),
    column("bytes per detached session", &["detached_bytes_each"]),
    column("server open files, clients attached", &["attached_open_files"]),
    column("server open files, sessions detached", &["detached_open_files"]),
    column("detached sessions all resumed, s after their reset", &["all_resumed_after_detached_s"]),
];

pub(super) fn main(args: &Args) -> Result<(), BoxError> {
    let runs: usize = args.num_or("runs", 3)?;
    let clients: usize = args.num_or("clients", 5000)?;
    let missed: u64 = args.num_or("missed", 100)?;
    let delay = args.str_or("reconnect-delay", "default");
    let modes =
        args.str_or("modes", "plain,resume").split(',').map(Mode::parse).collect::<Result<Vec<_>, _>>()?;
    if runs == 0 || clients == 0 || modes.is_empty() {
        return Err("need --runs > 0, --clients > 0 and a mode".into());
    }
    let launcher = Launcher::new();
    if launcher.pinned {
        println!("pinning: server on CPU 0, load generator (clients and proxy) on CPU 1 (taskset)");
    } else {
        println!("pinning: taskset not installed, server and load generator NOT pinned");
    }
    let needed = clients as u64 * FILES_PER_CLIENT + SPARE_FILES;
    if needed > launcher.max_open_files {
        return Err(format!(
            "{clients} clients need {needed} open files in the load generator; the limit is {}",
            launcher.max_open_files
        )
        .into());
    }
    match launcher.open_files {
        Some(limit) => println!("open files: soft limit {limit} for both children (prlimit)"),
        None => {
            println!("open files: prlimit not installed, children keep the limit {}", launcher.max_open_files)
        }
    }
    println!(
        "runs: {runs} (median shown); {clients} clients, {missed} frames missed each, reconnection delay {delay}; \
         server and load generator: one tokio worker each"
    );
    let mut samples: Vec<Vec<serde_json::Value>> = vec![Vec::new(); modes.len()];
    for run in 0..runs {
        for (index, mode) in modes.iter().enumerate() {
            match one_run(&launcher, *mode, clients, missed, &delay) {
                Ok(value) => {
                    eprintln!("resume | {} | run {} | {value}", mode.name(), run + 1);
                    if let Some(error) = value.get("error") {
                        eprintln!("resume | {} | run {} | FAILED: {error}", mode.name(), run + 1);
                    } else {
                        samples[index].push(value);
                    }
                }
                Err(error) => eprintln!("resume | {} | run {} | FAILED: {error}", mode.name(), run + 1),
            }
        }
    }
    println!();
    println!(
        "recovery after a proxy reset: {clients} clients, {missed} frames sent to each during the outage, \
         reconnection delay {delay}"
    );
    print_table(&modes, &samples, &RECOVERY);
    println!("server memory (VmRSS), {clients} idle clients");
    print_table(&modes, &samples, &MEMORY);
    Ok(())
}

/// One server and one load generator for `mode`: the load's JSON result.
fn one_run(
    launcher: &Launcher,
    mode: Mode,
    clients: usize,
    missed: u64,
    delay: &str,
) -> Result<serde_json::Value, BoxError> {
    let exe = std::env::current_exe()?;
    let serve = ["resume", "serve", "--listen", "127.0.0.1:0"].map(str::to_owned);
    let mut server = launcher.spawn(0, &exe, &serve)?;
    let server_lines = lines(&mut server)?;
    let line =
        wait_for(&server_lines, LISTEN_DEADLINE, "the server's address", |l| l.starts_with("listening on "))?;
    let url = line.trim_start_matches("listening on ").trim().to_owned();
    let load_args = [
        "resume",
        "load",
        "--url",
        &url,
        "--server-pid",
        &server.pid().to_string(),
        "--mode",
        mode.name(),
        "--clients",
        &clients.to_string(),
        "--missed",
        &missed.to_string(),
        "--reconnect-delay",
        delay,
    ]
    .map(str::to_owned);
    let mut load = launcher.spawn(1, &exe, &load_args)?;
    let load_lines = lines(&mut load)?;
    let setup = connect_deadline(clients) + Duration::from_secs(60);
    wait_for(&load_lines, setup, "the clients' set-up", |l| l == "connected")?;
    let result = wait_for(&load_lines, RESULT_DEADLINE, "the load's result", |l| l.starts_with('{'))?;
    drop(load);
    drop(server);
    Ok(serde_json::from_str(&result)?)
}

fn value_at(sample: &serde_json::Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(sample, |value, key| value.get(key))
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(f64::NAN)
}

fn shown(column: &Column, value: f64) -> String {
    let value = value / column.scale;
    if value.is_nan() {
        "-".to_owned()
    } else if column.share {
        format!("{:.0}%", value * 100.0)
    } else if value.abs() < 100.0 && value.fract() != 0.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.0}")
    }
}

fn print_table(modes: &[Mode], samples: &[Vec<serde_json::Value>], columns: &[Column]) {
    println!();
    let titles: Vec<&str> = columns.iter().map(|c| c.title).collect();
    println!("| mode | runs | {} |", titles.join(" | "));
    println!("|---|---:|{}", "---:|".repeat(columns.len()));
    let mut rows = Vec::new();
    for (mode, runs) in modes.iter().zip(samples) {
        let row: Vec<f64> = columns
            .iter()
            .map(|column| {
                let values = runs.iter().map(|run| value_at(run, column.path));
                match column.over {
                    Over::Median => median(values.collect()),
                    Over::Sum if runs.is_empty() => f64::NAN,
                    Over::Sum => values.filter(|v| !v.is_nan()).sum(),
                }
            })
            .collect();
        let cells: Vec<String> =
            columns.iter().zip(&row).map(|(column, value)| shown(column, *value)).collect();
        println!("| {} | {} | {} |", mode.name(), runs.len(), cells.join(" | "));
        rows.push((*mode, row));
    }
    let find = |wanted: Mode| rows.iter().find(|(mode, _)| *mode == wanted).map(|(_, row)| row);
    if let (Some(plain), Some(resume)) = (find(Mode::Plain), find(Mode::Resume)) {
        let ratios: Vec<String> = columns
            .iter()
            .zip(plain.iter().zip(resume))
            .map(|(column, (plain, resume))| {
                if column.over == Over::Sum || *plain == 0.0 || plain.is_nan() || resume.is_nan() {
                    "-".to_owned()
                } else {
                    format!("{:.2}x", resume / plain)
                }
            })
            .collect();
        println!("| **resume/plain** | | {} |", ratios.join(" | "));
    }
    println!();
}
