//! Loading and linking: the engine (built once per process), the linker
//! with the runbook world and the locked-down WASI, the compiled-component
//! cache, and the import check that refuses a component before it runs.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

use crate::bindings::{Runbook, RunbookPre, WIT_PACKAGE};
use crate::cache::{Cache, Source};
use crate::manifest::{Manifest, ManifestError};

use super::call::RunState;
use super::limits::TICK;

/// The engine and linker, built once per process, with the compiled-component
/// cache and, within the process, every component already loaded.
pub struct Runtime {
    pub(super) engine: Engine,
    pub(super) linker: Linker<RunState>,
    pub(super) cache: Cache,
    /// The components loaded, by their [`Cache::key`].
    pub(super) loaded: Mutex<HashMap<String, Loaded>>,
    /// Advances the engine's epoch while a store runs.
    pub(super) ticker: Ticker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runtime")
    }
}

/// A runbook component, checked and ready to instantiate.
#[derive(Clone)]
pub struct Loaded {
    /// Its manifest.
    pub manifest: Manifest,
    /// The sha256 of its bytes, hex.
    pub sha256: String,
    /// What it imports (all checked against the allowed set).
    pub imports: Vec<String>,
    /// The runbook-sdk version it was built with, if it says.
    pub sdk_version: Option<String>,
    /// Whether it was compiled now or loaded from the cache.
    pub source: Source,
    pub(super) pre: RunbookPre<RunState>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("name", &self.manifest.name)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// The imports a runbook may have: its own world, and the WASI that a Rust
/// `wasm32-wasip2` std or a Python interpreter (componentize-py) links, each
/// inert or virtual here (see `super::wasi`): clocks in virtual time whose
/// waits never block, sockets and name lookups that are always refused, a
/// filesystem with nothing in it. HTTP and everything else are refused
/// before the component is instantiated.
pub(super) const ALLOWED_IMPORTS: &[&str] = &[
    "runbook:runbook/",
    "wasi:clocks/monotonic-clock@",
    "wasi:clocks/wall-clock@",
    "wasi:sockets/",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-",
    "wasi:io/",
    "wasi:random/",
    "wasi:filesystem/",
];

impl Runtime {
    /// Build the engine (component model, epoch deadlines, fuel, no async) and the
    /// linker with the runbook world and the locked-down WASI.
    pub fn new() -> anyhow::Result<Runtime> {
        Runtime::with_cache(Cache::default_location())
    }

    /// A runtime whose compiled components go to `cache`.
    pub fn with_cache(cache: Cache) -> anyhow::Result<Runtime> {
        let engine = Engine::new(&super::engine_config::engine_config())?;
        let mut linker: Linker<RunState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        super::wasi::add_virtual_monotonic_clock(&mut linker, |s| super::wasi::VirtualClock {
            table: &mut s.table,
            time: &s.time,
        })?;
        Runbook::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
        Ok(Runtime {
            ticker: Ticker::new(&engine),
            engine,
            linker,
            cache,
            loaded: Mutex::default(),
        })
    }

    /// Keep the deadline ticker's thread for `linger` after the last run
    /// ends, for the next: for a runtime that runs runbook after runbook in
    /// one process (the harness, benchmarks). A command that runs once and
    /// exits keeps the default, none: the thread ends with the run.
    pub fn keep_ticking(self, linger: Duration) -> Runtime {
        if let Ok(mut state) = self.ticker.state.lock() {
            state.linger = linger;
        }
        self
    }

    /// Read the manifest, check the imports, compile, and pre-link a component.
    /// `what` names it in errors (a path or runbook name).
    pub fn load(&self, what: &str, bytes: &[u8]) -> anyhow::Result<Loaded> {
        // A large component's machine code (a Python runbook's: 19 MB of
        // component, 40 MB of code) is looked up and checked in the cache on
        // another CPU while its identity, the sha256, is hashed here: two
        // hashes of tens of megabytes side by side.
        let key = Cache::key(bytes);
        if let Some(loaded) = self.loaded.lock().expect("not poisoned").get(&key) {
            return Ok(loaded.clone());
        }
        let lookup = (bytes.len() >= LOOKUP_BESIDE_BYTES)
            .then(|| {
                let (cache, engine, key) = (self.cache.clone(), self.engine.clone(), key.clone());
                crate::threads::spawn_beside("runbook-cache", move || cache.get(&engine, &key)).ok()
            })
            .flatten();
        let sha256 = hex::encode(Sha256::digest(bytes));
        let cached = || match lookup {
            Some(thread) => thread.join().ok().flatten(),
            None => self.cache.get(&self.engine, &key),
        };
        let loaded = self.load_new(what, bytes, &key, sha256, cached)?;
        self.loaded
            .lock()
            .expect("not poisoned")
            .insert(key, loaded.clone());
        Ok(loaded)
    }

