//! The load tests of the facade: hundreds to a thousand clients on one server over real
//! sockets on 127.0.0.1, in a test binary of their own so that they never run beside the
//! tests of `tests/integration/`, whose real-time bounds (heartbeats, reconnection delays,
//! node loss) assume a machine that is not saturated. Each of these takes about half a
//! minute; side by side here their bounds (60 s to converge, 30 s to settle) still hold.
//!
//! To add one, write `tests/load/<behaviour>.rs` and declare it below with
//! `mod <behaviour>;`. A test that needs process-wide settings (a descriptor limit) runs
//! itself again in a child process, selected by its full name, as
//! `views_thousand_clients` does with `support::run_as_child_with_open_files`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../support/rng.rs"]
mod rng;
mod soak;
#[path = "../support/mod.rs"]
mod support;
mod views_thousand_clients;
