//! The cross-node fan-out: the fan-out load of the single-node scenario (1,000 members,
//! 64-byte frames, 32 in flight) against two `bench serve --impl ours` nodes in one cluster
//! on a `redis-server` started here, and, in the same run, against one node with no
//! cluster (the baseline). Each run starts with the baseline, then each two-node setup.
//!
//! - **Redis**: `redis-server` on a free loopback port, no persistence (`--save ""
//!   --appendonly no`), a fresh one for every run so that no run sees the node leases of
//!   the one before; ready once it logs `Ready to accept connections`. Without
//!   `redis-server` the scenario says so and is skipped.
//! - **Nodes**: A and B, `bench serve --impl ours --scenario fanout --cluster-redis URL`
//!   (default `RedisConfig`), each on its own current-thread runtime. Two setups: the nodes
//!   await each broadcast in their event loop before reading the next frame (`--broadcast
//!   awaited`: what an application's handler does, and what `examples/server.rs` does),
//!   and the nodes await only the publish receipt, out of line (`--broadcast pipelined`,
//!   see `bench/src/serve.rs`). The difference is the cost of one Redis round trip per
//!   broadcast in the publishing node's loop.
//! - **Load**: the publisher on A; the members split evenly, 500 on A and 500 on B
//!   (`bench load --member-urls A,B`), so that each broadcast is delivered by A to its half
//!   and crosses Redis once to B's half: both the local and the remote path are measured.
//! - **Pinning**: both nodes and `redis-server` on CPU 0, the load on CPU 1, as the server
//!   of every other scenario; on a 2-core machine the three share one core.
//! - **CPU**: utime + stime of A, B and `redis-server` over the measured window. "Per
//!   server CPU-s" divides the deliveries by A + B; Redis is reported on its own, and in a
//!   column that adds it.
//! - **Check**: after each run the load stops the publisher, drains, and checks that every
//!   member got every frame exactly once and in order (see `bench/src/load.rs`).

use super::*;

/// Time for `redis-server` to say it is ready.
const REDIS_DEADLINE: Duration = Duration::from_secs(10);

/// The two-node setups, in the order of the table rows: the row's name and `--broadcast`.
const SETUPS: [(&str, &str); 2] =
    [("ours, 2 nodes + Redis", "awaited"), ("ours, 2 nodes + Redis, publish pipelined", "pipelined")];

/// What one run against the two nodes measured.
#[derive(Clone, Copy)]
struct ClusterSample {
    rate: f64,
    /// Deliveries per CPU-second of node A + node B.
    per_cpu_second: f64,
    /// Deliveries per CPU-second of node A + node B + `redis-server`.
    per_cpu_second_with_redis: f64,
    /// Shares of one core over the window.
    cpu_a: f64,
    cpu_b: f64,
    cpu_redis: f64,
    p50_us: f64,
    p99_us: f64,
}

/// The scenario's medians, for [`print()`].
pub(super) struct Row {
    label: &'static str,
    runs: usize,
    single: Option<Sample>,
    /// One per entry of [`SETUPS`].
    cluster: Vec<Option<ClusterSample>>,
    /// Runs whose delivery check found every frame delivered exactly once, of the runs
    /// that reported a check: (exact, checked); one node, then each of [`SETUPS`].
    single_exact: (usize, usize),
    cluster_exact: Vec<(usize, usize)>,
}

/// A `redis-server` started for one run, killed when dropped.
struct Redis {
    /// Declared first so that it is killed before its log reader goes.
    _process: Killed,
    pid: u32,
    url: String,
    /// Its log (stdout), drained by the reader thread for as long as it runs.
    _log: std::sync::mpsc::Receiver<String>,
}

/// Tallies a run's delivery check into (exact, checked).
fn tally(counts: &mut (usize, usize), check: Option<Check>) {
    if let Some(check) = check {
        counts.1 += 1;
        counts.0 += usize::from(check.exact());
    }
}

