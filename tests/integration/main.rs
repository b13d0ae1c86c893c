//! The integration tests of the facade: client, server and routers over real sockets on
//! 127.0.0.1, in one test binary (one build and link instead of one per file;
//! docs/DESIGN.md, "Tests"). The load tests are the only other binary, `tests/load/`.
//!
//! One behaviour per module, named after it; `hostile/` holds the attacks on the server,
//! one module each. To add a module, write `tests/integration/<behaviour>.rs` (with
//! `use crate::support::*;` for the shared helpers, `testkit::FaultProxy` for the TCP proxy
//! that delays, freezes, resets or blackholes connections) and declare it below with `mod <behaviour>;`: a file
//! directly in `tests/` would be a binary of its own.
//!
//! The modules share this process and run side by side, so none may change process-wide
//! state (environment, resource limits, a global tracing subscriber, the panic hook) or
//! count what the whole process holds (descriptors, memory). A test that needs that runs
//! itself again in a child process, selected by its full name, as
//! `accept_survives_fd_exhaustion` does:
//! `run_as_child_with_open_files(&test_name(module_path!(), "the_test"), ..)`. A test that
//! puts hundreds of clients on a server belongs in `tests/load/`: beside it, the real-time
//! bounds here (heartbeats, reconnection delays, node loss) would not hold.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod accept_survives_fd_exhaustion;
mod ack_id_spaces;
mod axum_upgrade_handler;
mod channels_end_to_end;
mod channels_server;
mod client_compression;
mod client_server_restart;
mod close_codes;
mod cluster_redis;
mod compression;
mod emit_from_axum_handler;
mod error_ids;
mod example_commands;
mod faults;
mod frames_across_reads;
mod handshake;
mod heartbeat;
mod heartbeat_no_fin;
mod hostile;
mod membership_events;
mod null_results;
mod one_time_tokens;
mod redis_tokens;
mod reply_order;
mod resume;
mod round_trips;
mod routers;
mod send_sync;
mod shutdown;
mod slow_consumer;
mod start_modes;
#[path = "../support/mod.rs"]
mod support;
mod sync_end_to_end;
mod sync_server;
mod sync_versions;
mod views_end_to_end;
mod views_server;
mod views_you;
