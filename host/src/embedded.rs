//! The shipped runbooks, embedded in the binary: `host/build.rs` builds
//! `runbooks/` from source (reproducibly) when the host is built, so an
//! installed `runbook` runs them with no Rust toolchain and no checkout, and
//! precompiles each for the runtime's engine configuration, so no run of one
//! compiles it: not the first after an install, nor one after a cache wipe.
//!
//! They are trusted as part of the binary: the same build, from the same
//! reviewed source, produced both the components and their machine code.

/// One embedded runbook.
#[derive(Debug)]
pub struct Embedded {
    /// Its name.
    pub name: &'static str,
    /// Its component.
    pub component: &'static [u8],
    /// The sha256 of `component`, hex.
    pub sha256: &'static str,
    /// `component` compiled by this build for the runtime's engine.
    pub precompiled: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The component of the embedded runbook `name`.
pub fn component(name: &str) -> Option<&'static [u8]> {
    EMBEDDED
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.component)
}

/// The names of the embedded runbooks, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|e| e.name)
}

/// The machine code this build compiled for the component whose sha256 is
/// `sha256`, if it is one of the embedded runbooks (wherever its bytes came
/// from: a checkout builds the same component, byte for byte).
pub fn precompiled(sha256: &str) -> Option<&'static [u8]> {
    EMBEDDED
        .iter()
        .find(|e| e.sha256 == sha256)
        .map(|e| e.precompiled)
}
