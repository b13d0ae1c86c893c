//! Hostile and bursty traffic against real servers on loopback (issue "Hardening II"): each
//! module is one attack or defect, with the behaviour that must hold while it runs. Part of
//! the `integration` test binary (`tests/integration/main.rs`), which keeps CI's build small.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod burst;
mod close_reason;
mod endpoints;
mod handshake_limits;
mod handshake_strict;
mod incoming_budget;
mod origin;
mod protocol_drift;
mod rate_limit;
mod router_limits;
mod token_quota;
mod views_info;
