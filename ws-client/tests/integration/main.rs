//! The integration tests of `ws-client`: the reconnecting client against small
//! tokio-tungstenite servers on 127.0.0.1:0, in one test binary (one build and link
//! instead of one per file; docs/DESIGN.md, "Tests").
//!
//! One behaviour per module, named after it. To add one, write
//! `tests/integration/<behaviour>.rs` (with `use crate::common::*;` for the helpers) and
//! declare it below with `mod <behaviour>;`: a file directly in `tests/` would be a binary
//! of its own. Every module shares this process, so none may change process-wide state:
//! `wss_tls` checks that `wss://` works with no process-wide rustls provider installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backoff_schedule;
mod close_handshake;
mod common;
mod connection_timeout;
mod drop_closes;
mod fail_at_open;
mod idle_timeout;
mod message_too_big;
mod min_uptime;
mod offline_policy;
mod offline_queue;
mod permessage_deflate;
mod restore_order;
mod retry_cap;
mod send_sync;
mod should_reconnect;
mod url_provider;
mod violation_close;
mod wss_tls;
