//! The locked-down WASI a runbook links: a Rust `wasm32-wasip2` std imports
//! some of it even when unused, and a Python runbook's interpreter
//! (componentize-py) imports clocks, random, a filesystem and sockets too.
//! Each is answered so that nothing leaves the sandbox and a replay sees
//! exactly what the recorded run saw:
//!
//! - no preopened directories (a runbook sees only what its component
//!   carries), no environment, no arguments, no stdin;
//! - clocks that are virtual: the wall clock starts at the instant recorded
//!   in the journal header and, like the monotonic clock, moves only when
//!   the runbook waits (a recorded `clock.sleep`, or a WASI wait, which never
//!   blocks: it moves the virtual time and returns at once, so no host thread
//!   ever sleeps where the deadline cannot reach it);
//! - sockets: wasmtime-wasi refuses TCP and UDP (`allow_tcp(false)`, ...)
//!   before any OS socket is made, and name lookups before any query;
//! - randomness from a seed recorded in the journal header;
//! - stdout and stderr captured into the journal, within the log budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// What a runbook's WASI answers with that must be the same in a replay: the
/// seed of its randomness and the instant its clocks start at. Recorded in
/// the journal header (`wasi`); a journal without it was recorded when the
/// clock was frozen at the epoch and the seed fixed ([`WasiWorld::LEGACY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasiWorld {
    /// The seed of `wasi:random` (secure and insecure) and of the insecure
    /// seed, fresh from the operating system for each live run. Written as
    /// 16 hex digits: a JSON number this large loses digits in many tools.
    /// Anyone holding the journal can reproduce every random byte the run
    /// saw: a runbook has no use for secrets of its own.
    #[serde(with = "hex_u64")]
    pub random_seed: u64,
    /// Where the virtual wall clock starts: the run's start, UTC.
    pub clock_start: WallTime,
}

/// A `u64` as 16 hex digits.
mod hex_u64 {
    pub fn serialize<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:016x}"))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        if text.len() != 16 {
            return Err(serde::de::Error::custom("a seed is 16 hex digits"));
        }
        u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

/// The latest wall-clock start a journal may record: 9999-12-31T23:59:59Z.
const MAX_SECONDS: u64 = 253_402_300_799;

/// A wall-clock instant: seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallTime {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub seconds: u64,
    /// Nanoseconds past `seconds`.
    pub nanoseconds: u32,
}

impl WasiWorld {
    /// What journals recorded before the header said: a clock frozen at
    /// the epoch and the seed `0x5eed`.
    pub const LEGACY: WasiWorld = WasiWorld {
        random_seed: 0x5eed,
        clock_start: WallTime {
            seconds: 0,
            nanoseconds: 0,
        },
    };

    /// A new run's: a seed from the operating system, the clock at now.
    pub fn fresh() -> WasiWorld {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut seed = [0u8; 8];
        // The seed only has to differ between runs (it is recorded, so it
        // protects nothing): a failing OS source falls back to the time.
        let random_seed = match getrandom::fill(&mut seed) {
            Ok(()) => u64::from_le_bytes(seed),
            Err(_) => now.as_nanos() as u64,
        };
        WasiWorld {
            random_seed,
            clock_start: WallTime {
                seconds: now.as_secs(),
                nanoseconds: now.subsec_nanos(),
            },
        }
    }

    /// The world a journal's run had (for its replay, or a resume of it).
    pub fn recorded(header: &crate::journal::Header) -> WasiWorld {
        header.wasi.unwrap_or(WasiWorld::LEGACY)
    }

    /// Why a recorded world cannot be (a journal is untrusted input), if so.
    pub fn check(&self) -> Result<(), String> {
        let WallTime {
            seconds,
            nanoseconds,
        } = self.clock_start;
        if nanoseconds >= 1_000_000_000 || seconds > MAX_SECONDS {
            return Err(format!(
                "the WASI clock start {seconds}.{nanoseconds:09} s is not a time (nanoseconds under a second, before the year 10000)"
            ));
        }
        Ok(())
    }
}

/// The run's virtual time: the wall clock's start and how far the runbook's
/// waits have moved it. Shared by the WASI clocks and the `clock.sleep`
/// import, which moves it by what it waited.
#[derive(Debug)]
pub(crate) struct VirtualTime {
    start: Duration,
    elapsed_ns: AtomicU64,
}