    /// Load a component not loaded before, whose [`Cache::key`] is `key`;
    /// `cached` looks its machine code up in the cache.
    fn load_new(
        &self,
        what: &str,
        bytes: &[u8],
        key: &str,
        sha256: String,
        cached: impl FnOnce() -> Option<Component>,
    ) -> anyhow::Result<Loaded> {
        let manifest = Manifest::from_wasm(bytes).map_err(|e| match e {
            ManifestError::NotWasm(reason) => anyhow::anyhow!(
                "{what} is not a WebAssembly component ({reason}); give a runbook name or a .wasm built from a runbook crate"
            ),
            other => anyhow::anyhow!("{what}: {other}"),
        })?;
        if !wasmparser::Parser::is_component(bytes) {
            bail!(
                "{what} is a core WebAssembly module, not a component; build it for wasm32-wasip2"
            );
        }
        // A shipped runbook's machine code came with the binary: no compile,
        // no cache. (Should it not load, say after an engine change that
        // did not rebuild it, the cache path below compiles as before.)
        let precompiled = crate::embedded::precompiled(&sha256).and_then(|code| {
            // SAFETY: `code` was produced by this binary's build from the
            // component whose sha256 matched, with this engine's
            // configuration (src/sandbox/engine_config.rs); it is part of
            // the binary, trusted as the binary is. wasmtime refuses code of
            // another version or configuration.
            #[allow(unsafe_code)]
            let component = unsafe { Component::deserialize(&self.engine, code) };
            component.ok()
        });
        let (component, source) = match precompiled {
            Some(c) => (c, Source::Precompiled),
            None => match cached() {
                Some(c) => (c, Source::Cache),
                None => (
                    self.cache
                        .compile(&self.engine, key, bytes)
                        .map_err(anyhow::Error::from)
                        .with_context(|| format!("{what} is not a valid WebAssembly component"))?,
                    Source::Compiled,
                ),
            },
        };
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        for name in &imports {
            if !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)) {
                bail!(
                    "{what} imports `{name}`, which runbooks may not use: a runbook reaches the outside world only through the runbook:runbook imports"
                );
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{what} cannot be linked"))?;
        let pre = RunbookPre::new(pre).map_err(|e| {
            anyhow::anyhow!(
                "{what} does not export the runbook world ({WIT_PACKAGE}, `run`): {e:#}; build it with runbook_sdk::runbook!"
            )
        })?;
        Ok(Loaded {
            manifest,
            sha256,
            imports,
            sdk_version: crate::manifest::sdk_version(bytes),
            source,
            pre,
        })
    }
}

/// Components at least this large have their cache entry looked up on
/// another thread while their sha256 is hashed (see [`Runtime::load`]).
const LOOKUP_BESIDE_BYTES: usize = 1 << 20;

/// Advances the engine's epoch every [`TICK`] while at least one store runs
/// (see [`Ticker::hold`]), so each store can have a deadline of its own.
///
/// Its thread ends when the last store stops (or, for a runtime that runs
/// many runbooks, once none has run for a while: see [`Runtime::keep_ticking`]),
/// rather than sleeping on for the life of the engine: a process cannot exit
/// before each of its threads has been woken to die, and waking one asleep on
/// an idle CPU took most of a millisecond on the 2-CPU machines this was
/// measured on, at the end of every run.
#[derive(Clone)]
pub(super) struct Ticker {
    engine: wasmtime::EngineWeak,
    state: std::sync::Arc<Mutex<TickerState>>,
}

#[derive(Default)]
struct TickerState {
    /// The stores running.
    running: usize,
    /// How long the thread goes on once no store runs, for the next run.
    linger: Duration,
    /// Since when no store runs.
    idle_since: Option<std::time::Instant>,
    /// The ticking thread, if there is one: to wake when it is to stop.
    thread: Option<std::thread::Thread>,
    /// Which ticking thread is the current one: a thread whose generation
    /// has passed returns (without ticking again).
    generation: u64,
}

/// One running store's hold on the [`Ticker`]: the epoch advances while a
/// hold is alive.
pub(super) struct TickerHold(Ticker);

impl Ticker {
    pub(super) fn new(engine: &Engine) -> Ticker {
        Ticker {
            engine: engine.weak(),
            state: std::sync::Arc::default(),
        }
    }

