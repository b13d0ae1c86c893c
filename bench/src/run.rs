//! `bench run`: the driver. For each scenario and each implementation in the same run it
//! starts the server (`bench serve` for raw and ours, `node bench/node/server.js` for node)
//! pinned to CPU 0 and `bench load` pinned to CPU 1, and measures:
//!
//! - echo and fan-out: the server's CPU time (utime + stime from `/proc/PID/stat`, all
//!   threads) around the load's measured window, and the load's rate and latencies;
//! - memory: the server's resident memory (`VmRSS` from `/proc/PID/status`) before the
//!   load connects and once it holds every connection and the memory has settled.
//!
//! It prints the medians of the runs as Markdown tables with the ratios ours/raw and
//! ours/node (and ours/socketio, ours/socketioxide: the Socket.IO peers of [`socketio`]).
//! Every phase has a deadline, and every child is killed on every path.
//!
//! The cross-node fan-out (label containing `cross-node`, see [`cross_node`]) runs ours
//! only: two nodes in one cluster over a `redis-server` it starts, against one node, in
//! the same run, with its own table.

mod cross_node;
mod relay;
mod smoke;

pub(crate) use smoke::smoke;
mod socketio;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::child::{
    Killed, clock_ticks, cpu_ticks, finish_within, lines, median, open_file_limits, open_files, resident_kib,
    wait_for,
};
use crate::load::connect_deadline;
use crate::{Args, BoxError};

/// What a scenario measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Round trips of a frame in the given envelope (`json` or `msgpack`, `bench load --payload`).
    Echo { payload: &'static str },
    /// Deliveries of the publisher's frames to every member of one room.
    Fanout,
    /// The fan-out over two nodes of a cluster on Redis, against one node (ours only).
    CrossNode,
    /// Resident memory per idle connection.
    Memory,
}

impl Kind {
    /// The scenario's name for `bench serve`, `bench load` and `server.js`.
    fn name(self) -> &'static str {
        match self {
            Kind::Echo { .. } => "echo",
            Kind::Fanout | Kind::CrossNode => "fanout",
            Kind::Memory => "memory",
        }
    }
}

/// One scenario of the tables.
struct Scenario {
    /// The row's label; `--only` matches a substring of it.
    label: &'static str,
    kind: Kind,
    connections: usize,
    /// Frames each echo connection, or the fan-out publisher, keeps in flight.
    in_flight: usize,
    /// Memory: connections that open the same view (1: a view each, the costliest case).
    per_view: usize,
    /// Fan-out: the publisher's frame size (`bench load --payload-size`): 64, or 1,024
    /// bytes of JSON rows for the compression rows.
    payload_size: usize,
    /// The load offers permessage-deflate as a browser does; Node `ws` runs with
    /// `perMessageDeflate: true`, ours and the relay with their default (on). Only the
    /// implementations that can compress run these rows.
    deflate: bool,
}

const SCENARIOS: [Scenario; 14] = [
    Scenario {
        label: "echo, 1 connection, JSON, 1 in flight",
        kind: Kind::Echo { payload: "json" },
        connections: 1,
        in_flight: 1,
        per_view: 1,
        payload_size: 64,
        deflate: false,
    },
    Scenario {
        label: "echo, 100 connections, JSON, 1 in flight each",
        kind: Kind::Echo { payload: "json" },
        connections: 100,
        in_flight: 1,
        per_view: 1,
        payload_size: 64,
        deflate: false,
    },
    Scenario {
        label: "echo, 100 connections, MessagePack, 1 in flight each",
        kind: Kind::Echo { payload: "msgpack" },
        connections: 100,
        in_flight: 1,
        per_view: 1,
        payload_size: 64,
        deflate: false,
    },
    Scenario {
        label: "fan-out, 1,000 members, 32 in flight",
        kind: Kind::Fanout,
        connections: 1000,
        in_flight: 32,
        per_view: 1,
        payload_size: 64,
        deflate: false,
    },
    Scenario {
        label: "fan-out, 10,000 members, 32 in flight",
        kind: Kind::Fanout,
        connections: 10_000,
        in_flight: 32,
        per_view: 1,
        payload_size: 64,
        deflate: false,
    },
    Scenario {
        label: "fan-out, 1,000 members, 1 in flight",
        kind: Kind::Fanout,
        connections: 1000,
        in_flight: 1,
        per_view: 1,
        payload_size: 64,
        deflate: false,
    },
    Scenario {
        label: "fan-out, 10,000 members, 1 in flight",
        kind: Kind::Fanout,
        connections: 10_000,
        in_flight: 1,
        per_view: 1,
        payload_size: 64,
        deflate: false,
    },
    Scenario {
        label: "fan-out across nodes (cross-node, Redis), 1,000 members, 32 in flight",
        kind: Kind::CrossNode,
        connections: 1000,
        in_flight: 32,
        per_view: 1,
        payload_size: 64,
        deflate: false,
    },
    Scenario {
        label: "fan-out, 1 KB JSON, 1,000 members, 32 in flight",
        kind: Kind::Fanout,
        connections: 1000,
        in_flight: 32,
        per_view: 1,
        payload_size: 1024,
        deflate: false,
    },
    Scenario {
        label: "fan-out, 1 KB JSON, compressed, 1,000 members, 32 in flight",
        kind: Kind::Fanout,
        connections: 1000,
        in_flight: 32,
        per_view: 1,
        payload_size: 1024,
        deflate: true,
    },
    Scenario {
        label: "fan-out, 1 KB JSON, compressed, 1,000 members, 1 in flight",
        kind: Kind::Fanout,
        connections: 1000,
        in_flight: 1,
        per_view: 1,
        payload_size: 1024,
        deflate: true,
    },
    Scenario {
        label: "memory, 10,000 idle connections, 10 per view",
        kind: Kind::Memory,
        connections: 10_000,
        in_flight: 0,
        per_view: 10,
        payload_size: 64,
        deflate: false,
    },
    Scenario {
        label: "memory, 10,000 idle connections, compressed, 10 per view",
        kind: Kind::Memory,
        connections: 10_000,
        in_flight: 0,
        per_view: 10,
        payload_size: 64,
        deflate: true,
    },
    Scenario {
        label: "memory, 10,000 idle connections, a view each",
        kind: Kind::Memory,
        connections: 10_000,
        in_flight: 0,
        per_view: 1,
        payload_size: 64,
        deflate: false,
    },
];

