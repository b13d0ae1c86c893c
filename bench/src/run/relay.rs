//! The `relay` implementation: the README's main job, measured on the example server as
//! shipped (`examples/server.rs`: every router attached, tokio's multi-threaded runtime,
//! `ServerConfig::default()`, resume on). Its default behaviour relays every application
//! frame to every other connection, so the fan-out load's publisher frames reach every
//! subscriber, and its subscribers send nothing to relay.
//!
//! Two departures from "as shipped", both about the measurement, not the work measured:
//! `--no-rate-limit`, since the load floods one connection on purpose and `ours` runs
//! without a limit too; and `RUST_LOG=warn`, so that its log line per connection (10,000 of
//! them) does not fill the driver's output. It is pinned to CPU 0 like every server, so
//! its runtime sees one CPU.
//!
//! The driver builds it first (`cargo build --release --example server`, in the target
//! directory of this binary; cargo does nothing when it is fresh), with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::child::{Killed, finish_within};

/// Time for `cargo build --release --example server` (a cold release build of the facade
/// and its routers on a shared 2-core machine takes minutes).
const BUILD_DEADLINE: Duration = Duration::from_secs(900);

/// Builds the example server if it is missing or stale; its path, or why the relay cannot
/// run.
pub(super) fn prepare() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    // `TARGET/PROFILE/bench`: the example goes to `TARGET/release/examples/server`.
    let target =
        exe.parent().and_then(Path::parent).ok_or("this binary is not in a cargo target directory")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace above bench/")?;
    println!("relay: cargo build --release --example server (nothing to do when it is fresh)");
    let child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--quiet", "--release", "--example", "server", "--target-dir"])
        .arg(target)
        .current_dir(workspace)
        .stdin(Stdio::null())
        // Cargo's report goes to stderr with the runs' lines, not into the tables.
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    finish_within(Killed(child), BUILD_DEADLINE, "cargo build --release --example server")?;
    let server = target.join("release").join("examples").join("server");
    if server.is_file() { Ok(server) } else { Err(format!("{} was not built", server.display())) }
}

/// The command line that starts the example server at `server` on a free port: through
/// `env` (which execs it, so the pid is the server's) to quiet its per-connection logs.
pub(super) fn command(server: &Path) -> Vec<String> {
    ["env", "RUST_LOG=warn"]
        .into_iter()
        .map(str::to_owned)
        .chain([server.to_string_lossy().into_owned()])
        .chain(["--listen", "127.0.0.1:0", "--no-rate-limit"].map(str::to_owned))
        .collect()
}
