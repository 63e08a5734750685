//! The compiled-component cache: a hit is used, and anything doubtful (a
//! corrupt or foreign entry, another engine configuration, a changed
//! component) is compiled anew, never trusted.

use std::path::PathBuf;

use runbook_host::cache::{Cache, Source};
use runbook_host::sandbox::Runtime;

use crate::support::root;

/// A runbook the binary does not embed (an embedded one never reaches the
/// cache: its machine code comes with the binary).
fn test_runbook() -> Vec<u8> {
    std::fs::read(crate::support::runbook_spec("bench-calls")).unwrap()
}

/// Load `bytes` with a fresh runtime (no in-process memo) on cache `dir`.
fn load(dir: &tempfile::TempDir, bytes: &[u8]) -> Source {
    let rt = Runtime::with_cache(Cache::at(dir.path())).unwrap();
    rt.load("bench-calls", bytes).unwrap().source
}

fn entries(dir: &tempfile::TempDir) -> Vec<PathBuf> {
    std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

#[test]
fn a_component_is_compiled_once_then_loaded_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = test_runbook();
    assert_eq!(load(&dir, &wasm), Source::Compiled);
    assert_eq!(load(&dir, &wasm), Source::Cache);
    assert_eq!(entries(&dir).len(), 1);
}

#[test]
fn a_corrupt_entry_is_detected_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = test_runbook();
    load(&dir, &wasm);
    let entry = entries(&dir).remove(0);
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();
    assert_eq!(
        load(&dir, &wasm),
        Source::Compiled,
        "the flipped byte is caught"
    );
    assert_eq!(load(&dir, &wasm), Source::Cache, "and the entry rebuilt");
    // Truncated (a torn write): the same.
    std::fs::write(&entry, &bytes[..10]).unwrap();
    assert_eq!(load(&dir, &wasm), Source::Compiled);
}

#[test]
fn an_entry_without_its_digest_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = test_runbook();
    load(&dir, &wasm);
    let entry = entries(&dir).remove(0);
    std::fs::remove_file(entry.with_extension("sum")).unwrap();
    assert_eq!(load(&dir, &wasm), Source::Compiled);
    assert_eq!(load(&dir, &wasm), Source::Cache, "rebuilt with its digest");
}

#[cfg(unix)]
#[test]
fn an_entry_others_can_write_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let wasm = test_runbook();
    load(&dir, &wasm);
    let entry = entries(&dir).remove(0);
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(load(&dir, &wasm), Source::Compiled);
}

#[test]
fn a_changed_component_or_engine_never_matches_an_old_entry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path());
    let engine = wasmtime::Engine::default();
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    let other = wasmtime::Engine::new(&config).unwrap();
    let a = cache.entry(&engine, &Cache::key(b"a")).unwrap();
    assert_ne!(
        a,
        cache.entry(&engine, &Cache::key(b"b")).unwrap(),
        "another component"
    );
    assert_ne!(
        a,
        cache.entry(&other, &Cache::key(b"a")).unwrap(),
        "another engine"
    );
}

#[cfg(unix)]
#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let wasm = test_runbook();
    load(&dir, &wasm);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(load(&dir, &wasm), Source::Compiled);
}

#[cfg(unix)]
#[test]
fn an_entry_behind_a_link_or_under_another_key_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = test_runbook();
    load(&dir, &wasm);
    let entry = entries(&dir).remove(0);
    let elsewhere = dir.path().join("elsewhere.bin");
    std::fs::rename(&entry, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &entry).unwrap();
    assert_eq!(
        load(&dir, &wasm),
        Source::Compiled,
        "a link is not followed"
    );
    // A valid entry copied to another component's key is not used for it.
    let clock = std::fs::read(crate::support::runbook_spec("clock-reader")).unwrap();
    let clock_key = Cache::key(&clock);
    let name = entry.file_name().unwrap().to_str().unwrap();
    let engine_part = name.split_once('-').unwrap().1;
    let foreign = dir.path().join(format!("{clock_key}-{engine_part}"));
    std::fs::copy(&elsewhere, &foreign).unwrap();
    // With its digest too: the digest covers the key it was written for.
    std::fs::copy(entry.with_extension("sum"), foreign.with_extension("sum")).unwrap();
    let rt = Runtime::with_cache(Cache::at(dir.path())).unwrap();
    let loaded = rt.load("clock-reader", &clock).unwrap();
    assert_eq!(loaded.source, Source::Compiled);
    assert_eq!(loaded.manifest.name, "clock-reader");
}

#[test]
fn a_shipped_runbook_is_never_compiled_nor_cached_its_code_came_with_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let path = runbook_host::project::Project::find(Some(&root()))
        .unwrap()
        .unwrap()
        .component("mfa-recovery", &mut |m| eprintln!("{m}"))
        .unwrap();
    let checkout_build = std::fs::read(path).unwrap();
    assert_eq!(
        Some(checkout_build.as_slice()),
        runbook_host::embedded::component("mfa-recovery"),
        "the checkout builds the embedded component, byte for byte"
    );
    assert_eq!(load(&dir, &checkout_build), Source::Precompiled);
    assert!(entries(&dir).is_empty(), "nothing compiled, nothing cached");
}