/// Every implementation, in the order of the table rows.
const ALL_IMPLS: [&str; 7] =
    ["raw", "bcast", "ours", "relay", "node", socketio::IMPLS[0], socketio::IMPLS[1]];

/// The ratio rows under each scenario: `(numerator, denominator)`, when both ran.
const RATIOS: [(&str, &str); 6] = [
    ("ours", "raw"),
    ("ours", "bcast"),
    ("ours", "node"),
    ("ours", socketio::IMPLS[0]),
    ("ours", socketio::IMPLS[1]),
    ("relay", "ours"),
];

/// Whether `implementation` has a server for `kind`: the relay (the example server) is the
/// fan-out only, `bcast` has no echo of its own (it serves `raw`'s), and the Socket.IO
/// peers have no MessagePack echo and no cluster.
fn serves(implementation: &str, kind: Kind) -> bool {
    match implementation {
        "relay" => kind == Kind::Fanout,
        "bcast" => !matches!(kind, Kind::Echo { .. }),
        _ => socketio::applies(implementation, kind),
    }
}

/// File descriptors a process needs beyond one per connection (stdio, listener, epoll, ...).
const SPARE_FILES: u64 = 64;
/// Time for a server to announce its address (node starts slower than the Rust servers).
const ANNOUNCE_DEADLINE: Duration = Duration::from_secs(20);
/// Time for `npm install` in `bench/node`.
const NPM_DEADLINE: Duration = Duration::from_secs(180);
/// Memory: the pause after the server announced its address before `before` is read, so
/// that start-up allocations (node compiling its modules) are not counted per connection.
const MEMORY_START_SETTLE: Duration = Duration::from_millis(500);
/// Memory: RSS is read this often once every connection is open...
const MEMORY_POLL: Duration = Duration::from_millis(250);
/// ...and counts as settled once it moved by at most [`MEMORY_STABLE_KIB`] over this long...
const MEMORY_STABLE_FOR: Duration = Duration::from_secs(1);
/// ...this many KiB (64 KiB is 6.5 bytes per connection at 10,000)...
const MEMORY_STABLE_KIB: u64 = 64;
/// ...or after this long, whichever comes first (the last reading is used then).
const MEMORY_SETTLE_BOUND: Duration = Duration::from_secs(15);

/// What one echo or fan-out run measured.
#[derive(Clone, Copy)]
struct Sample {
    rate: f64,
    per_cpu_second: f64,
    cpu_share: f64,
    p50_us: f64,
    p99_us: f64,
    /// Frames the server skipped for a subscriber that lagged (`bcast` reports them; in a
    /// median: the sum over the runs).
    lagged: u64,
    /// Fan-out: broadcasts of the measured window that never reached every member (in a
    /// median: the sum over the runs).
    lost_broadcasts: u64,
    /// Fan-out: bytes the members read per delivery (frames as sent: compressed ones
    /// compressed, headers and pings included).
    wire_bytes_per_delivery: f64,
    /// Fan-out: the load's count of deliveries after the run (`None`: not fan-out, or the
    /// load did not report it).
    check: Option<Check>,
}

impl Sample {
    /// ` | lagged: ...` when the server skipped frames or broadcasts were lost, else "".
    fn losses(&self) -> String {
        if self.lagged == 0 && self.lost_broadcasts == 0 {
            return String::new();
        }
        format!(
            " | lagged: {} frames skipped by the server, {} broadcasts never reached every member",
            self.lagged, self.lost_broadcasts
        )
    }
}

