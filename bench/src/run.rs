//! `bench run`: the driver. For each scenario and each implementation in the same run it
//! starts `bench serve` pinned to CPU 0 and `bench load` pinned to CPU 1, reads the
//! server's CPU time (utime + stime from `/proc/PID/stat`) around the measured window, and
//! prints the medians of the runs as a Markdown table.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::{Args, BoxError};

/// One scenario of the table.
struct Scenario {
    label: &'static str,
    name: &'static str,
    connections: usize,
    in_flight: usize,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        label: "echo, 100 connections, 1 in flight each",
        name: "echo",
        connections: 100,
        in_flight: 1,
    },
    Scenario {
        label: "fan-out, 1,000 members, 32 in flight",
        name: "fanout",
        connections: 1000,
        in_flight: 32,
    },
    Scenario {
        label: "fan-out, 1,000 members, 1 in flight",
        name: "fanout",
        connections: 1000,
        in_flight: 1,
    },
];

const IMPLS: [&str; 2] = ["raw", "ours"];

/// What one run measured.
#[derive(Clone, Copy)]
struct Sample {
    rate: f64,
    per_cpu_second: f64,
    cpu_share: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Kills the child (one this driver started) when dropped, on every path.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn main(args: &Args) -> Result<(), BoxError> {
    let runs: usize = args.num_or("runs", 5)?;
    let seconds: f64 = args.num_or("seconds", 10.0)?;
    if runs == 0 || !seconds.is_finite() || seconds <= 0.0 {
        return Err("need --runs > 0 and --seconds > 0".into());
    }
    let pinned = Command::new("taskset").arg("-V").output().map(|o| o.status.success()).unwrap_or(false);
    if pinned {
        println!("pinning: server on CPU 0, load generator on CPU 1 (taskset)");
    } else {
        println!("pinning: taskset not installed, server and load generator NOT pinned");
    }
    let ticks = clock_ticks();
    println!("runs: {runs} x {seconds} s (median shown); server: one tokio worker (current-thread runtime)");
    let mut rows = Vec::new();
    for scenario in &SCENARIOS {
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); IMPLS.len()];
        for run in 0..runs {
            for (index, implementation) in IMPLS.iter().enumerate() {
                let sample = one_run(scenario, implementation, seconds, pinned, ticks)?;
                eprintln!(
                    "{} | {implementation} | run {} | {:.0}/s | {:.0}/CPU-s | CPU {:.0}% | p50 {} us | p99 {} us",
                    scenario.label,
                    run + 1,
                    sample.rate,
                    sample.per_cpu_second,
                    sample.cpu_share * 100.0,
                    sample.p50_us,
                    sample.p99_us
                );
                samples[index].push(sample);
            }
        }
        rows.push((scenario, samples.iter().map(|s| median_sample(s)).collect::<Vec<_>>()));
    }
    println!();
    println!("| scenario | impl | rate/s | per server CPU-s | server CPU | p50 | p99 |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (scenario, medians) in &rows {
        let unit = if scenario.name == "echo" { "round trips" } else { "deliveries" };
        for (implementation, m) in IMPLS.iter().zip(medians) {
            println!(
                "| {} ({unit}) | {implementation} | {:.0} | {:.0} | {:.0}% | {} us | {} us |",
                scenario.label,
                m.rate,
                m.per_cpu_second,
                m.cpu_share * 100.0,
                m.p50_us,
                m.p99_us
            );
        }
        let (raw, ours) = (medians[0], medians[1]);
        println!(
            "| {} | **ours/raw** | {:.2}x | {:.2}x | | {:.2}x | {:.2}x |",
            scenario.label,
            ratio(ours.rate, raw.rate),
            ratio(ours.per_cpu_second, raw.per_cpu_second),
            ratio(ours.p50_us, raw.p50_us),
            ratio(ours.p99_us, raw.p99_us)
        );
    }
    Ok(())
}

fn ratio(ours: f64, raw: f64) -> f64 {
    if raw == 0.0 { f64::NAN } else { ours / raw }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

fn median_sample(samples: &[Sample]) -> Sample {
    let of = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    Sample {
        rate: of(|s| s.rate),
        per_cpu_second: of(|s| s.per_cpu_second),
        cpu_share: of(|s| s.cpu_share),
        p50_us: of(|s| s.p50_us),
        p99_us: of(|s| s.p99_us),
    }
}

fn spawn(cpu: u32, pinned: bool, args: &[String]) -> Result<Killed, BoxError> {
    let exe = std::env::current_exe()?;
    let mut command = if pinned {
        let mut command = Command::new("taskset");
        command.arg("-c").arg(cpu.to_string()).arg(exe);
        command
    } else {
        Command::new(exe)
    };
    let child =
        command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
    Ok(Killed(child))
}

/// The child's stdout, line by line, through a channel (so reads can time out).
fn lines(child: &mut Killed) -> Result<mpsc::Receiver<String>, BoxError> {
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Ok(receiver)
}

fn wait_for(
    lines: &mpsc::Receiver<String>,
    timeout: Duration,
    what: &str,
    accept: impl Fn(&str) -> bool,
) -> Result<String, BoxError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if accept(&line) => return Ok(line),
            Ok(_) => {}
            Err(_) => return Err(format!("timed out or ended waiting for {what}").into()),
        }
    }
}

fn one_run(
    scenario: &Scenario,
    implementation: &str,
    seconds: f64,
    pinned: bool,
    ticks: f64,
) -> Result<Sample, BoxError> {
    let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let mut server = spawn(
        0,
        pinned,
        &owned(&["serve", "--impl", implementation, "--scenario", scenario.name, "--listen", "127.0.0.1:0"]),
    )?;
    let server_pid = server.0.id();
    let server_lines = lines(&mut server)?;
    let line = wait_for(&server_lines, Duration::from_secs(10), "the server's address", |l| {
        l.starts_with("listening on ")
    })?;
    let url = line.trim_start_matches("listening on ").trim().to_owned();
    let mut load = spawn(
        1,
        pinned,
        &owned(&[
            "load",
            "--scenario",
            scenario.name,
            "--url",
            &url,
            "--connections",
            &scenario.connections.to_string(),
            "--in-flight",
            &scenario.in_flight.to_string(),
            "--seconds",
            &seconds.to_string(),
        ]),
    )?;
    let load_lines = lines(&mut load)?;
    wait_for(&load_lines, Duration::from_secs(60), "the load's warm-up", |l| l == "measuring")?;
    let cpu_before = cpu_ticks(server_pid)?;
    let wall_before = std::time::Instant::now();
    let result = wait_for(&load_lines, Duration::from_secs_f64(seconds + 30.0), "the load's result", |l| {
        l.starts_with('{')
    })?;
    let cpu_after = cpu_ticks(server_pid)?;
    let wall = wall_before.elapsed().as_secs_f64();
    drop(load);
    drop(server);
    let value: serde_json::Value = serde_json::from_str(&result)?;
    let number = |key: &str| value.get(key).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    if number("lost_connections") > 0.0 {
        eprintln!("warning: {} client connections ended during the run", number("lost_connections"));
    }
    let cpu_seconds = (cpu_after - cpu_before) / ticks;
    let count = number("count");
    Ok(Sample {
        rate: number("rate"),
        per_cpu_second: if cpu_seconds > 0.0 { count / cpu_seconds } else { f64::NAN },
        cpu_share: cpu_seconds / wall,
        p50_us: number("p50_us"),
        p99_us: number("p99_us"),
    })
}

/// The clock ticks per second that `/proc/PID/stat` counts in (`getconf CLK_TCK`, else 100).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<f64, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').ok_or("malformed /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: f64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}
