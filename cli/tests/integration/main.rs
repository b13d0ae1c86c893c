//! The `realtime` binary over real sockets on 127.0.0.1: each test runs the built binary
//! as a process (`CARGO_BIN_EXE_realtime`) and talks to it as a user or a load balancer
//! would. One behaviour per module.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod admin;
mod cluster;
mod connect;
mod help;
mod metrics;
mod serve;
mod support;
mod tls;
mod tokens;
