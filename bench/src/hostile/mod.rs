//! `bench hostile`: the attacks of the "Hardening II" issue, each against a fresh server
//! process, measured from outside the process so that an old build and a new one compare.
//!
//! ```text
//! cargo run --release -p bench -- hostile --server-bin target/release/examples/server \
//!     [--attack silent,partial,burst,oversized] [--runs 3] [--server-nofile N] [--server-log FILE]
//! ```
//!
//! `--server-bin` is the example server (`examples/server.rs`) of any revision: it is started
//! as `PATH --listen 127.0.0.1:0` (plus `--echo` for every attack but `burst`, which needs
//! the relay), flags that every revision has, and it must print `listening on ws://ADDR`.
//!
//! # Method
//!
//! For each attack and run: the server is started pinned to CPU 0 (`taskset -c 0`) with its
//! soft file limit raised to this process's hard limit, or to `--server-nofile`
//! (`prlimit --nofile=N:N`), with `RUST_LOG=warn` and its stderr discarded (the example
//! logs every connection at `info`; `--server-log FILE` appends its stderr there instead,
//! at its default level, to see the close codes it chose). This process raises its own
//! soft file limit to the hard one (`prlimit --pid`) and pins itself to CPU 1. Half a second after the server
//! announces its address its `VmRSS` (`/proc/PID/status`) and open files (entries of
//! `/proc/PID/fd`) are read ("before"), then sampled every 100 ms while the attack runs
//! ("peak"), and read once more 2 s after the attack closed all its sockets ("after").
//! While the attack holds, a fresh client connects and its latency is timed from the start
//! of its TCP connect to the 101 response and to its first message: its own text frame
//! echoed, or, in `burst`, the first frame relayed to it (another client sends one as soon
//! as the fresh client is upgraded). Every phase has a deadline; the server is killed on
//! every path. The attacks (see [`attacks`]) all run on 127.0.0.1 from this process.
//!
//! Each attack prints one line per run and then one line of medians.

mod attacks;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use attacks::{Attack, Figure, Report, Unit};

use crate::child::{Killed, lines, median, open_file_limits, open_files, resident_kib, wait_for};
use crate::{Args, BoxError};

/// Deadline for the server to announce its address.
const ANNOUNCE_DEADLINE: Duration = Duration::from_secs(10);
/// Pause between the announcement and the "before" reading.
const SETTLE_BEFORE: Duration = Duration::from_millis(500);
/// Pause between the end of the attack (all its sockets closed) and the "after" reading.
const SETTLE_AFTER: Duration = Duration::from_secs(2);
/// Interval of the RSS and open-files samples.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

