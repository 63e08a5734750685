//! The shipped runbooks, embedded in the binary: `host/build.rs` builds
//! `runbooks/` from source (reproducibly) when the host is built, so an
//! installed `runbook` runs them with no Rust toolchain and no checkout.
//!
//! They are trusted as part of the binary: the same build, from the same
//! reviewed source, produced both.

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The component of the embedded runbook `name`.
pub fn component(name: &str) -> Option<&'static [u8]> {
    EMBEDDED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}

/// The names of the embedded runbooks, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, _)| *name)
}