/// The fan-out load's check after its measured window (its `check` line): over the whole
/// run, what every member got against what the publisher sent.
#[derive(Clone, Copy, Debug)]
struct Check {
    sent: u64,
    delivered: u64,
    expected: u64,
    sequence_errors: u64,
    members_incomplete: u64,
}

impl Check {
    /// ` | deliveries: ...` for a run's line on stderr.
    fn summary(&self) -> String {
        format!(
            " | deliveries: {} of {} sent x members ({} frames), {} out of sequence, {} members short{}",
            self.delivered,
            self.expected,
            self.sent,
            self.sequence_errors,
            self.members_incomplete,
            if self.exact() { ", exactly once" } else { ", NOT exactly once" }
        )
    }

    /// Every member got every frame sent, exactly once and in order.
    fn exact(&self) -> bool {
        self.delivered == self.expected && self.sequence_errors == 0 && self.members_incomplete == 0
    }
}

/// What one memory run measured.
#[derive(Clone, Copy)]
struct MemorySample {
    before_kib: f64,
    after_kib: f64,
    bytes_per_connection: f64,
}

/// How children are started: pinned with `taskset`, with the file limit raised by
/// `prlimit`, when those tools exist.
pub(crate) struct Launcher {
    /// `taskset` exists: servers go to CPU 0, load generators to CPU 1.
    pub(crate) pinned: bool,
    /// The soft file limit given to every child (the hard limit), when `prlimit` exists.
    pub(crate) open_files: Option<u64>,
    /// The most files a child may open: `open_files`, or this process's soft limit.
    pub(crate) max_open_files: u64,
    /// `bench/node`, holding `server.js`.
    node_dir: PathBuf,
    /// The example server, once built (the `relay` implementation).
    relay_server: Option<PathBuf>,
}

pub(crate) fn main(args: &Args) -> Result<(), BoxError> {
    let runs: usize = args.num_or("runs", 5)?;
    let seconds: f64 = args.num_or("seconds", 10.0)?;
    if runs == 0 || !seconds.is_finite() || seconds <= 0.0 {
        return Err("need --runs > 0 and --seconds > 0".into());
    }
    let only = args.str_or("only", "");
    let mut impls = Vec::new();
    for name in args.str_or("impls", &ALL_IMPLS.join(",")).split(',').map(str::trim).filter(|n| !n.is_empty())
    {
        let known = ALL_IMPLS.iter().find(|i| **i == name).ok_or_else(|| format!("unknown impl {name}"))?;
        if !impls.contains(known) {
            impls.push(*known);
        }
    }
    impls.sort_by_key(|i| ALL_IMPLS.iter().position(|a| a == i));
    let scenarios: Vec<&Scenario> = SCENARIOS.iter().filter(|s| s.label.contains(only.as_str())).collect();
    if scenarios.is_empty() || impls.is_empty() {
        return Err(format!("no scenario label contains {only:?}, or no impl chosen").into());
    }

    let mut launcher = Launcher::new();
    launcher.describe();
    if impls.iter().any(|i| ["node", "socketio"].contains(i)) {
        match prepare_node(&launcher.node_dir) {
            Ok(version) => println!("node: {version}, ws and socket.io from bench/node/node_modules"),
            Err(why) => {
                println!("node and socketio: skipped ({why})");
                impls.retain(|i| !["node", "socketio"].contains(i));
            }
        }
    }
    if impls.contains(&"socketioxide") {
        match socketio::build_socketioxide() {
            Ok(()) => println!("socketioxide: 0.18.9 (axum 0.8), built from bench/socketioxide"),
            Err(why) => {
                println!("socketioxide: skipped ({why})");
                impls.retain(|i| *i != "socketioxide");
            }
        }
    }
    if impls.contains(&"relay") && scenarios.iter().any(|s| serves("relay", s.kind)) {
        match relay::prepare() {
            Ok(server) => launcher.relay_server = Some(server),
            Err(why) => {
                println!("relay: skipped ({why})");
                impls.retain(|i| *i != "relay");
            }
        }
    }
    let ticks = clock_ticks();
    let relay_note = if impls.contains(&"relay") {
        ", except relay (the example server as shipped: multi-threaded runtime, on CPU 0 like the others)"
    } else {
        ""
    };
    println!(
        "runs: {runs} x {seconds} s (median shown); Rust servers: one tokio worker (current-thread runtime){relay_note}"
    );

    let mut throughput_rows = Vec::new();
    let mut memory_rows = Vec::new();
    let mut cross_node_rows = Vec::new();
    for scenario in scenarios {
        let needed = scenario.connections as u64 + SPARE_FILES;
        if needed > launcher.max_open_files {
            println!(
                "skipped: {} (needs {needed} open files, the limit is {})",
                scenario.label, launcher.max_open_files
            );
            continue;
        }
        if scenario.kind == Kind::CrossNode {
            if !impls.contains(&"ours") {
                println!("skipped: {} (ours only, and --impls leaves ours out)", scenario.label);
            } else if let Some(row) = cross_node::scenario(&launcher, scenario, runs, seconds, ticks) {
                cross_node_rows.push(row);
            }
        } else if scenario.kind == Kind::Memory {
            let impls = scenario_impls(&impls, scenario);
            let mut samples: Vec<Vec<MemorySample>> = vec![Vec::new(); impls.len()];
            for run in 0..runs {
                for (index, implementation) in impls.iter().enumerate() {
                    match memory_run(&launcher, scenario, implementation) {
                        Ok(sample) => {
                            eprintln!(
                                "{} | {implementation} | run {} | RSS {:.1} -> {:.1} MiB | {:.0} bytes/connection",
                                scenario.label,
                                run + 1,
                                sample.before_kib / 1024.0,
                                sample.after_kib / 1024.0,
                                sample.bytes_per_connection
                            );
                            samples[index].push(sample);
                        }
                        Err(error) => eprintln!(
                            "{} | {implementation} | run {} | failed: {error}",
                            scenario.label,
                            run + 1
                        ),
                    }
                }
            }
            let medians = samples.iter().map(|s| median_memory(s));
            memory_rows.push((scenario, impls.iter().copied().zip(medians).collect::<Vec<_>>()));
        } else {
            let impls = scenario_impls(&impls, scenario);
            let samples = throughput_runs(&launcher, scenario, &impls, runs, seconds, ticks);
            let medians = samples.iter().map(|s| median_sample(s));
            throughput_rows.push((scenario, impls.iter().copied().zip(medians).collect::<Vec<_>>()));
        }
    }
    if !throughput_rows.is_empty() {
        print_throughput(&throughput_rows);
    }
    if !memory_rows.is_empty() {
        print_memory(&memory_rows);
    }
    if !cross_node_rows.is_empty() {
        cross_node::print(&cross_node_rows);
    }
    if only.is_empty() {
        let (runs, seconds) = (runs.to_string(), seconds.to_string());
        run_child_driver("router scenarios", &["features", "run", "--runs", &runs, "--seconds", &seconds])?;
        run_child_driver("session resume", &["resume", "run", "--runs", &runs])?;
    }
    Ok(())
}

