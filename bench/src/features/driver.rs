//! `bench features run`: starts the server and the load generator as pinned children per
//! scenario, implementation and run, reads their CPU time from `/proc`, and prints the
//! medians as Markdown tables (see the [module docs](super) for the method).
//!
//! The child-process helpers it shares with `bench run` are in `crate::child`.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::wire::STORM_GROUP;
use super::{Impl, Scenario};
use crate::child::{Killed, clock_ticks, cpu_ticks, lines, median, wait_for, waiting_seconds};
use crate::{Args, BoxError};

/// The file limit (soft and hard) of both children: 5,000 clients need 5,000 descriptors
/// on each side, and the default soft limit is often 1,024.
const NOFILE: &str = "--nofile=20000:20000";
/// How long the storm's clients stay connected before the kill: past the client's
/// `min_uptime` (5 s), so that their retry count starts over as for long-lived clients.
const STORM_UPTIME: Duration = Duration::from_secs(6);
/// Deadline for a server to announce its address.
const LISTEN_DEADLINE: Duration = Duration::from_secs(10);
/// Deadline for the storm's set-up (5,000 clients connected, joined and opened).
const STORM_SETUP_DEADLINE: Duration = Duration::from_secs(180);
/// Deadline for the storm's clients to be restored after the restart.
const STORM_RESTORE_DEADLINE: Duration = Duration::from_secs(130);
/// Deadline for the load generator's set-up and warm-up in the windowed scenarios.
const WARMUP_DEADLINE: Duration = Duration::from_secs(90);

/// How each scenario's table is labelled, and its columns.
struct Table {
    title: String,
    columns: &'static [&'static str],
}

fn table(scenario: Scenario, storm_clients: usize) -> Table {
    match scenario {
        Scenario::Storm => Table {
            title: format!(
                "reconnect storm: {storm_clients} clients (ws_client defaults), 1 room + 1 view each, \
                 {STORM_GROUP} per room and per view; server killed and restarted on the same port"
            ),
            columns: &[
                "all connected, s after restart",
                "all restored, s after restart",
                "all restored, s after kill",
                "server CPU-s, restart to restored",
                "clients restored per server CPU-s",
                "failed attempts",
                "first delay p50, ms",
                "first delay max, ms",
                "server CPU",
                "load CPU",
                "server waiting for a CPU",
            ],
        },
        Scenario::Churn => Table {
            title: "presence churn: 1,000 togglers opening/closing 10 views (100 possible members each), \
                    5 observers per view"
                .to_owned(),
            columns: &[
                "view ops/s",
                "ops per server CPU-s",
                "member changes delivered/s",
                "changes per server CPU-s",
                "changes to observers/s",
                "server CPU",
                "load CPU",
                "server waiting for a CPU",
            ],
        },
        Scenario::SyncPush => Table {
            title: "sync push: 1 model, 1,000 subscribers, 16 pushes in flight".to_owned(),
            columns: &[
                "pushes/s",
                "deliveries/s",
                "deliveries per server CPU-s",
                "server CPU",
                "load CPU",
                "server waiting for a CPU",
            ],
        },
    }
}

/// How children are started.
struct Launcher {
    /// `taskset` exists: the server goes to CPU 0, the load generator to CPU 1.
    pinned: bool,
    /// `prlimit` exists: the file limit is raised.
    limited: bool,
    /// Clock ticks per second of `/proc/PID/stat`.
    ticks: f64,
    /// Clients in the storm (5,000 unless `--storm-clients` says otherwise).
    storm_clients: usize,
}

