//! The integration tests of `views`, in one test binary (one build and link instead of
//! one per file; docs/DESIGN.md, "Tests"): the views client against a scripted fake
//! server (`client_support`), and in `memory` the client and server routers together over
//! testkit's in-memory network, without sockets.
//!
//! One behaviour per module, named after it. To add one, write
//! `tests/integration/<behaviour>.rs` (with `use crate::client_support::*;` for the
//! helpers) and declare it below with `mod <behaviour>;`: a file directly in `tests/` would
//! be a binary of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod client_close;
mod client_diffs;
mod client_info;
mod client_malformed;
mod client_open;
mod client_reconnect;
mod client_send_sync;
mod client_support;
mod memory;