/// The implementations of `impls` that have a server for `scenario`, in table order: for
/// the compression rows, those that can compress (ours, the relay, Node `ws`).
fn scenario_impls<'a>(impls: &[&'a str], scenario: &Scenario) -> Vec<&'a str> {
    impls
        .iter()
        .copied()
        .filter(|implementation| serves(implementation, scenario.kind))
        .filter(|implementation| !scenario.deflate || COMPRESSING_IMPLS.contains(implementation))
        .collect()
}

/// The implementations that negotiate permessage-deflate.
const COMPRESSING_IMPLS: [&str; 3] = ["ours", "relay", "node"];

/// What a scenario adds to the server's command line (Node `ws`: compression on).
fn server_extra(scenario: &Scenario, implementation: &str) -> Vec<String> {
    if scenario.deflate && implementation == "node" {
        vec!["--deflate".to_owned(), "1".to_owned()]
    } else {
        Vec::new()
    }
}

/// What a scenario adds to the load's command line.
fn load_extra(scenario: &Scenario) -> Vec<String> {
    let mut extra = Vec::new();
    if scenario.kind == Kind::Fanout {
        extra.extend(["--payload-size".to_owned(), scenario.payload_size.to_string()]);
    }
    if scenario.deflate {
        extra.extend(["--deflate".to_owned(), "1".to_owned()]);
    }
    extra
}

/// `runs` runs of an echo or fan-out `scenario` for each of `impls`, alternating within
/// each run; every run's figures go to stderr. The samples of each implementation, in the
/// order of `impls` (a failed run is reported and left out).
fn throughput_runs(
    launcher: &Launcher,
    scenario: &Scenario,
    impls: &[&str],
    runs: usize,
    seconds: f64,
    ticks: f64,
) -> Vec<Vec<Sample>> {
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); impls.len()];
    for run in 0..runs {
        for (index, implementation) in impls.iter().enumerate() {
            match one_run(launcher, scenario, implementation, seconds, ticks) {
                Ok(sample) => {
                    eprintln!(
                        "{} | {implementation} | run {} | {:.0}/s | {:.0}/CPU-s | CPU {:.0}% | p50 {} us | p99 {} us | {:.0} wire bytes/delivery{}{}",
                        scenario.label,
                        run + 1,
                        sample.rate,
                        sample.per_cpu_second,
                        sample.cpu_share * 100.0,
                        sample.p50_us,
                        sample.p99_us,
                        sample.wire_bytes_per_delivery,
                        sample.losses(),
                        sample.check.map(|c| c.summary()).unwrap_or_default()
                    );
                    samples[index].push(sample);
                }
                Err(error) => {
                    eprintln!("{} | {implementation} | run {} | failed: {error}", scenario.label, run + 1)
                }
            }
        }
    }
    samples
}

