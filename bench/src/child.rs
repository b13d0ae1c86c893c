//! The child processes of the drivers (`bench run`, `bench features run`): killed on every
//! path, their stdout read line by line with deadlines, their CPU time read from `/proc`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::BoxError;

/// A child a driver started, killed (SIGKILL) and reaped when dropped, on every path.
pub(crate) struct Killed(pub(crate) Child);

impl Killed {
    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `child` (a build or an install, `what`) exits, at most `limit`: `Ok` when it
/// succeeded, else why not (the child is killed when the limit passes).
pub(crate) fn finish_within(mut child: Killed, limit: Duration, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        match child.0.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{what} failed: {status}")),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Ok(None) => return Err(format!("{what} took longer than {} s", limit.as_secs())),
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
}

/// The child's stdout, line by line, through a channel (so that reads can time out).
pub(crate) fn lines(child: &mut Killed) -> Result<mpsc::Receiver<String>, BoxError> {
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    // Unbounded, but bounded in practice: a child prints a handful of lines per run, and
    // the thread ends with the child's stdout.
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

/// Waits until a line that `accept` takes, at most `limit`; other lines are skipped.
pub(crate) fn wait_for(
    lines: &mpsc::Receiver<String>,
    limit: Duration,
    what: &str,
    accept: impl Fn(&str) -> bool,
) -> Result<String, BoxError> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if accept(&line) => return Ok(line),
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!("timed out waiting for {what}").into());
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!("the child ended while we waited for {what}").into());
            }
        }
    }
}

/// The median, NaNs left out; NaN for no values.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|value| !value.is_nan());
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The clock ticks per second that `/proc/PID/stat` counts in (`getconf CLK_TCK`, else 100).
pub(crate) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of process `pid` (all its threads), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Result<f64, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it start with the state
    // (field 3), so utime and stime (fields 14 and 15) are at 11 and 12 from there.
    let after = stat.rsplit_once(')').ok_or("malformed /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: f64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}

/// `VmRSS` of process `pid`, in KiB.
pub(crate) fn resident_kib(pid: u32) -> Result<f64, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS in /proc status")?;
    Ok(line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse()?)
}

/// How many files process `pid` has open.
pub(crate) fn open_files(pid: u32) -> Result<usize, BoxError> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// This process's soft and hard limits of open files, from `/proc/self/limits`.
pub(crate) fn open_file_limits() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line.trim_start_matches("Max open files").split_whitespace();
    // "unlimited" cannot be a file limit (the kernel caps it at fs.nr_open, 1,048,576 by
    // default), so it counts as that.
    let parse = |field: Option<&str>| field.map(|f| f.parse().unwrap_or(1 << 20));
    Some((parse(fields.next())?, parse(fields.next())?))
}

/// How long the main thread of process `pid` (the server's only tokio worker) was ready to
/// run but waited for its CPU, in seconds (field 2 of `/proc/PID/schedstat`). On a machine
/// shared with other work this shows how much of a run was lost to other processes: a run's
/// CPU shares mean "not saturated" only when this stays near 0.
pub(crate) fn waiting_seconds(pid: u32) -> Result<f64, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))?;
    let waited: f64 = stat.split_whitespace().nth(1).ok_or("malformed /proc schedstat")?.parse()?;
    Ok(waited / 1e9)
}