pub(super) fn main(args: &Args) -> Result<(), BoxError> {
    let runs: usize = args.num_or("runs", 5)?;
    let seconds: f64 = args.num_or("seconds", 10.0)?;
    if runs == 0 || !seconds.is_finite() || seconds <= 0.0 {
        return Err("need --runs > 0 and --seconds > 0".into());
    }
    let scenarios = args
        .str_or("scenarios", "storm,churn,syncpush")
        .split(',')
        .map(Scenario::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let works = |program: &str, arg: &str| {
        Command::new(program).arg(arg).output().map(|output| output.status.success()).unwrap_or(false)
    };
    let launcher = Launcher {
        pinned: works("taskset", "-V"),
        limited: works("prlimit", "--version"),
        ticks: clock_ticks(),
        storm_clients: args.num_or("storm-clients", 5000)?,
    };
    if launcher.pinned {
        println!("pinning: server on CPU 0, load generator on CPU 1 (taskset)");
    } else {
        println!("pinning: taskset not installed, server and load generator NOT pinned");
    }
    if launcher.limited {
        println!("file limit: 20000 for both children (prlimit)");
    } else {
        println!("file limit: prlimit not installed, children keep the inherited limit");
    }
    println!(
        "runs: {runs} (median shown), windowed scenarios {seconds} s after a 1 s warm-up; server and load: one tokio worker each"
    );
    let mut results = Vec::new();
    for scenario in scenarios {
        let layout = table(scenario, launcher.storm_clients);
        let mut samples: Vec<Vec<Vec<f64>>> = vec![Vec::new(); Impl::ALL.len()];
        for run in 0..runs {
            for (index, implementation) in Impl::ALL.into_iter().enumerate() {
                let sample = match scenario {
                    Scenario::Storm => storm_run(&launcher, implementation),
                    Scenario::Churn | Scenario::SyncPush => {
                        window_run(&launcher, scenario, implementation, seconds)
                    }
                };
                match sample {
                    Ok(sample) => {
                        let shown: Vec<String> = layout
                            .columns
                            .iter()
                            .zip(&sample)
                            .map(|(column, value)| format!("{column} {}", shown(column, *value)))
                            .collect();
                        eprintln!(
                            "{} | {} | run {} | {}",
                            scenario.name(),
                            implementation.name(),
                            run + 1,
                            shown.join(" | ")
                        );
                        samples[index].push(sample);
                    }
                    Err(error) => {
                        eprintln!(
                            "{} | {} | run {} | FAILED: {error}",
                            scenario.name(),
                            implementation.name(),
                            run + 1
                        );
                    }
                }
            }
        }
        results.push((layout, samples));
    }
    println!();
    for (layout, samples) in &results {
        print_table(layout, samples);
    }
    Ok(())
}

/// A value as the tables show it: shares in percent, small numbers with decimals.
fn shown(column: &str, value: f64) -> String {
    if value.is_nan() {
        "-".to_owned()
    } else if column.ends_with(" CPU") {
        format!("{:.0}%", value * 100.0)
    } else if value.abs() < 100.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.0}")
    }
}

fn print_table(layout: &Table, samples: &[Vec<Vec<f64>>]) {
    println!("{}", layout.title);
    println!();
    println!("| impl | runs | {} |", layout.columns.join(" | "));
    println!("|---|---:|{}", "---:|".repeat(layout.columns.len()));
    let medians: Vec<Vec<f64>> = samples
        .iter()
        .map(|runs| {
            (0..layout.columns.len())
                .map(|column| median(runs.iter().map(|run| run[column]).collect()))
                .collect()
        })
        .collect();
    for ((implementation, runs), row) in Impl::ALL.iter().zip(samples).zip(&medians) {
        let cells: Vec<String> =
            layout.columns.iter().zip(row).map(|(column, value)| shown(column, *value)).collect();
        println!("| {} | {} | {} |", implementation.name(), runs.len(), cells.join(" | "));
    }
    if let [raw, ours] = medians.as_slice() {
        let ratios: Vec<String> = raw
            .iter()
            .zip(ours)
            .map(
                |(raw, ours)| {
                    if *raw == 0.0 || raw.is_nan() { "-".to_owned() } else { format!("{:.2}x", ours / raw) }
                },
            )
            .collect();
        println!("| **ours/raw** | | {} |", ratios.join(" | "));
    }
    println!();
}

impl Launcher {
    /// Starts `bench features --role ...args` pinned to `cpu`, with the file limit raised.
    /// `prlimit` and `taskset` exec the command, so the child's pid is the bench process's.
    fn spawn(&self, cpu: u32, args: &[&str]) -> Result<(Killed, mpsc::Receiver<String>), BoxError> {
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if self.limited {
            argv.extend(["prlimit".into(), NOFILE.into(), "--".into()]);
        }
        if self.pinned {
            argv.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
        }
        argv.push(std::env::current_exe()?.into_os_string());
        argv.extend(["features".into(), "--role".into()]);
        argv.extend(args.iter().map(Into::into));
        let (program, rest) = argv.split_first().ok_or("empty command")?;
        let child = Command::new(program)
            .args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut child = Killed(child);
        let lines = lines(&mut child)?;
        Ok((child, lines))
    }

    /// The CPU seconds a process used so far (utime + stime).
    fn cpu_seconds(&self, pid: u32) -> Result<f64, BoxError> {
        Ok(cpu_ticks(pid)? / self.ticks)
    }
}

/// Starts a server and returns it with its URL.
fn start_server(
    launcher: &Launcher,
    implementation: Impl,
    scenario: Scenario,
    listen: &str,
) -> Result<(Killed, String), BoxError> {
    let (server, lines) = launcher.spawn(
        0,
        &["serve", "--impl", implementation.name(), "--scenario", scenario.name(), "--listen", listen],
    )?;
    let line =
        wait_for(&lines, LISTEN_DEADLINE, "the server's address", |line| line.starts_with("listening on "))?;
    Ok((server, line.trim_start_matches("listening on ").trim().to_owned()))
}