    /// Keep the epoch advancing until the hold is dropped.
    pub(super) fn hold(&self) -> anyhow::Result<TickerHold> {
        let mut state = self.state.lock().expect("not poisoned");
        state.running += 1;
        state.idle_since = None;
        if state.thread.is_none() {
            state.generation += 1;
            let generation = state.generation;
            let ticker = self.clone();
            let spawned = std::thread::Builder::new()
                .name("runbook-deadline".into())
                .spawn(move || ticker.tick(generation));
            match spawned {
                Ok(handle) => state.thread = Some(handle.thread().clone()),
                Err(e) => {
                    state.running -= 1;
                    return Err(anyhow::Error::from(e)
                        .context("cannot start the thread that enforces run deadlines"));
                }
            }
        }
        Ok(TickerHold(self.clone()))
    }

    fn tick(&self, generation: u64) {
        loop {
            {
                let Ok(mut state) = self.state.lock() else {
                    return;
                };
                if state.generation != generation {
                    return;
                }
                if state
                    .idle_since
                    .is_some_and(|since| since.elapsed() >= state.linger)
                {
                    state.generation += 1;
                    state.thread = None;
                    return;
                }
            }
            let Some(engine) = self.engine.upgrade() else {
                return;
            };
            engine.increment_epoch();
            drop(engine);
            std::thread::park_timeout(TICK);
        }
    }
}

impl Drop for TickerHold {
    fn drop(&mut self) {
        let Ok(mut state) = self.0.state.lock() else {
            return;
        };
        state.running -= 1;
        if state.running == 0 {
            state.idle_since = Some(std::time::Instant::now());
            if state.linger.is_zero()
                && let Some(thread) = state.thread.take()
            {
                state.generation += 1;
                thread.unpark();
            }
        }
    }
}

/// A process-wide runtime, for callers that run many runbooks (tests, benches).
pub fn shared_runtime() -> anyhow::Result<&'static Runtime> {
    static RT: OnceLock<Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = Runtime::new()?.keep_ticking(Duration::from_secs(1));
    Ok(RT.get_or_init(|| rt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_of(ticker: &Ticker) -> Option<std::thread::ThreadId> {
        ticker.state.lock().unwrap().thread.as_ref().map(|t| t.id())
    }

    #[test]
    fn the_ticker_thread_ends_with_the_last_run_or_after_its_linger() {
        let engine = Engine::new(&super::super::engine_config::engine_config()).unwrap();
        // No linger (a command that runs once): the thread ends with the run.
        let ticker = Ticker::new(&engine);
        let first = ticker.hold().unwrap();
        let second = ticker.hold().unwrap();
        let id = thread_of(&ticker).expect("ticking");
        drop(first);
        assert_eq!(thread_of(&ticker), Some(id), "one run still holds it");
        drop(second);
        assert_eq!(thread_of(&ticker), None);
        let again = ticker.hold().unwrap();
        assert!(thread_of(&ticker).is_some_and(|t| t != id), "a new thread");
        drop(again);

        // With a linger (runbook after runbook): the thread serves the next
        // run, then ends once none has run for that long.
        let ticker = Ticker::new(&engine);
        ticker.state.lock().unwrap().linger = Duration::from_millis(50);
        drop(ticker.hold().unwrap());
        let id = thread_of(&ticker).expect("lingering");
        drop(ticker.hold().unwrap());
        assert_eq!(thread_of(&ticker), Some(id), "reused");
        let started = std::time::Instant::now();
        while thread_of(&ticker).is_some() {
            assert!(started.elapsed() < Duration::from_secs(10), "never ended");
            std::thread::sleep(TICK);
        }
        drop(ticker.hold().unwrap());
        assert!(thread_of(&ticker).is_some_and(|t| t != id), "a new thread");
    }
}