impl VirtualTime {
    pub(crate) fn new(start: WallTime) -> Arc<VirtualTime> {
        // Checked at load (`WasiWorld::check`); saturating all the same, so
        // no recorded value can panic the host.
        let start = Duration::from_secs(start.seconds.min(MAX_SECONDS)).saturating_add(
            Duration::from_nanos(u64::from(start.nanoseconds.min(999_999_999))),
        );
        Arc::new(VirtualTime {
            start,
            elapsed_ns: AtomicU64::new(0),
        })
    }

    /// Nanoseconds since the run started, in virtual time.
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed_ns.load(Ordering::Relaxed)
    }

    /// Move virtual time on by `ns` (saturating: it never wraps back).
    pub(crate) fn advance(&self, ns: u64) {
        let _ = self
            .elapsed_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |e| {
                Some(e.saturating_add(ns))
            });
    }

    /// Move virtual time on to `ns` after the start, if it is not past it.
    fn advance_to(&self, ns: u64) {
        self.elapsed_ns.fetch_max(ns, Ordering::Relaxed);
    }
}

/// The WASI a runbook gets (see the module docs); stdout and stderr go to
/// these pipes (bounded by the log budget).
pub(super) fn locked_down(
    stdout: &MemoryOutputPipe,
    stderr: &MemoryOutputPipe,
    world: WasiWorld,
    time: &Arc<VirtualTime>,
) -> WasiCtx {
    let seed = world.random_seed;
    // Journals from before the header said had an insecure seed of zero.
    let insecure_seed = if world == WasiWorld::LEGACY {
        0
    } else {
        u128::from(seed) << 64 | u128::from(!seed)
    };
    WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .wall_clock(VirtualWall(time.clone()))
        .monotonic_clock(VirtualMonotonic(time.clone()))
        // Three streams from the one recorded seed, each its own.
        .insecure_random_seed(insecure_seed)
        .insecure_random(SeededRandom(seed.rotate_left(32)))
        .secure_random(SeededRandom(seed))
        .build()
}

/// Replace `wasi:clocks/monotonic-clock` (which `add_to_linker_sync` links to
/// real timers) with the virtual one: its waits never block.
pub(super) fn add_virtual_monotonic_clock<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> VirtualClock<'_>,
) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    monotonic_clock::add_to_linker::<T, HasVirtualClock>(linker, view)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The store data the virtual monotonic clock needs.
pub(crate) struct VirtualClock<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) time: &'a Arc<VirtualTime>,
}

pub(super) struct HasVirtualClock;

impl HasData for HasVirtualClock {
    type Data<'a> = VirtualClock<'a>;
}

impl monotonic_clock::Host for VirtualClock<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(self.time.elapsed())
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(1)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let wait = self.table.push(VirtualWait {
            time: Arc::clone(self.time),
            until: when,
        })?;
        subscribe(self.table, wait)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let until = self.time.elapsed().saturating_add(duration);
        self.subscribe_instant(until)
    }
}

/// A WASI wait in virtual time: ready at once, moving the clock to its end.
struct VirtualWait {
    time: Arc<VirtualTime>,
    until: u64,
}

#[async_trait::async_trait]
impl Pollable for VirtualWait {
    async fn ready(&mut self) {
        self.time.advance_to(self.until);
    }
}

/// The wall clock: the recorded start plus virtual time.
struct VirtualWall(Arc<VirtualTime>);

impl wasmtime_wasi::HostWallClock for VirtualWall {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        self.0
            .start
            .saturating_add(Duration::from_nanos(self.0.elapsed()))
    }
}

/// The monotonic clock, as the WASI context reports it to itself.
struct VirtualMonotonic(Arc<VirtualTime>);

impl wasmtime_wasi::HostMonotonicClock for VirtualMonotonic {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        self.0.elapsed()
    }
}

/// Deterministic randomness from a recorded seed: a runbook has no business
/// with real entropy, and replay must see the same bytes. (SplitMix64.)
pub(super) struct SeededRandom(pub(super) u64);

impl rand::TryRng for SeededRandom {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}
