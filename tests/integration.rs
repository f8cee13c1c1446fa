//! The integration tests: one binary, one module per concern.
//!
//! Interop tests run the real `restic` binary (see `restic.rs`); they fail,
//! rather than skip, when it is missing. Run with
//! `cargo test --test integration`.

#[path = "integration/bad_input.rs"]
mod bad_input;
#[path = "integration/compare.rs"]
mod compare;
#[path = "integration/dedup.rs"]
mod dedup;
#[path = "integration/fixture.rs"]
mod fixture;
#[path = "integration/interop_read.rs"]
mod interop_read;
#[path = "integration/interop_saver.rs"]
mod interop_saver;
#[path = "integration/interop_write.rs"]
mod interop_write;
#[path = "integration/restic.rs"]
mod restic;
#[path = "integration/selftest.rs"]
mod selftest;
#[path = "integration/vault.rs"]
mod vault;