/// Runs the scenario `runs` times; `None` when `redis-server` is not installed.
pub(super) fn scenario(
    launcher: &Launcher,
    scenario: &Scenario,
    runs: usize,
    seconds: f64,
    ticks: f64,
) -> Option<Row> {
    match Command::new("redis-server").arg("--version").stdout(Stdio::piped()).stderr(Stdio::null()).output()
    {
        Ok(output) if output.status.success() => {
            println!("redis: {}", String::from_utf8_lossy(&output.stdout).trim());
        }
        _ => {
            println!("skipped: {} (redis-server is not installed)", scenario.label);
            return None;
        }
    }
    let mut single = Vec::new();
    let mut single_exact = (0, 0);
    let mut cluster: Vec<Vec<ClusterSample>> = vec![Vec::new(); SETUPS.len()];
    let mut cluster_exact = vec![(0, 0); SETUPS.len()];
    for run in 1..=runs {
        match one_run(launcher, scenario, "ours", seconds, ticks) {
            Ok(sample) => {
                eprintln!(
                    "{} | ours, 1 node | run {run} | {:.0}/s | {:.0}/CPU-s | CPU {:.0}% | p50 {} us | p99 {} us{}",
                    scenario.label,
                    sample.rate,
                    sample.per_cpu_second,
                    sample.cpu_share * 100.0,
                    sample.p50_us,
                    sample.p99_us,
                    sample.check.map(|c| c.summary()).unwrap_or_default()
                );
                tally(&mut single_exact, sample.check);
                single.push(sample);
            }
            Err(error) => eprintln!("{} | ours, 1 node | run {run} | failed: {error}", scenario.label),
        }
        for (index, (setup, broadcast)) in SETUPS.iter().enumerate() {
            match cluster_run(launcher, scenario, broadcast, seconds, ticks) {
                Ok((sample, check)) => {
                    eprintln!(
                        "{} | {setup} | run {run} | {:.0}/s | {:.0}/CPU-s (A+B) | {:.0}/CPU-s (A+B+Redis) | CPU A {:.0}% B {:.0}% Redis {:.0}% | p50 {} us | p99 {} us{}",
                        scenario.label,
                        sample.rate,
                        sample.per_cpu_second,
                        sample.per_cpu_second_with_redis,
                        sample.cpu_a * 100.0,
                        sample.cpu_b * 100.0,
                        sample.cpu_redis * 100.0,
                        sample.p50_us,
                        sample.p99_us,
                        check.map(|c| c.summary()).unwrap_or_default()
                    );
                    tally(&mut cluster_exact[index], check);
                    cluster[index].push(sample);
                }
                Err(error) => eprintln!("{} | {setup} | run {run} | failed: {error}", scenario.label),
            }
        }
    }
    Some(Row {
        label: scenario.label,
        runs,
        single: median_sample(&single),
        cluster: cluster.iter().map(|samples| median_cluster(samples)).collect(),
        single_exact,
        cluster_exact,
    })
}

/// One run against two nodes (`bench serve --broadcast broadcast`): Redis, node A, node B,
/// then the load.
fn cluster_run(
    launcher: &Launcher,
    scenario: &Scenario,
    broadcast: &str,
    seconds: f64,
    ticks: f64,
) -> Result<(ClusterSample, Option<Check>), BoxError> {
    let redis = start_redis(launcher)?;
    let join = ["--cluster-redis", &redis.url, "--broadcast", broadcast].map(str::to_owned);
    let (node_a, pid_a, url_a) = start_server(launcher, "ours", scenario.kind, &join)?;
    let (node_b, pid_b, url_b) = start_server(launcher, "ours", scenario.kind, &join)?;
    let members = ["--member-urls".to_owned(), format!("{url_a},{url_b}")];
    let measured = measure(launcher, scenario, &url_a, &members, &[pid_a, pid_b, redis.pid], seconds, ticks)?;
    drop(node_a);
    drop(node_b);
    drop(redis);
    let [cpu_a, cpu_b, cpu_redis] = measured.cpu_seconds[..] else {
        return Err("CPU time of three processes expected".into());
    };
    let count = measured.number("count");
    let sample = ClusterSample {
        rate: measured.number("rate"),
        per_cpu_second: per_cpu_second(count, cpu_a + cpu_b),
        per_cpu_second_with_redis: per_cpu_second(count, cpu_a + cpu_b + cpu_redis),
        cpu_a: cpu_a / measured.wall,
        cpu_b: cpu_b / measured.wall,
        cpu_redis: cpu_redis / measured.wall,
        p50_us: measured.number("p50_us"),
        p99_us: measured.number("p99_us"),
    };
    Ok((sample, measured.check))
}