pub(crate) fn main(args: &Args) -> Result<(), BoxError> {
    let server_bin = args.required("server-bin")?;
    let runs: usize = args.num_or("runs", 3)?;
    if runs == 0 {
        return Err("need --runs > 0".into());
    }
    let attacks = args
        .str_or("attack", "silent,partial,burst,oversized")
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(Attack::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if attacks.is_empty() {
        return Err("no attack chosen".into());
    }

    let (soft, hard) = raise_own_file_limit();
    let launcher = Launcher {
        server_bin: server_bin.clone().into(),
        pinned: works("taskset", "-V"),
        nofile: works("prlimit", "--version").then_some(args.num_or("server-nofile", hard)?),
        log: Some(args.str_or("server-log", "")).filter(|path| !path.is_empty()).map(Into::into),
    };
    println!("server: {server_bin}");
    if launcher.pinned {
        pin_self(1);
        println!("pinning: server on CPU 0, attacker on CPU 1 (taskset)");
    } else {
        println!("pinning: taskset not installed, server and attacker NOT pinned");
    }
    match launcher.nofile {
        Some(limit) => println!("open files: server {limit} (prlimit), attacker soft {soft} hard {hard}"),
        None => println!("open files: prlimit not installed, server inherits soft {soft}"),
    }
    println!("runs: {runs} (median shown); RSS in MiB; fds = entries of /proc/PID/fd");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    for attack in attacks {
        println!("{}: {}", attack.name(), attack.description());
        let mut samples = Vec::new();
        for run in 1..=runs {
            match one_run(&launcher, &runtime, attack) {
                Ok(measured) => {
                    println!("  run {run}/{runs}: {}", measured.line());
                    samples.push(measured);
                }
                Err(error) => println!("  run {run}/{runs}: failed: {error}"),
            }
        }
        match Measured::median(&samples) {
            Some(medians) => println!("{} median of {}: {}", attack.name(), samples.len(), medians.line()),
            None => println!("{}: no run completed", attack.name()),
        }
    }
    Ok(())
}

/// What one run measured.
#[derive(Clone)]
struct Measured {
    /// `VmRSS` of the server in KiB: before the attack, its peak during it, after it.
    rss_kib: [f64; 3],
    /// Open files of the server: before, peak, after.
    fds: [f64; 3],
    /// The fresh client: milliseconds from its TCP connect to the 101 response and to its
    /// first message; NaN when it did not get there.
    probe_ms: [f64; 2],
    /// Why the fresh client did not get its message (per run), or how many runs it failed
    /// in (medians).
    probe_failure: String,
    /// The attack's own figures.
    outcome: Vec<Figure>,
    /// Seconds from the start of the attack to its end (every socket closed).
    wall_s: f64,
}

impl Measured {
    fn line(&self) -> String {
        let mib = |kib: f64| kib / 1024.0;
        let ms = |value: f64| if value.is_nan() { "-".to_owned() } else { format!("{value:.1} ms") };
        let mut line = format!(
            "RSS {:.1} / {:.1} / {:.1} MiB (before/peak/after), fds {:.0} / {:.0} / {:.0}, \
             fresh client: 101 {}, first message {}",
            mib(self.rss_kib[0]),
            mib(self.rss_kib[1]),
            mib(self.rss_kib[2]),
            self.fds[0],
            self.fds[1],
            self.fds[2],
            ms(self.probe_ms[0]),
            ms(self.probe_ms[1]),
        );
        if !self.probe_failure.is_empty() {
            line.push_str(&format!(" ({})", self.probe_failure));
        }
        for figure in &self.outcome {
            line.push_str(&format!("; {}", figure.show()));
        }
        line.push_str(&format!("; attack took {:.1} s", self.wall_s));
        line
    }

    /// The median of each figure over `samples` (a count missing from a run counts 0).
    fn median(samples: &[Measured]) -> Option<Measured> {
        if samples.is_empty() {
            return None;
        }
        let of = |pick: &dyn Fn(&Measured) -> f64| median(samples.iter().map(pick).collect());
        let mut labels: Vec<(String, Unit)> = Vec::new();
        for figure in samples.iter().flat_map(|s| &s.outcome) {
            if !labels.iter().any(|(label, _)| *label == figure.label) {
                labels.push((figure.label.clone(), figure.unit));
            }
        }
        let outcome = labels
            .into_iter()
            .map(|(label, unit)| {
                let values = samples
                    .iter()
                    .map(|s| {
                        s.outcome
                            .iter()
                            .find(|f| f.label == label)
                            .map_or(if unit == Unit::Count { 0.0 } else { f64::NAN }, |f| f.value)
                    })
                    .collect();
                Figure { label, value: median(values), unit }
            })
            .collect();
        let failed = samples.iter().filter(|s| !s.probe_failure.is_empty()).count();
        Some(Measured {
            rss_kib: [0, 1, 2].map(|i| of(&|s| s.rss_kib[i])),
            fds: [0, 1, 2].map(|i| of(&|s| s.fds[i])),
            probe_ms: [0, 1].map(|i| of(&|s| s.probe_ms[i])),
            probe_failure: if failed == 0 {
                String::new()
            } else {
                format!("fresh client failed in {failed} of {} runs", samples.len())
            },
            outcome,
            wall_s: of(&|s| s.wall_s),
        })
    }
}

/// How the server is started.
struct Launcher {
    server_bin: OsString,
    /// `taskset` exists: the server goes to CPU 0.
    pinned: bool,
    /// The server's file limit (soft and hard), when `prlimit` exists.
    nofile: Option<u64>,
    /// `--server-log`: the server's stderr is appended there, at its default log level.
    log: Option<std::path::PathBuf>,
}

impl Launcher {
    /// Starts the server with `extra` flags and waits for its address: the server, its pid
    /// and its address. `prlimit` and `taskset` exec the program, so the pid is the server's.
    fn start(&self, extra: &[&str]) -> Result<(Killed, u32, SocketAddr), BoxError> {
        let mut argv: Vec<OsString> = Vec::new();
        if let Some(limit) = self.nofile {
            argv.extend(["prlimit".into(), format!("--nofile={limit}:{limit}").into(), "--".into()]);
        }
        if self.pinned {
            argv.extend(["taskset".into(), "-c".into(), "0".into()]);
        }
        argv.push(self.server_bin.clone());
        argv.extend(["--listen", "127.0.0.1:0"].into_iter().chain(extra.iter().copied()).map(OsString::from));
        let (program, rest) = argv.split_first().ok_or("empty command")?;
        let mut command = Command::new(program);
        command.args(rest).stdin(Stdio::null()).stdout(Stdio::piped());
        match &self.log {
            Some(path) => {
                command.stderr(std::fs::OpenOptions::new().create(true).append(true).open(path)?);
            }
            None => {
                command.env("RUST_LOG", "warn").stderr(Stdio::null());
            }
        }
        let child = command.spawn()?;
        let mut server = Killed(child);
        let pid = server.pid();
        let server_lines = lines(&mut server)?;
        let line = wait_for(&server_lines, ANNOUNCE_DEADLINE, "the server's address", |l| {
            l.starts_with("listening on ws://")
        })?;
        let addr = line.trim_start_matches("listening on ws://").trim().parse()?;
        Ok((server, pid, addr))
    }
}

fn one_run(
    launcher: &Launcher,
    runtime: &tokio::runtime::Runtime,
    attack: Attack,
) -> Result<Measured, BoxError> {
    let (mut server, pid, addr) = launcher.start(attack.server_flags())?;
    std::thread::sleep(SETTLE_BEFORE);
    let before = (resident_kib(pid)?, open_files(pid)? as f64);
    let sampler = Sampler::start(pid);
    let started = Instant::now();
    let report: Result<Report, BoxError> = runtime.block_on(attacks::run(attack, addr));
    let wall_s = started.elapsed().as_secs_f64();
    std::thread::sleep(SETTLE_AFTER);
    let samples = sampler.finish();
    let mut report = report?;
    let after = match server.0.try_wait()? {
        None => (resident_kib(pid)?, open_files(pid)? as f64),
        Some(status) => {
            report.outcome.push(Figure::count(format!("server exited ({status})"), 1));
            (f64::NAN, f64::NAN)
        }
    };
    drop(server);
    let peak = |pick: fn(&(f64, f64)) -> f64| samples.iter().map(pick).fold(f64::NAN, f64::max);
    let probe = report.probe;
    Ok(Measured {
        rss_kib: [before.0, peak(|s| s.0).max(before.0), after.0],
        fds: [before.1, peak(|s| s.1).max(before.1), after.1],
        probe_ms: [probe.upgraded, probe.first_message]
            .map(|d| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)),
        probe_failure: probe.failure.unwrap_or_default(),
        outcome: report.outcome,
        wall_s,
    })
}

/// A thread reading the server's RSS and open files every [`SAMPLE_EVERY`].
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(f64, f64)>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, samples) = (stop.clone(), samples.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Both readings fail once the server is gone; the run notices that itself.
                    if let (Ok(rss), Ok(fds)) = (resident_kib(pid), open_files(pid).map(|n| n as f64)) {
                        samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((rss, fds));
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
        };
        Self { stop, samples, thread }
    }

    /// Stops the thread; the samples, `(RSS KiB, open files)`.
    fn finish(self) -> Vec<(f64, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Whether `program arg` runs and succeeds.
fn works(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Raises this process's soft file limit to its hard limit with `prlimit --pid` (the
/// attacks hold thousands of sockets); the limits afterwards.
fn raise_own_file_limit() -> (u64, u64) {
    let Some((soft, hard)) = open_file_limits() else { return (1024, 1024) };
    if soft < hard {
        let _ = Command::new("prlimit")
            .args(["--pid", &std::process::id().to_string(), &format!("--nofile={hard}:{hard}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    open_file_limits().unwrap_or((soft, hard))
}

/// Pins every thread of this process to `cpu` (threads started later inherit it).
fn pin_self(cpu: u32) {
    let _ = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &std::process::id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
