//! Loopback benchmarks: `ws_server::Server` ("ours") against a minimal tokio-tungstenite
//! server ("raw") doing the same job and the textbook Node `ws` server ("node",
//! `bench/node/server.js`), measured in the same run; and the Socket.IO servers a user would
//! pick instead ("socketio": socket.io on Node, `bench/node/socketio.js`; "socketioxide":
//! `bench/socketioxide`, built on demand), which the load drives with `--protocol socketio`.
//!
//! ```text
//! cargo run --release -p bench -- run [--runs 5] [--seconds 10] [--only SUBSTRING] [--impls raw,ours,node,socketio,socketioxide]
//! cargo run --release -p bench -- serve --impl ours|raw --scenario echo|fanout|memory [--listen 127.0.0.1:0]
//! cargo run --release -p bench -- serve --impl ours --scenario fanout --cluster-redis redis://HOST:PORT \
//!     [--broadcast awaited|pipelined]
//! cargo run --release -p bench -- load --scenario echo|fanout --url ws://ADDR \
//!     --connections N --in-flight K --seconds S [--payload json|msgpack] [--member-urls ws://A,ws://B] [--protocol ws|socketio]
//! cargo run --release -p bench -- load --scenario memory --url ws://ADDR --connections N [--per-view K] [--await-state 0|1] [--protocol ws|socketio]
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
//! for each scenario and implementation with the ratios ours/raw and ours/node.
//! See `docs/BENCHMARKS.md` for figures.

mod child;
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
usage: bench run [--runs R] [--seconds S] [--only SUBSTRING] [--impls raw,ours,node,socketio,socketioxide]
       bench serve --impl ours|raw --scenario echo|fanout|memory [--listen ADDR]
       bench serve --impl ours --scenario fanout --cluster-redis redis://HOST:PORT [--broadcast awaited|pipelined]
       bench load --scenario echo|fanout --url ws://ADDR [--connections N] [--in-flight K] [--seconds S] [--payload json|msgpack] [--member-urls ws://A,ws://B] [--protocol ws|socketio]
       bench load --scenario memory --url ws://ADDR [--connections N] [--per-view K] [--await-state 0|1] [--protocol ws|socketio]
       bench hostile --server-bin PATH [--attack LIST] [--runs R] [--server-nofile N] [--server-log FILE]
       bench features run|serve|load ...   (router scenarios; bench features --help)
       bench resume run|serve|load ...     (session resume; bench resume --help)

run:      --runs 5, --seconds 10, --only (default: every scenario), --impls raw,ours,node,socketio,socketioxide
          (socketio needs node; socketioxide is built from bench/socketioxide on first use)
serve:    --listen 127.0.0.1:0, --cluster-redis (default: none, one node), --broadcast awaited
load:     --connections 100, --in-flight 1, --seconds 10, --payload json, --per-view 1,
          --await-state 0, --member-urls (default: --url only), --protocol ws (socketio: Engine.IO v4 /
          Socket.IO v5 events 42[\"m\",...] to bench/node/socketio.js or bench/socketioxide)
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
        "serve" | "load" | "run" | "hostile" => Args::parse(rest).and_then(|args| match command.as_str() {
            "serve" => serve::main(&args),
            "load" => load::main(&args),
            "run" => run::main(&args),
            _ => hostile::main(&args),
        }),
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
