//! The compiled-component cache: a runbook is compiled once and later runs load
//! the machine code instead of compiling again.
//!
//! Entries live in the user's cache directory (`RUNBOOK_CACHE_DIR` overrides),
//! keyed by the component's sha256 and the engine's compatibility hash, so a
//! changed component or a different engine configuration never matches.
//!
//! Why the bytes are trusted: `Component::deserialize` runs whatever machine
//! code it is given, so only files this host wrote may reach it. The cache is
//! used only if its directory is a real directory owned by the current user
//! and writable by no one else (it is created 0700). An entry is opened
//! without following links and used only if the opened file is owned by the
//! current user, writable by no one else, starts with its own key, and its
//! payload matches the sha256 stored with it (a torn write, a truncation, bit
//! rot or an entry moved to another key is caught; it is then rebuilt).
//! Someone who can write as this user can also replace the `runbook` binary
//! itself, so that is the boundary.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// How a component was obtained, for benchmarks and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Loaded from a cache entry.
    Cache,
    /// Compiled now (and stored, if the cache is writable).
    Compiled,
}

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: Option<PathBuf>,
}

impl Cache {
    /// The default cache: `RUNBOOK_CACHE_DIR`, or `runbook/components` under
    /// the user's cache directory. `RUNBOOK_CACHE_DIR=` (empty) disables it.
    pub fn default_location() -> Cache {
        let dir = match std::env::var_os("RUNBOOK_CACHE_DIR") {
            Some(d) if d.is_empty() => None,
            Some(d) => Some(PathBuf::from(d)),
            None => dirs::cache_dir().map(|d| d.join("runbook").join("components")),
        };
        Cache { dir }
    }

    /// A cache in `dir`.
    pub fn at(dir: &Path) -> Cache {
        Cache {
            dir: Some(dir.to_owned()),
        }
    }

    /// No cache: always compile.
    pub fn disabled() -> Cache {
        Cache { dir: None }
    }

    /// The entry for a component with this sha256 under this engine.
    pub fn entry(&self, engine: &Engine, wasm_sha256: &str) -> Option<PathBuf> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{wasm_sha256}-{:016x}.cwasm", h.finish())))
    }

    /// The compiled component: from the cache if a trustworthy entry exists,
    /// else compiled from `bytes` and stored. Cache problems are never fatal.
    pub fn load(
        &self,
        engine: &Engine,
        wasm_sha256: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, Source)> {
        let entry = self.entry(engine, wasm_sha256);
        if let Some(path) = &entry
            && let Some(component) = read_entry(engine, path)
        {
            return Ok((component, Source::Cache));
        }
        let component = Component::new(engine, bytes)?;
        if let Some(path) = &entry {
            // Best effort: a read-only or full disk only costs speed.
            let _ = write_entry(path, &component);
        }
        Ok((component, Source::Compiled))
    }
}

/// What an entry starts with: a format tag and the entry's own key, so an
/// entry renamed or copied to another key is refused.
fn entry_header(path: &Path) -> Option<Vec<u8>> {
    let key = path.file_stem()?.to_str()?;
    Some(format!("runbook-cwasm-1 {key}\n").into_bytes())
}

fn read_entry(engine: &Engine, path: &Path) -> Option<Component> {
    if !private_dir(path.parent()?) {
        return None;
    }
    // Open without following a link, then check the file actually opened.
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        rustix::fs::OFlags::NOFOLLOW.bits() as i32,
    );
    let mut file = options.open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || !owned_privately(&meta) {
        return None;
    }
    let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::io::Read::read_to_end(&mut file, &mut data).ok()?;
    let header = entry_header(path)?;
    let rest = data.strip_prefix(header.as_slice());
    let Some((digest, payload)) = rest.and_then(|r| r.split_at_checked(32)) else {
        let _ = std::fs::remove_file(path);
        return None;
    };
    let mut hasher = Sha256::new();
    hasher.update(&header);
    hasher.update(payload);
    if hasher.finalize().as_slice() != digest {
        let _ = std::fs::remove_file(path);
        return None;
    }
    // SAFETY: `payload` is machine code this host compiled and wrote (see the
    // module docs for why the entry is trusted), and its digest matched, so it
    // is byte for byte what `Component::serialize` produced for this key.
    // wasmtime itself refuses bytes from another engine version or
    // configuration.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, payload) };
    match component {
        Ok(c) => Some(c),
        Err(_) => {
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

/// The cache directory is used only if it is a real directory (not a link),
/// owned by this user, and writable by no one else.
#[cfg(unix)]
pub(crate) fn private_dir(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(dir).is_ok_and(|m| {
        m.is_dir() && m.uid() == rustix::process::geteuid().as_raw() && m.mode() & 0o022 == 0
    })
}

#[cfg(not(unix))]
pub(crate) fn private_dir(_dir: &Path) -> bool {
    true
}

#[cfg(unix)]
pub(crate) fn owned_privately(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 == 0
}

#[cfg(not(unix))]
pub(crate) fn owned_privately(_meta: &std::fs::Metadata) -> bool {
    true
}

fn write_entry(path: &Path, component: &Component) -> std::io::Result<()> {
    let dir = path
        .parent()
        .expect("entries are inside the cache directory");
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    if !private_dir(dir) {
        return Err(std::io::Error::other(
            "the cache directory is writable by others or not this user's",
        ));
    }
    let payload = component.serialize().map_err(std::io::Error::other)?;
    let header = entry_header(path).ok_or_else(|| std::io::Error::other("a bad entry name"))?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), unique()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    let mut hasher = Sha256::new();
    hasher.update(&header);
    hasher.update(&payload);
    f.write_all(&header)?;
    f.write_all(&hasher.finalize())?;
    f.write_all(&payload)?;
    f.sync_all()?;
    drop(f);
    // Atomic: readers see the old entry, none, or the whole new one.
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine configured as the runtime's, with or without fuel.
    fn engine(fuel: bool) -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.concurrency_support(false);
        config.consume_fuel(fuel);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn code_compiled_without_fuel_is_cached_under_another_key() {
        let cache = Cache::at(Path::new("/nonexistent/cache"));
        let sha = "00".repeat(32);
        assert_ne!(
            cache.entry(&engine(true), &sha),
            cache.entry(&engine(false), &sha),
            "fuel changes the machine code, so it must change the key"
        );
        assert_eq!(
            cache.entry(&engine(true), &sha),
            cache.entry(&engine(true), &sha)
        );
    }
}