/// Starts `redis-server` on CPU 0 on a free loopback port and waits until it is ready.
///
/// Not `testkit::RedisServer`: that one is not pinned, does not give its pid (whose CPU
/// time is measured here), and panics where a benchmark reports and goes on.
fn start_redis(launcher: &Launcher) -> Result<Redis, BoxError> {
    // Free now; a port taken between here and redis binding it fails this run, reported.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = std::env::temp_dir().into_os_string().into_string().map_err(|_| "temp dir not UTF-8")?;
    let args = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir,
    ]
    .map(str::to_owned);
    let mut process = launcher.spawn(0, "redis-server", &args)?;
    let pid = process.pid();
    let log = lines(&mut process)?;
    wait_for(&log, REDIS_DEADLINE, "redis-server to be ready", |l| {
        l.contains("Ready to accept connections")
    })?;
    Ok(Redis { _process: process, pid, url: format!("redis://127.0.0.1:{port}"), _log: log })
}

/// The median of each field over the runs; `None` when every run failed.
fn median_cluster(samples: &[ClusterSample]) -> Option<ClusterSample> {
    if samples.is_empty() {
        return None;
    }
    let of = |f: fn(&ClusterSample) -> f64| median(samples.iter().map(f).collect());
    Some(ClusterSample {
        rate: of(|s| s.rate),
        per_cpu_second: of(|s| s.per_cpu_second),
        per_cpu_second_with_redis: of(|s| s.per_cpu_second_with_redis),
        cpu_a: of(|s| s.cpu_a),
        cpu_b: of(|s| s.cpu_b),
        cpu_redis: of(|s| s.cpu_redis),
        p50_us: of(|s| s.p50_us),
        p99_us: of(|s| s.p99_us),
    })
}

/// Prints the scenario's table: one node, each two-node setup, and the ratios to one node.
pub(super) fn print(rows: &[Row]) {
    println!();
    println!(
        "| scenario | setup | deliveries/s | per server CPU-s (nodes) | per CPU-s incl. Redis | node A CPU | node B CPU | Redis CPU | p50 | p99 | exactly once (runs) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let label = row.label;
        let exact = |(exact, checked): (usize, usize)| format!("{exact}/{checked} of {}", row.runs);
        match row.single {
            Some(s) => println!(
                "| {label} | ours, 1 node | {:.0} | {:.0} | {:.0} | {:.0}% | - | - | {} us | {} us | {} |",
                s.rate,
                s.per_cpu_second,
                s.per_cpu_second,
                s.cpu_share * 100.0,
                s.p50_us,
                s.p99_us,
                exact(row.single_exact)
            ),
            None => println!("| {label} | ours, 1 node | failed | | | | | | | | |"),
        }
        for (((setup, _), cluster), checks) in SETUPS.iter().zip(&row.cluster).zip(&row.cluster_exact) {
            match cluster {
                Some(c) => println!(
                    "| {label} | {setup} | {:.0} | {:.0} | {:.0} | {:.0}% | {:.0}% | {:.0}% | {} us | {} us | {} |",
                    c.rate,
                    c.per_cpu_second,
                    c.per_cpu_second_with_redis,
                    c.cpu_a * 100.0,
                    c.cpu_b * 100.0,
                    c.cpu_redis * 100.0,
                    c.p50_us,
                    c.p99_us,
                    exact(*checks)
                ),
                None => println!("| {label} | {setup} | failed | | | | | | | | |"),
            }
        }
        for ((setup, _), cluster) in SETUPS.iter().zip(&row.cluster) {
            if let (Some(s), Some(c)) = (row.single, cluster) {
                println!(
                    "| {label} | **{setup} / 1 node** | {:.2}x | {:.2}x | {:.2}x | | | | {:.2}x | {:.2}x | |",
                    ratio(c.rate, s.rate),
                    ratio(c.per_cpu_second, s.per_cpu_second),
                    ratio(c.per_cpu_second_with_redis, s.per_cpu_second),
                    ratio(c.p50_us, s.p50_us),
                    ratio(c.p99_us, s.p99_us)
                );
            }
        }
    }
}
