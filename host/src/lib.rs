//! `runbook-host`: runs IAM recovery runbooks as sandboxed WebAssembly
//! components, journals every call, and replays journals offline.
//!
//! The binary (`runbook`) is a thin layer over this library; tests and the
//! runbook test harness drive the same code in process.

// `println!` panics on a closed pipe: the library prints nothing itself but its
// sandbox's echo of log lines, written with `writeln!` and errors ignored.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod backend;
pub mod bindings;
pub mod cache;
pub mod config;
pub mod embedded;
pub mod exit;
pub mod fleet;
pub mod grant;
pub mod harness;
pub mod journal;
pub mod manifest;
pub mod offline;
pub mod pins;
pub mod project;
pub mod python;
pub mod replay;
pub mod report;
pub mod request;
pub mod sandbox;
pub mod signing;
pub mod threads;
pub mod transcript;
