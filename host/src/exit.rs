//! The exit codes of the `runbook` binary: part of its interface, documented
//! in the README's table, and the one place they are defined.

/// The runbook finished and succeeded (or a replay matched).
pub const SUCCESS: u8 = 0;
/// The runbook ran and reported a failure.
pub const RUNBOOK_FAILED: u8 = 1;
/// The command line is wrong.
pub const USAGE: u8 = 2;
/// The host could not do its part: load, build, configure, journal.
pub const HOST_ERROR: u8 = 3;
/// The runbook trapped, panicked, or hit a sandbox limit.
pub const TRAPPED: u8 = 4;
/// A change needed consent that was not given.
pub const CONSENT_REFUSED: u8 = 5;
/// A replay diverged from its recording.
pub const REPLAY_DIVERGED: u8 = 6;
/// A journal failed verification.
pub const JOURNAL_INVALID: u8 = 7;
/// The component has no valid signature by a signer in --trusted-signers:
/// refused before any of it was parsed or ran.
pub const SIGNATURE_REFUSED: u8 = 8;
/// A fleet run (`--targets`, `--accounts`) finished, and one target or more
/// did not succeed (or was not run after `--max-failures`): the others did.
pub const SOME_TARGETS_FAILED: u8 = 9;
