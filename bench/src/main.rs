//! Loopback benchmarks: `ws_server::Server` ("ours") against two minimal tokio-tungstenite
//! servers doing the same job ("raw", an mpsc queue per connection; "bcast", one
//! `tokio::sync::broadcast` channel, axum's chat idiom), the textbook Node `ws` server
//! ("node", `bench/node/server.js`), on fan-out the example server relaying the
//! publisher's frames to everyone else as shipped ("relay", `examples/server.rs`, the
//! README's main job), and the Socket.IO servers a user would pick instead ("socketio":
//! socket.io on Node, `bench/node/socketio.js`; "socketioxide": `bench/socketioxide`, built
//! on demand), which the load drives with `--protocol socketio`; all measured in the same run.
//!
//! ```text
//! cargo run --release -p bench -- run [--runs 5] [--seconds 10] [--only SUBSTRING] [--impls raw,bcast,ours,relay,node,socketio,socketioxide]
//! cargo run --release -p bench -- smoke [--runs 2] [--seconds 2]
//! cargo run --release -p bench -- serve --impl ours|raw|bcast --scenario echo|fanout|memory [--listen 127.0.0.1:0]
//! cargo run --release -p bench -- serve --impl ours --scenario fanout --cluster-redis redis://HOST:PORT \
//!     [--broadcast awaited|pipelined]
//! cargo run --release -p bench -- load --scenario echo|fanout --url ws://ADDR \
//!     --connections N --in-flight K --seconds S [--payload json|msgpack] [--member-urls ws://A,ws://B] [--protocol ws|socketio]
//! cargo run --release -p bench -- load --scenario memory --url ws://ADDR --connections N [--per-view K] [--await-state 0|1] [--protocol ws|socketio]
//! cargo run --release -p bench -- deflate [--bytes 20000000]   (one message compressed and inflated, by size)
//! cargo run --release -p bench -- features run|serve|load ...   (router scenarios, see `features`)
//! cargo run --release -p bench -- resume run|serve|load ...     (session resume, see `resume`; --help)
//! ```
//!
//! `run --only cross-node` runs the fan-out across two nodes of a cluster on a Redis it
//! starts, against one node in the same run (see `run/cross_node.rs`).
//!
//! `run` without `--only` ends with `features run` (the reconnect storm, presence churn and
//! sync push scenarios, ours against raw) and `resume run` (session resume of 5,000 clients
//! after a proxy reset, against fresh reconnects), so that one command runs every scenario.
//!
//! `run` starts each server pinned to CPU 0 and `load` pinned to CPU 1 (with `taskset`), with
//! the soft file limit raised to the hard one (with `prlimit`). For echo and fan-out it reads
//! the server's CPU time from `/proc/PID/stat` around the measured window; for memory, the
//! server's `VmRSS` before and after 10,000 idle connections. It prints the median of the runs
//! for each scenario and implementation with the ratios ours/raw, ours/bcast, ours/node and
//! relay/ours.
//!
//! `smoke` is the CI's regression guard, seconds long: ours, raw and bcast on echo (100
//! connections) and fan-out (1,000 members, 32 in flight), pinned the same way; it prints
//! the ratios and fails when ours is below 0.8x raw per server CPU-second on either.
//! See `docs/BENCHMARKS.md` for figures.

mod child;
mod deflate;
mod features;
mod hist;
mod hostile;
mod load;
mod resume;
mod run;
mod serve;

use std::collections::HashMap;

/// Errors of the bench binary: a message for the operator.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `--flag value` pairs after the subcommand.
pub(crate) struct Args {
    values: HashMap<String, String>,
}

impl Args {
    fn parse(rest: &[String]) -> Result<Self, BoxError> {
        let mut values = HashMap::new();
        let mut iter = rest.iter();
        while let Some(flag) = iter.next() {
            let name = flag.strip_prefix("--").ok_or_else(|| format!("unexpected argument {flag}"))?;
            let value = iter.next().ok_or_else(|| format!("--{name} needs a value"))?;
            values.insert(name.to_owned(), value.clone());
        }
        Ok(Self { values })
    }

