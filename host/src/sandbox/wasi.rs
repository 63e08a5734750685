//! The locked-down WASI a Rust `wasm32-wasip2` runbook links even when it
//! never uses it: no preopens, no environment, no sockets, a frozen clock,
//! seeded randomness, stdout and stderr captured (into the journal, later).

use std::time::Duration;

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// The WASI a runbook gets: no preopened directories, no environment or
/// arguments, no sockets or name lookups, a frozen clock, seeded randomness;
/// stdout and stderr go to these pipes (bounded by the log budget).
pub(super) fn locked_down(stdout: &MemoryOutputPipe, stderr: &MemoryOutputPipe) -> WasiCtx {
    WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .insecure_random_seed(0)
        .secure_random(SeededRandom(0x5eed))
        .build()
}

/// A wall clock frozen at the epoch: a runbook that reads time through WASI
/// instead of the recorded `clock` import gets the same answer every run.
pub(super) struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Deterministic "secure" randomness: a runbook has no business with real
/// entropy, and replay must see the same bytes. (SplitMix64.)
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
