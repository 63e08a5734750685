//! The compiled-component cache: a runbook is compiled once and later runs load
//! the machine code instead of compiling again.
//!
//! Entries live in the user's cache directory (`RUNBOOK_CACHE_DIR` overrides),
//! keyed by the component's BLAKE3 digest ([`Cache::key`]) and the engine's
//! compatibility hash, so a changed component or a different engine
//! configuration never matches. (The key is BLAKE3, several times faster than
//! SHA-256, so that a large component's entry can be looked up beside the
//! hashing of its identity, its sha256: see `Runtime::load`.)
//!
//! Why the bytes are trusted: `Component::deserialize` runs whatever machine
//! code it is given, so only files this host wrote may reach it. The cache is
//! used only if its directory is a real directory owned by the current user
//! and writable by no one else (it is created 0700). An entry (`KEY.cwasm`,
//! what `Component::serialize` wrote, and `KEY.sum`, the BLAKE3 digest of
//! the key and that payload) is opened without following links and used only if both
//! files are owned by the current user, writable by no one else, and the
//! payload matches the digest (a torn write, a truncation, bit rot or an entry
//! moved to another key is caught; it is then rebuilt). The payload is mapped,
//! not read: its machine code and memory images page in as they are used.
//! Someone who can write as this user can also replace the `runbook` binary
//! itself, so that is the boundary.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// How a component was obtained, for benchmarks and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Loaded from a cache entry.
    Cache,
    /// Compiled now (and stored, if the cache is writable).
    Compiled,
    /// Compiled when the binary was built (a shipped runbook).
    Precompiled,
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

    /// What a component's entries are keyed by: the BLAKE3 digest of its
    /// bytes, in hex.
    pub fn key(wasm: &[u8]) -> String {
        blake3::hash(wasm).to_hex().to_string()
    }

    /// The entry for a component with this [`Cache::key`] under this engine.
    pub fn entry(&self, engine: &Engine, key: &str) -> Option<PathBuf> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{key}-{:016x}.cwasm", h.finish())))
    }

    /// The compiled component from a trustworthy entry for `key`, if there
    /// is one.
    pub fn get(&self, engine: &Engine, key: &str) -> Option<Component> {
        read_entry(engine, &self.entry(engine, key)?)
    }

    /// Compile `bytes` (whose key is `key`) and store the machine code.
    /// Cache problems are never fatal.
    pub fn compile(&self, engine: &Engine, key: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
        let component = Component::new(engine, bytes)?;
        if let Some(path) = self.entry(engine, key) {
            // Best effort: a read-only or full disk only costs speed.
            let _ = write_entry(&path, &component);
        }
        Ok(component)
    }
}

/// What an entry's digest covers before its payload: a format tag and the
/// entry's own key, so an entry renamed or copied to another key is refused.
fn entry_header(path: &Path) -> Option<Vec<u8>> {
    let key = path.file_stem()?.to_str()?;
    Some(format!("runbook-cwasm-4 {key}\n").into_bytes())
}

/// Where an entry's digest is kept: beside it, `KEY.sum`.
fn sum_path(path: &Path) -> PathBuf {
    path.with_extension("sum")
}

/// Open `path` without following a link, and only if the opened file is a
/// regular file owned by this user and writable by no one else.
pub(crate) fn open_private(path: &Path) -> Option<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        rustix::fs::OFlags::NOFOLLOW.bits() as i32,
    );
    let file = options.open(path).ok()?;
    let meta = file.metadata().ok()?;
    (meta.is_file() && owned_privately(&meta)).then_some(file)
}

/// The BLAKE3 digest of `header` then everything `file` holds, read in
/// small pieces: a 40 MB entry (a Python runbook's) is hashed without first
/// being copied into memory.
fn digest_of(header: &[u8], file: &mut impl std::io::Read) -> std::io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(header);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(file, &mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buf[..n]);
    }
}

fn read_entry(engine: &Engine, path: &Path) -> Option<Component> {
    if !private_dir(path.parent()?) {
        return None;
    }
    let discard = || {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(sum_path(path));
    };
    let mut file = open_private(path)?;
    let mut recorded = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(open_private(&sum_path(path))?, 128),
        &mut recorded,
    )
    .ok()?;
    let header = entry_header(path)?;
    let digest = digest_of(&header, &mut file).ok()?;
    if recorded.trim_end() != digest.to_hex().as_str() {
        discard();
        return None;
    }
    // wasmtime maps the file (the machine code is paged in as it runs, and a
    // memory's initial image maps from the file too). It opens it by path:
    // on Linux the path of the descriptor just checked and hashed, so a file
    // swapped in meanwhile is not what is mapped.
    #[cfg(target_os = "linux")]
    let mapped = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    ));
    #[cfg(not(target_os = "linux"))]
    let mapped = path.to_owned();
    // SAFETY: the file is machine code this host compiled and wrote (see the
    // module docs for why the entry is trusted), and its digest matched, so it
    // is byte for byte what `Component::serialize` produced for this key.
    // Entries are never changed in place (a new one is renamed over the old),
    // so the mapped file does not change under the component. wasmtime
    // itself refuses bytes from another engine version or configuration.
    #[allow(unsafe_code)]
    let mapped = unsafe { Component::deserialize_file(engine, &mapped) };
    if let Ok(c) = mapped {
        return Some(c);
    }
    // Mapping can fail for want of /proc, descriptors or address space: read
    // the (checked) bytes instead, and discard the entry only if wasmtime
    // refuses them too (another engine, a damaged file).
    let mut bytes = Vec::new();
    std::io::Seek::rewind(&mut file).ok()?;
    std::io::Read::read_to_end(&mut file, &mut bytes).ok()?;
    if digest_of(&header, &mut std::io::Cursor::new(&bytes)).ok()? != digest {
        discard();
        return None;
    }
    // SAFETY: as above; these are the bytes whose digest matched.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, &bytes) };
    match component {
        Ok(c) => Some(c),
        Err(_) => {
            discard();
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
    let mut hasher = blake3::Hasher::new();
    hasher.update(&header);
    hasher.update(&payload);
    let digest = hasher.finalize().to_hex().to_string();
    // The payload first, then its digest: a reader finds either no digest,
    // an old one that does not match (and rebuilds), or the right one over
    // the whole new payload. Each is written whole and renamed into place.
    for (target, bytes) in [
        (path.to_owned(), payload),
        (sum_path(path), digest.into_bytes()),
    ] {
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), unique()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        // Atomic: readers see the old file, none, or the whole new one.
        std::fs::rename(&tmp, &target).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
    }
    Ok(())
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
        let key = Cache::key(b"a component");
        assert_ne!(
            cache.entry(&engine(true), &key),
            cache.entry(&engine(false), &key),
            "fuel changes the machine code, so it must change the key"
        );
        assert_eq!(
            cache.entry(&engine(true), &key),
            cache.entry(&engine(true), &key)
        );
    }
}