    /// The value of `--name`, or `default`.
    pub(crate) fn str_or(&self, name: &str, default: &str) -> String {
        self.values.get(name).cloned().unwrap_or_else(|| default.to_owned())
    }

    /// The value of `--name`, required.
    pub(crate) fn required(&self, name: &str) -> Result<String, BoxError> {
        self.values.get(name).cloned().ok_or_else(|| format!("--{name} is required").into())
    }

    /// The value of `--name` parsed as a number, or `default`.
    pub(crate) fn num_or<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, BoxError> {
        match self.values.get(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|_| format!("--{name}: not a number: {value}").into()),
        }
    }
}

const USAGE: &str = "\
usage: bench run [--runs R] [--seconds S] [--only SUBSTRING] [--impls raw,bcast,ours,relay,node,socketio,socketioxide]
       bench smoke [--runs R] [--seconds S]
       bench serve --impl ours|raw|bcast --scenario echo|fanout|memory [--listen ADDR]
       bench serve --impl ours --scenario fanout --cluster-redis redis://HOST:PORT [--broadcast awaited|pipelined]
       bench load --scenario echo|fanout --url ws://ADDR [--connections N] [--in-flight K] [--seconds S] [--payload json|msgpack] [--member-urls ws://A,ws://B] [--protocol ws|socketio]
       bench load --scenario memory --url ws://ADDR [--connections N] [--per-view K] [--await-state 0|1] [--protocol ws|socketio]
       bench deflate [--bytes N]
       bench hostile --server-bin PATH [--attack LIST] [--runs R] [--server-nofile N] [--server-log FILE]
       bench features run|serve|load ...   (router scenarios; bench features --help)
       bench resume run|serve|load ...     (session resume; bench resume --help)

run:      --runs 5, --seconds 10, --only (default: every scenario),
          --impls raw,bcast,ours,relay,node,socketio,socketioxide
          (relay: the example server, fan-out only, built with cargo when missing or stale;
          socketio needs node; socketioxide is built from bench/socketioxide on first use)
smoke:    --runs 2, --seconds 2: ours, raw, bcast on echo and fan-out; exit 1 when ours is
          below 0.8x raw per server CPU-second
serve:    --listen 127.0.0.1:0, --cluster-redis (default: none, one node), --broadcast awaited
load:     --connections 100, --in-flight 1, --seconds 10, --payload json, --per-view 1,
          --await-state 0, --member-urls (default: --url only), --protocol ws (socketio: Engine.IO v4 /
          Socket.IO v5 events 42[\"m\",...] to bench/node/socketio.js or bench/socketioxide)
deflate:  --bytes 20000000: input timed per size (compress and inflate one message, 128 B to 16 KiB)
hostile:  --attack silent,partial,burst,oversized, --runs 3, --server-nofile (default: this
          process's hard limit), --server-log (default: discard the server's stderr)
-h, --help prints this help";

/// Whether the command line asks for help (`--help`, `-h` or `help` anywhere).
pub(crate) fn wants_help(argv: &[String]) -> bool {
    argv.iter().any(|arg| arg == "--help" || arg == "-h" || arg == "help")
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        eprintln!("{USAGE}");
        return std::process::ExitCode::from(2);
    };
    let result = match command.as_str() {
        // Their own subcommands (`bench features run ...`) come before their flags, and
        // they answer `--help` themselves.
        "features" => features::main(rest),
        "resume" => resume::main(rest),
        _ if wants_help(&argv) => {
            println!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        "serve" | "load" | "run" | "smoke" | "hostile" | "deflate" => {
            Args::parse(rest).and_then(|args| match command.as_str() {
                "deflate" => deflate::main(&args),
                "serve" => serve::main(&args),
                "load" => load::main(&args),
                "run" => run::main(&args),
                "smoke" => run::smoke(&args),
                _ => hostile::main(&args),
            })
        }
        other => {
            eprintln!("unknown command {other:?}\n\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
