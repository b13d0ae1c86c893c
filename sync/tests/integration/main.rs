//! The integration tests of `sync`, in one test binary (one build and link instead of
//! one per file; docs/DESIGN.md, "Tests"): the sync client against a scripted fake
//! server (`support`), and in `memory`, `versions` and `start_with_snapshot` the client
//! and server routers together over testkit's in-memory network, without sockets.
//!
//! One behaviour per module, named after it. To add one, write
//! `tests/integration/<behaviour>.rs` (with `use crate::support::*;` for the helpers) and
//! declare it below with `mod <behaviour>;`: a file directly in `tests/` would be a binary
//! of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod client_collection;
mod client_malformed;
mod client_pushes;
mod client_requests;
mod client_resubscribe;
mod client_send_sync;
mod client_subscribe;
mod memory;
mod start_with_snapshot;
mod support;
mod versions;
