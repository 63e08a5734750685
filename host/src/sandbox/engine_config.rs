//! The engine configuration every runbook runs under, in one place: the
//! runtime builds its engine with it, and `host/build.rs` (which includes
//! this file) precompiles the embedded runbooks with it, so their machine
//! code loads without compiling. A change here changes both; wasmtime
//! refuses code compiled under another configuration.

/// The configuration: the component model, epoch deadlines, fuel, no async.
pub fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // Fuel as well as the deadline: the deadline is wall-clock time and
    // differs between a live run and its replay; fuel counts the guest's
    // instructions, so a replay with the recorded budget stops where the
    // live run stopped. Fuel changes the compiled code: the cache key
    // (`Engine::precompile_compatibility_hash`, see `crate::cache`) hashes
    // wasmtime's tunables, which include `consume_fuel`, so code compiled
    // without it is never loaded (a test in `cache` checks).
    config.consume_fuel(true);
    // Off unless needed: host calls are 2-3x cheaper without it.
    config.concurrency_support(false);
    config
}
