//! The Socket.IO peers of `bench run`: socket.io on Node (`bench/node/socketio.js`, with
//! `node` and `bench/node/node_modules` like the `node` impl) and socketioxide
//! (`bench/socketioxide`, a cargo project of its own, built here on demand). The load
//! speaks Engine.IO / Socket.IO to both (`bench load --protocol socketio`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::Kind;
use crate::child::{Killed, finish_within};

/// The Socket.IO implementations, in the order of the table rows.
pub(super) const IMPLS: [&str; 2] = ["socketio", "socketioxide"];

/// The longest the release build of `bench/socketioxide` may take (a cold build is about
/// 3 minutes on two shared cores).
const BUILD_DEADLINE: Duration = Duration::from_secs(900);

/// Whether `implementation` speaks Socket.IO.
pub(super) fn speaks_socketio(implementation: &str) -> bool {
    IMPLS.contains(&implementation)
}

/// Whether `implementation` runs `kind`: the Socket.IO peers have no MessagePack echo (the
/// load sends JSON events only) and no cluster.
pub(super) fn applies(implementation: &str, kind: Kind) -> bool {
    !speaks_socketio(implementation)
        || matches!(kind, Kind::Echo { payload: "json" } | Kind::Fanout | Kind::Memory)
}

/// The arguments `bench load` needs for `implementation`'s protocol.
pub(super) fn load_args(implementation: &str) -> Vec<String> {
    if speaks_socketio(implementation) {
        vec!["--protocol".to_owned(), "socketio".to_owned()]
    } else {
        Vec::new()
    }
}

/// `bench/socketioxide`.
fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("socketioxide")
}

/// The socketioxide server, once [`build_socketioxide`] built it.
pub(super) fn socketioxide_binary() -> PathBuf {
    project_dir().join("target").join("release").join("bench-socketioxide")
}

/// Builds `bench/socketioxide` (release, its own lock file and target dir); cargo's output
/// goes to stderr. The reason it cannot run otherwise.
pub(super) fn build_socketioxide() -> Result<(), String> {
    let dir = project_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "socketioxide: building bench/socketioxide (cargo build --release --locked, its own target dir), at most {} s",
        BUILD_DEADLINE.as_secs()
    );
    let child = Command::new(cargo)
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        // The caller's CARGO_TARGET_DIR is the main workspace's, not this project's.
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    finish_within(Killed(child), BUILD_DEADLINE, "cargo build")
        .map_err(|why| format!("{why} (socketioxide 0.18.9 needs rustc 1.94 or later)"))
}
