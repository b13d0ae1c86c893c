//! The integration tests of `network-core`: the codec against hostile and generated input,
//! in one test binary (one build and link instead of one per file; docs/DESIGN.md,
//! "Tests").
//!
//! One behaviour per module, named after it. To add one, write
//! `tests/integration/<behaviour>.rs` and declare it below with `mod <behaviour>;`: a file
//! directly in `tests/` would be a binary of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod deeply_nested_msgpack;
mod envelope_props;
