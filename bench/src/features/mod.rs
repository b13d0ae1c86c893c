//! `bench features`: the router scenarios of the benchmark issue (reconnect storm, presence
//! churn, sync push), each against our server ("ours": `ws_server::Server` with the
//! channels, views or sync router) and, in the same run, against a minimal
//! tokio-tungstenite server doing the same job with no framework ("raw").
//!
//! ```text
//! cargo run --release -p bench -- features run [--runs 5] [--seconds 10] [--scenarios storm,churn,syncpush] [--storm-clients 5000]
//! bench features serve --impl ours|raw --scenario storm|churn|syncpush [--listen 127.0.0.1:0]
//! bench features load  --impl ours|raw --scenario storm|churn|syncpush --url ws://ADDR [--seconds S]
//! ```
//!
//! The subcommand may also be given as `--role run|serve|load` (the driver starts its
//! children that way).
//!
//! # Method
//!
//! `run` starts `serve` pinned to CPU 0 and `load` pinned to CPU 1 (`taskset -c`; without
//! taskset it says so and runs unpinned), both with the soft and hard file limits raised to
//! 20,000 (`prlimit --nofile=20000:20000`). The server runs on one tokio worker
//! (current-thread runtime), and so does the load generator. The driver reads the server's
//! CPU time (utime + stime from `/proc/PID/stat`) around the measured window and prints the
//! median of the runs per scenario and implementation, with the ratio ours/raw. Raw and ours
//! alternate within each run. Every phase has a deadline; children are killed on every
//! path. Besides the CPU shares of the server and the load generator, every table shows how
//! long the server was ready to run but waited for its CPU (`/proc/PID/schedstat`, as a
//! share of the window): on a machine shared with other work, a run whose server waited
//! much was slowed by other processes, and its rates say little. Ours runs with the default configurations of the server and the routers.
//!
//! The raw server speaks the same wire frames as our routers (`docs/PROTOCOL.md` sections
//! 5-7: `{"$r":"ch"|"views"|"sync","d":{...}}`), so that the load generator is the same
//! program for both (except the storm clients, below). It is the textbook shape: one task
//! per connection reading and decoding each frame with `serde_json`, a writer task per
//! connection fed by a bounded mpsc (1,024 frames; broadcasts use `try_send`), and one
//! `Mutex` around the maps (views to members, rooms to members, subscribers).
//!
//! ## Reconnect storm (`storm`)
//!
//! 5,000 clients, each in one room of channel `/storm` (50 clients per room, the room
//! chosen by the query parameter `room`; our channel's `on_join` puts the connection in it)
//! and with one view open (50 clients per view, so that presence diffs stay small: each
//! view has at most 50 members). Ours: real `ws_client::Client`s with
//! `ClientConfig::default()` (minimum reconnection delay drawn once per client in 1-5 s,
//! growing by 1.3 per failed attempt up to 10 s, as `reconnecting-websocket` does), the
//! channels client joining `/storm` and the views client opening the view; both restore
//! themselves after a reconnect. Raw: tokio-tungstenite clients following the same schedule
//! (minimum drawn once in 1-5 s, x1.3 per failure, 10 s cap, 4 s attempt timeout), sending
//! the same `join` and `open` frames after every connect; the raw server answers `joined`
//! and `state` (with the member list) and sends the view's other members an uncoalesced
//! `diff` per arrival.
//!
//! Once all clients are restored, the driver waits 6 s (past the client's `min_uptime` of
//! 5 s, so that the retry count starts over as for long-lived clients), kills the server
//! (SIGKILL), waits until the load generator has seen every client drop, and starts the
//! server again on the same port. From the moment the new server announces its address the
//! driver times the load generator's two lines: every client connected (ours:
//! `Client::is_open`, i.e. the link is up and the restore frames are queued), and every
//! client restored (the server's `joined` and `state` received: `Channel::is_joined` and
//! `View::is_synced`). The load generator samples those every 20 ms. Reported: seconds
//! until all are connected and until all are restored (median), the latter measured from the
//! kill too, the server CPU seconds used from restart to restored, clients restored per server
//! CPU-second, the failed attempts, the median and largest first reconnection delay drawn,
//! and the CPU shares of the server and the load generator from restart to restored. The
//! load generator's JSON line (printed on stderr by the driver) adds, per client, the time
//! from connected to `joined` and to `state`, the time restored beyond the delay drawn, and
//! the clients restored at each second since the drop. Since the delays are drawn in 1-5 s,
//! no run can finish in less than about 5 s after the drop; what is beyond that is the cost
//! of reconnecting 5,000 clients (handshakes, joins, opens, diffs) on both sides. The
//! issue's target: all 5,000 back, rooms and views restored, within 10 s. `--seconds` does
//! not apply; `--storm-clients N` changes the number of clients (for quick checks).
//!
//! ## Presence churn (`churn`)
//!
//! 1,000 togglers, each assigned one of 10 views (100 possible members per view), open and
//! close their view in a loop: send `open`, wait for the `state`, send `close`, wait for
//! `closed` (one request in flight per toggler), plus 5 observers per view that keep it
//! open. Every connection counts the member changes it receives: the entries of `joins`
//! plus `leaves` in each `diff` frame (not frames). Ours coalesces a view's changes over
//! 25 ms (its default `diff_interval`): a member that opens and closes within one interval
//! may appear in no diff at all, and one frame carries many changes. Raw does not coalesce:
//! each open or close sends one `diff` with one entry to each other member of the view at
//! once. So the work per operation differs by design; the table shows view operations per
//! second (opens and closes answered) and per server CPU-second, and member changes
//! delivered per second (to every connection, and to the observers alone).
//!
//! ## Sync push (`syncpush`)
//!
//! One model path (`/api/model/1`, route pattern `/api/model/:id`) with 1,000 subscribers
//! (raw tokio-tungstenite clients sending the `sub` frame and waiting for `subscribed`). The
//! server pushes `{"seq":N,"pad":"..."}` (a `data` frame of about 150 bytes; ours with
//! `SyncHandle::push(path, Op::Change, ..)`, raw with the same frame serialised once per
//! push and sent to every subscriber) as fast as a window allows: 16 pushes in flight. The
//! load generator counts deliveries per push; when the last subscriber has a push, it
//! returns one credit over a control connection (path `/control`, plain text frames holding
//! a count) and the server pushes again. Reported: pushes completed per second, deliveries
//! per second and per server CPU-second.
//!
//! # Helpers
//!
//! The driver's helpers (spawning pinned children, reading `/proc/PID/stat`, medians) are
//! this module's own small versions, independent of `bench/src/run.rs`.