/// Another driver (`bench features run`: the router scenarios, ours and raw only; `bench
/// resume run`: session resume against fresh reconnects) in a child, so that one command
/// runs every scenario; it prints its own tables.
fn run_child_driver(what: &str, args: &[&str]) -> Result<(), BoxError> {
    println!();
    println!("{what} (bench {}):", args.join(" "));
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(args)
        .stdin(std::process::Stdio::null())
        .status()?;
    if status.success() { Ok(()) } else { Err(format!("bench {} failed: {status}", args.join(" ")).into()) }
}

/// A scenario's medians, by implementation, in table order.
type Row<'a, T> = (&'a Scenario, Vec<(&'a str, Option<T>)>);

fn print_throughput(rows: &[Row<'_, Sample>]) {
    println!();
    println!("| scenario | impl | rate/s | per server CPU-s | server CPU | p50 | p99 | wire B/delivery |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut notes = Vec::new();
    for (scenario, medians) in rows {
        let unit = if scenario.kind == Kind::Fanout { "deliveries" } else { "round trips" };
        for (implementation, median) in medians {
            match median {
                Some(m) => println!(
                    "| {} ({unit}) | {implementation} | {:.0} | {:.0} | {:.0}% | {} us | {} us | {} |",
                    scenario.label,
                    m.rate,
                    m.per_cpu_second,
                    m.cpu_share * 100.0,
                    m.p50_us,
                    m.p99_us,
                    if scenario.kind == Kind::Fanout {
                        format!("{:.0}", m.wire_bytes_per_delivery)
                    } else {
                        String::new()
                    }
                ),
                None => println!("| {} ({unit}) | {implementation} | failed | | | | | |", scenario.label),
            }
            if let Some(m) = median.filter(|m| m.lagged > 0 || m.lost_broadcasts > 0) {
                notes.push(format!("{} | {implementation}:{}", scenario.label, m.losses()));
            }
        }
        for (name, peer, m, other) in ratio_pairs(medians) {
            println!(
                "| {} | **{name}/{peer}** | {:.2}x | {:.2}x | | {:.2}x | {:.2}x | |",
                scenario.label,
                ratio(m.rate, other.rate),
                ratio(m.per_cpu_second, other.per_cpu_second),
                ratio(m.p50_us, other.p50_us),
                ratio(m.p99_us, other.p99_us)
            );
        }
    }
    for note in notes {
        println!("\nnote (all runs): {note}");
    }
}

/// The [`RATIOS`] whose two implementations have a median in `medians`.
fn ratio_pairs<'a, T: Copy>(
    medians: &'a [(&'a str, Option<T>)],
) -> impl Iterator<Item = (&'a str, &'a str, T, T)> {
    let find = |name: &str| medians.iter().find(|(i, _)| *i == name).and_then(|(_, m)| *m);
    RATIOS.iter().filter_map(move |(name, peer)| Some((*name, *peer, find(name)?, find(peer)?)))
}