/// One storm: set up, kill, restart on the same port, time the recovery.
fn storm_run(launcher: &Launcher, implementation: Impl) -> Result<Vec<f64>, BoxError> {
    let (server, url) = start_server(launcher, implementation, Scenario::Storm, "127.0.0.1:0")?;
    let addr = url.trim_start_matches("ws://").to_owned();
    let clients = launcher.storm_clients.to_string();
    let (load, load_lines) = launcher.spawn(
        1,
        &[
            "load",
            "--scenario",
            "storm",
            "--impl",
            implementation.name(),
            "--url",
            &url,
            "--clients",
            &clients,
        ],
    )?;
    wait_for(&load_lines, STORM_SETUP_DEADLINE, "the storm clients' set-up", |line| line == "ready")?;
    std::thread::sleep(STORM_UPTIME);
    let killed = Instant::now();
    drop(server);
    wait_for(&load_lines, Duration::from_secs(30), "the clients to notice the kill", |line| line == "down")?;
    // The port was free a moment ago; an ephemeral connection may take it meanwhile, so
    // retry briefly before giving up.
    let mut restarted = None;
    for _ in 0..10 {
        match start_server(launcher, implementation, Scenario::Storm, &addr) {
            Ok(started) => {
                restarted = Some(started);
                break;
            }
            Err(error) => {
                eprintln!("restart on {addr} failed ({error}), retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    let (server, _) = restarted.ok_or_else(|| format!("could not restart the server on {addr}"))?;
    let restart = Instant::now();
    let cpu_before = launcher.cpu_seconds(server.pid())?;
    let waited_before = waiting_seconds(server.pid())?;
    let load_cpu_before = launcher.cpu_seconds(load.pid())?;
    let deadline = restart + STORM_RESTORE_DEADLINE;
    let left = || deadline.saturating_duration_since(Instant::now());
    wait_for(&load_lines, left(), "every client connected", |line| line.starts_with("connected "))?;
    let connected = restart.elapsed().as_secs_f64();
    wait_for(&load_lines, left(), "every client restored", |line| line.starts_with("restored "))?;
    let restored = restart.elapsed().as_secs_f64();
    let since_kill = killed.elapsed().as_secs_f64();
    let cpu = launcher.cpu_seconds(server.pid())? - cpu_before;
    let waited = waiting_seconds(server.pid())? - waited_before;
    let load_cpu = launcher.cpu_seconds(load.pid())? - load_cpu_before;
    let details =
        wait_for(&load_lines, Duration::from_secs(10), "the storm's details", |line| line.starts_with('{'))?;
    eprintln!("storm | {} | details: {details}", implementation.name());
    let value: serde_json::Value = serde_json::from_str(&details)?;
    let number = |path: &[&str]| {
        path.iter()
            .try_fold(&value, |value, key| value.get(key))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    let clients = number(&["clients"]);
    Ok(vec![
        connected,
        restored,
        since_kill,
        cpu,
        if cpu > 0.0 { clients / cpu } else { f64::NAN },
        number(&["failed_attempts"]),
        number(&["first_delay_ms", "p50"]),
        number(&["first_delay_ms", "max"]),
        cpu / restored,
        load_cpu / restored,
        waited / restored,
    ])
}

/// One windowed run (churn or sync push): the load's counts over the server's CPU time.
fn window_run(
    launcher: &Launcher,
    scenario: Scenario,
    implementation: Impl,
    seconds: f64,
) -> Result<Vec<f64>, BoxError> {
    let (server, url) = start_server(launcher, implementation, scenario, "127.0.0.1:0")?;
    let seconds_arg = seconds.to_string();
    let (load, load_lines) = launcher.spawn(
        1,
        &[
            "load",
            "--scenario",
            scenario.name(),
            "--impl",
            implementation.name(),
            "--url",
            &url,
            "--seconds",
            &seconds_arg,
        ],
    )?;
    wait_for(&load_lines, WARMUP_DEADLINE, "the load's warm-up", |line| line == "measuring")?;
    let server_before = launcher.cpu_seconds(server.pid())?;
    let waited_before = waiting_seconds(server.pid())?;
    let load_before = launcher.cpu_seconds(load.pid())?;
    let wall = Instant::now();
    let result =
        wait_for(&load_lines, Duration::from_secs_f64(seconds + 30.0), "the load's result", |line| {
            line.starts_with('{')
        })?;
    let server_cpu = launcher.cpu_seconds(server.pid())? - server_before;
    let waited = waiting_seconds(server.pid())? - waited_before;
    let load_cpu = launcher.cpu_seconds(load.pid())? - load_before;
    let wall = wall.elapsed().as_secs_f64();
    drop(load);
    drop(server);
    let value: serde_json::Value = serde_json::from_str(&result)?;
    let number = |key: &str| value.get(key).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    if number("lost_connections") > 0.0 {
        eprintln!("warning: {} client connections ended during the run", number("lost_connections"));
    }
    let elapsed = number("seconds");
    let per_cpu = |count: f64| if server_cpu > 0.0 { count / server_cpu } else { f64::NAN };
    Ok(match scenario {
        Scenario::Churn => vec![
            number("rate"),
            per_cpu(number("count")),
            number("changes") / elapsed,
            per_cpu(number("changes")),
            number("observed") / elapsed,
            server_cpu / wall,
            load_cpu / wall,
            waited / wall,
        ],
        Scenario::SyncPush | Scenario::Storm => vec![
            number("push_rate"),
            number("rate"),
            per_cpu(number("count")),
            server_cpu / wall,
            load_cpu / wall,
            waited / wall,
        ],
    })
}