mod driver;
mod load;
mod serve;
mod wire;

use crate::{Args, BoxError};

/// The three router scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Reconnect storm: channels rooms and views restored after a server restart.
    Storm,
    /// Presence churn: views opened and closed in a loop.
    Churn,
    /// Sync push: one model pushed to its subscribers.
    SyncPush,
}

impl Scenario {
    /// Every scenario, in the order `run` measures them.
    const ALL: [Self; 3] = [Self::Storm, Self::Churn, Self::SyncPush];

    /// The name on the command line.
    fn name(self) -> &'static str {
        match self {
            Self::Storm => "storm",
            Self::Churn => "churn",
            Self::SyncPush => "syncpush",
        }
    }

    fn parse(name: &str) -> Result<Self, BoxError> {
        Self::ALL
            .into_iter()
            .find(|scenario| scenario.name() == name)
            .ok_or_else(|| format!("unknown scenario {name} (storm, churn, syncpush)").into())
    }
}

/// Which server (or which client, for the storm) a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    /// Our server with its routers; in the storm, our client with its routers.
    Ours,
    /// A minimal tokio-tungstenite server (and client) doing the same job.
    Raw,
}

impl Impl {
    /// Both, in the order `run` alternates them.
    const ALL: [Self; 2] = [Self::Raw, Self::Ours];

    fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Raw => "raw",
        }
    }

    fn parse(name: &str) -> Result<Self, BoxError> {
        match name {
            "ours" => Ok(Self::Ours),
            "raw" => Ok(Self::Raw),
            other => Err(format!("unknown impl {other} (ours, raw)").into()),
        }
    }
}

const USAGE: &str = "usage: bench features run [--runs R] [--seconds S] [--scenarios storm,churn,syncpush] [--storm-clients N]
       bench features serve --impl ours|raw --scenario storm|churn|syncpush [--listen 127.0.0.1:0]
       bench features load --impl ours|raw --scenario storm|churn|syncpush --url ws://ADDR [--seconds S]
       (or --role run|serve|load instead of the word)

  --runs R             runs of each scenario and implementation; medians shown (default 5)
  --seconds S          length of each measured window (default 10)
  --scenarios LIST     which scenarios, comma-separated (default storm,churn,syncpush)
  --storm-clients N    clients of the reconnect storm (default 5000)
  --listen ADDR        serve's address (default 127.0.0.1:0)";

pub(crate) fn main(argv: &[String]) -> Result<(), BoxError> {
    if crate::wants_help(argv) {
        println!("{USAGE}");
        return Ok(());
    }
    // `bench features run --runs 5`: the word after `features` names the subcommand (or
    // `--role` does, as the driver starts its children).
    match argv.split_first() {
        Some((role, rest)) if !role.starts_with("--") => dispatch(role, &Args::parse(rest)?),
        _ => {
            let args = Args::parse(argv)?;
            dispatch(&args.required("role").map_err(|_| USAGE)?, &args)
        }
    }
}

fn dispatch(role: &str, args: &Args) -> Result<(), BoxError> {
    match role {
        "run" => driver::main(args),
        "serve" => serve::main(args),
        "load" => load::main(args),
        _ => Err(USAGE.into()),
    }
}

/// Prints `line` on stdout at once (the driver reads it through a pipe).
pub(crate) fn say(line: &str) -> Result<(), BoxError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}