fn print_memory(rows: &[Row<'_, MemorySample>]) {
    println!();
    println!("| scenario | impl | server RSS before | RSS after | bytes per connection |");
    println!("|---|---|---:|---:|---:|");
    for (scenario, medians) in rows {
        for (implementation, median) in medians {
            match median {
                Some(m) => println!(
                    "| {} | {implementation} | {:.1} MiB | {:.1} MiB | {:.0} |",
                    scenario.label,
                    m.before_kib / 1024.0,
                    m.after_kib / 1024.0,
                    m.bytes_per_connection
                ),
                None => println!("| {} | {implementation} | failed | | |", scenario.label),
            }
        }
        for (name, peer, m, other) in ratio_pairs(medians) {
            println!(
                "| {} | **{name}/{peer}** | | | {:.2}x |",
                scenario.label,
                ratio(m.bytes_per_connection, other.bytes_per_connection)
            );
        }
    }
}

fn ratio(ours: f64, other: f64) -> f64 {
    if other == 0.0 { f64::NAN } else { ours / other }
}

/// The median of each field over the runs; `None` when every run failed.
fn median_sample(samples: &[Sample]) -> Option<Sample> {
    if samples.is_empty() {
        return None;
    }
    let of = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    Some(Sample {
        rate: of(|s| s.rate),
        per_cpu_second: of(|s| s.per_cpu_second),
        cpu_share: of(|s| s.cpu_share),
        p50_us: of(|s| s.p50_us),
        p99_us: of(|s| s.p99_us),
        lagged: samples.iter().map(|s| s.lagged).sum(),
        lost_broadcasts: samples.iter().map(|s| s.lost_broadcasts).sum(),
        wire_bytes_per_delivery: of(|s| s.wire_bytes_per_delivery),
        // Per run, not a median: see the runs' lines on stderr.
        check: None,
    })
}

/// The median of each field over the runs; `None` when every run failed.
fn median_memory(samples: &[MemorySample]) -> Option<MemorySample> {
    if samples.is_empty() {
        return None;
    }
    let of = |f: fn(&MemorySample) -> f64| median(samples.iter().map(f).collect());
    Some(MemorySample {
        before_kib: of(|s| s.before_kib),
        after_kib: of(|s| s.after_kib),
        bytes_per_connection: of(|s| s.bytes_per_connection),
    })
}

impl Launcher {
    /// Says how children are pinned and what file limit they get.
    fn describe(&self) {
        if self.pinned {
            println!("pinning: server on CPU 0, load generator on CPU 1 (taskset)");
        } else {
            println!("pinning: taskset not installed, server and load generator NOT pinned");
        }
        match self.open_files {
            Some(limit) => println!("open files: soft limit {limit} for every child (prlimit)"),
            None => {
                println!("open files: prlimit not installed, children keep the limit {}", self.max_open_files)
            }
        }
    }

    pub(crate) fn new() -> Self {
        let works = |program: &str, arg: &str| {
            Command::new(program)
                .arg(arg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        let pinned = works("taskset", "-V");
        let (soft, hard) = open_file_limits().unwrap_or((1024, 1024));
        let open_files = works("prlimit", "--version").then_some(hard);
        Self {
            pinned,
            open_files,
            max_open_files: open_files.unwrap_or(soft),
            node_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("node"),
            relay_server: None,
        }
    }

    /// Starts `program args` on `cpu`, its stdout piped to this process.
    ///
    /// `prlimit` and `taskset` both exec the program, so the child's pid is the program's.
    pub(crate) fn spawn(
        &self,
        cpu: u32,
        program: impl Into<OsString>,
        args: &[String],
    ) -> Result<Killed, BoxError> {
        let mut argv: Vec<OsString> = Vec::new();
        if let Some(limit) = self.open_files {
            argv.extend(["prlimit".into(), format!("--nofile={limit}:{limit}").into(), "--".into()]);
        }
        if self.pinned {
            argv.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
        }
        argv.push(program.into());
        argv.extend(args.iter().map(OsString::from));
        let (program, rest) = argv.split_first().ok_or("empty command")?;
        let child = Command::new(program)
            .args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Killed(child))
    }

    /// Starts the server `implementation` for `kind` on CPU 0, with `extra` arguments
    /// (`bench serve` only).
    fn spawn_server(&self, implementation: &str, kind: Kind, extra: &[String]) -> Result<Killed, BoxError> {
        let listen = ["--scenario", kind.name(), "--listen", "127.0.0.1:0"].map(str::to_owned);
        if implementation == "node" || implementation == "socketio" {
            let script = if implementation == "node" { "server.js" } else { "socketio.js" };
            let script = self
                .node_dir
                .join(script)
                .into_os_string()
                .into_string()
                .map_err(|_| "bench path not UTF-8")?;
            let mut args = vec![script];
            args.extend(listen);
            args.extend_from_slice(extra);
            self.spawn(0, "node", &args)
        } else if implementation == "relay" {
            let server = self.relay_server.as_deref().ok_or("the example server was not built")?;
            let argv = relay::command(server);
            let (program, args) = argv.split_first().ok_or("empty command")?;
            self.spawn(0, program, args)
        } else if implementation == "socketioxide" {
            self.spawn(0, socketio::socketioxide_binary(), &listen)
        } else {
            let mut args = vec!["serve".to_owned(), "--impl".to_owned(), implementation.to_owned()];
            args.extend(listen);
            args.extend_from_slice(extra);
            self.spawn(0, std::env::current_exe()?, &args)
        }
    }

    /// Starts `bench load` with `args` on CPU 1.
    fn spawn_load(&self, args: &[String]) -> Result<Killed, BoxError> {
        let mut argv = vec!["load".to_owned()];
        argv.extend_from_slice(args);
        self.spawn(1, std::env::current_exe()?, &argv)
    }
}

/// Checks for `node` and installs `ws` and `socket.io` in `dir` when missing; the node version, or why the
/// node impl cannot run.
fn prepare_node(dir: &Path) -> Result<String, String> {
    let version = match Command::new("node").arg("--version").stderr(Stdio::null()).output() {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        _ => return Err("`node` is not installed".to_owned()),
    };
    if ["ws", "socket.io"].iter().all(|module| dir.join("node_modules").join(module).is_dir()) {
        return Ok(version);
    }
    println!("node: bench/node/node_modules is missing, running `npm install --no-audit --no-fund` there");
    let child = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        // npm's report goes to stderr with the progress lines, not into the tables.
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    finish_within(Killed(child), NPM_DEADLINE, "npm install").map(|()| version)
}

/// Starts the server (with `extra` arguments for `bench serve`) and waits for its
/// `listening on ws://ADDR` line: the server, its pid and its URL.
fn start_server(
    launcher: &Launcher,
    implementation: &str,
    kind: Kind,
    extra: &[String],
) -> Result<(Killed, u32, String), BoxError> {
    let (server, pid, url, _) = start_server_with_lines(launcher, implementation, kind, extra)?;
    Ok((server, pid, url))
}

/// [`start_server`], and the server's later stdout lines.
fn start_server_with_lines(
    launcher: &Launcher,
    implementation: &str,
    kind: Kind,
    extra: &[String],
) -> Result<(Killed, u32, String, std::sync::mpsc::Receiver<String>), BoxError> {
    let mut server = launcher.spawn_server(implementation, kind, extra)?;
    let pid = server.pid();
    let server_lines = lines(&mut server)?;
    let line = wait_for(&server_lines, ANNOUNCE_DEADLINE, "the server's address", |l| {
        l.starts_with("listening on ")
    })?;
    let url = line.trim_start_matches("listening on ").trim().to_owned();
    Ok((server, pid, url, server_lines))
}

fn one_run(
    launcher: &Launcher,
    scenario: &Scenario,
    implementation: &str,
    seconds: f64,
    ticks: f64,
) -> Result<Sample, BoxError> {
    let (server, server_pid, url, server_lines) = start_server_with_lines(
        launcher,
        implementation,
        scenario.kind,
        &server_extra(scenario, implementation),
    )?;
    let mut extra = socketio::load_args(implementation);
    extra.extend(load_extra(scenario));
    let measured = measure(launcher, scenario, &url, &extra, &[server_pid], seconds, ticks)?;
    // `bcast` prints `lagged TOTAL` whenever its total of skipped frames changed.
    let lagged = server_lines
        .try_iter()
        .filter_map(|line| line.strip_prefix("lagged ").and_then(|total| total.trim().parse().ok()))
        .last()
        .unwrap_or(0);
    drop(server);
    let cpu_seconds = measured.cpu_seconds[0];
    Ok(Sample {
        rate: measured.number("rate"),
        per_cpu_second: per_cpu_second(measured.number("count"), cpu_seconds),
        cpu_share: cpu_seconds / measured.wall,
        p50_us: measured.latency_us("p50_us"),
        p99_us: measured.latency_us("p99_us"),
        lagged,
        lost_broadcasts: measured.number("broadcasts_lost") as u64,
        wire_bytes_per_delivery: measured.number("wire_bytes_per_delivery"),
        check: measured.check,
    })
}

/// Messages per CPU-second; NaN when no CPU time was counted.
fn per_cpu_second(count: f64, cpu_seconds: f64) -> f64 {
    if cpu_seconds > 0.0 { count / cpu_seconds } else { f64::NAN }
}

/// What one echo or fan-out load reported, and the CPU time the watched processes used in
/// its measured window.
struct Measured {
    /// The load's JSON result line.
    result: serde_json::Value,
    /// CPU seconds of each watched process over the window, in the order given.
    cpu_seconds: Vec<f64>,
    /// The window as this process saw it, in seconds.
    wall: f64,
    /// Fan-out: the load's delivery check.
    check: Option<Check>,
}

impl Measured {
    /// A number of the load's result, 0 when missing.
    fn number(&self, key: &str) -> f64 {
        self.result.get(key).and_then(serde_json::Value::as_f64).unwrap_or(0.0)
    }

    /// A latency quantile of the load's result; NaN (left out of the medians) for a fan-out
    /// window in which no broadcast completed (socket.io at 10,000 members and 32 in
    /// flight takes longer than a 5 s window per broadcast), whose histogram is empty.
    fn latency_us(&self, key: &str) -> f64 {
        let fanout = self.result.get("scenario").and_then(serde_json::Value::as_str) == Some("fanout");
        if fanout && self.number("broadcasts") == 0.0 { f64::NAN } else { self.number(key) }
    }
}

/// Runs `bench load` for `scenario` against `url` (with `extra` arguments) and reads the
/// CPU time of the processes `pids` around its measured window.
fn measure(
    launcher: &Launcher,
    scenario: &Scenario,
    url: &str,
    extra: &[String],
    pids: &[u32],
    seconds: f64,
    ticks: f64,
) -> Result<Measured, BoxError> {
    let mut args: Vec<String> = [
        "--scenario",
        scenario.kind.name(),
        "--url",
        url,
        "--connections",
        &scenario.connections.to_string(),
        "--in-flight",
        &scenario.in_flight.to_string(),
        "--seconds",
        &seconds.to_string(),
    ]
    .map(str::to_owned)
    .to_vec();
    if let Kind::Echo { payload } = scenario.kind {
        args.extend(["--payload".to_owned(), payload.to_owned()]);
    }
    args.extend_from_slice(extra);
    let mut load = launcher.spawn_load(&args)?;
    let load_lines = lines(&mut load)?;
    // Connecting, registering the members and the 1 s warm-up.
    let warm_up = connect_deadline(scenario.connections) + Duration::from_secs(30);
    wait_for(&load_lines, warm_up, "the load's warm-up", |l| l == "measuring")?;
    let cpu_before = pids.iter().map(|pid| cpu_ticks(*pid)).collect::<Result<Vec<_>, _>>()?;
    let wall_before = Instant::now();
    let result = wait_for(&load_lines, Duration::from_secs_f64(seconds + 30.0), "the load's result", |l| {
        l.starts_with('{')
    })?;
    let cpu_after = pids.iter().map(|pid| cpu_ticks(*pid)).collect::<Result<Vec<_>, _>>()?;
    let wall = wall_before.elapsed().as_secs_f64();
    // After the window (its CPU time is not counted): the load drains and checks.
    let check = if scenario.kind == Kind::Fanout || scenario.kind == Kind::CrossNode {
        read_check(&load_lines)
    } else {
        None
    };
    drop(load);
    let result: serde_json::Value = serde_json::from_str(&result)?;
    let measured = Measured {
        result,
        cpu_seconds: cpu_before
            .iter()
            .zip(&cpu_after)
            .map(|(before, after)| (after - before) / ticks)
            .collect(),
        wall,
        check,
    };
    if measured.number("lost_connections") > 0.0 {
        eprintln!("warning: {} client connections ended during the run", measured.number("lost_connections"));
    }
    Ok(measured)
}

/// The fan-out load's `check` line, if it comes in time; warns unless every member got
/// every frame exactly once.
fn read_check(load_lines: &std::sync::mpsc::Receiver<String>) -> Option<Check> {
    // The load's drain bound (10 s) and a margin.
    let line = match wait_for(load_lines, Duration::from_secs(15), "the load's check", |l| {
        l.starts_with("check ")
    }) {
        Ok(line) => line,
        Err(error) => {
            eprintln!("warning: no delivery check: {error}");
            return None;
        }
    };
    let value: serde_json::Value = serde_json::from_str(line.trim_start_matches("check ")).ok()?;
    let number = |key: &str| value.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let check = Check {
        sent: number("sent"),
        delivered: number("delivered"),
        expected: number("expected"),
        sequence_errors: number("sequence_errors"),
        members_incomplete: number("members_incomplete"),
    };
    if !check.exact() {
        eprintln!("warning: deliveries not exactly once: {check:?}");
    }
    Some(check)
}

/// The memory scenario, once: the server's RSS growth per idle connection.
fn memory_run(
    launcher: &Launcher,
    scenario: &Scenario,
    implementation: &str,
) -> Result<MemorySample, BoxError> {
    let (server, server_pid, url) =
        start_server(launcher, implementation, scenario.kind, &server_extra(scenario, implementation))?;
    std::thread::sleep(MEMORY_START_SETTLE);
    let before_kib = resident_kib(server_pid)?;
    let connections = scenario.connections.to_string();
    let per_view = scenario.per_view.to_string();
    // Only ours serves the views router, so only ours answers the `open` frames.
    let await_state = if implementation == "ours" { "1" } else { "0" };
    let mut args = [
        "--scenario",
        "memory",
        "--url",
        &url,
        "--connections",
        &connections,
        "--per-view",
        &per_view,
        "--await-state",
        await_state,
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(socketio::load_args(implementation));
    args.extend(load_extra(scenario));
    let mut load = launcher.spawn_load(&args)?;
    let load_lines = lines(&mut load)?;
    let connect = connect_deadline(scenario.connections).saturating_mul(2) + Duration::from_secs(10);
    wait_for(&load_lines, connect, "the load's connections", |l| l.starts_with("connected "))?;
    let after_kib = settled_resident_kib(server_pid)?;
    // A check that the server holds every connection.
    let open = open_files(server_pid).ok();
    drop(load);
    drop(server);
    if let Some(open) = open.filter(|open| *open < scenario.connections) {
        eprintln!("warning: the server held only {open} open files for {} connections", scenario.connections);
    }
    Ok(MemorySample {
        before_kib,
        after_kib,
        bytes_per_connection: (after_kib - before_kib) * 1024.0 / scenario.connections as f64,
    })
}

/// The process's RSS once it stopped moving (by at most [`MEMORY_STABLE_KIB`] over
/// [`MEMORY_STABLE_FOR`]), or the last reading after [`MEMORY_SETTLE_BOUND`].
pub(crate) fn settled_resident_kib(pid: u32) -> Result<f64, BoxError> {
    let start = Instant::now();
    let window = (MEMORY_STABLE_FOR.as_millis() / MEMORY_POLL.as_millis()).max(1) as usize;
    let mut readings = vec![resident_kib(pid)?];
    while start.elapsed() < MEMORY_SETTLE_BOUND {
        std::thread::sleep(MEMORY_POLL);
        readings.push(resident_kib(pid)?);
        if readings.len() > window {
            let recent = &readings[readings.len() - window - 1..];
            let (low, high) = recent.iter().fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
            if high - low <= MEMORY_STABLE_KIB as f64 {
                break;
            }
        }
    }
    readings.last().copied().ok_or_else(|| "no RSS reading".into())
}
