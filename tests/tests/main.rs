//! The one integration-test binary of the project, one `mod` per area.

/// Shared set-up: paths, the `runbook` binary, moto.
mod support;

/// MFA recovery end to end: the real binary, the real SDK over HTTP, moto.
mod e2e;

/// IAM on a bad day: a fault-injecting proxy in front of moto.
mod faults;

/// Bad command lines and bad files: clear messages, documented exit codes,
/// nothing changed.
mod bad_input;

/// The access-key operations: live, dry run, replay, ownership checks.
mod access_keys;

/// The access-key quarantine runbook end to end, with a bystander.
mod quarantine;

/// The multi-account moto world: an Organization, IAM state per account, a
/// role that cannot be assumed.
mod accounts;

/// The MFA audit runbook over an account of 1,000 users.
mod mfa_audit;

/// The user lockout runbook end to end, with a bystander.
mod lockout;

/// Recorded journals replayed offline, and their transcripts.
mod fixtures;

/// Fleet runs: many targets over many accounts, one record.
mod fleet;

/// The configuration file: defaults an organisation sets once, flags over it.
mod config;

/// Reproducible components, and an installed binary with the shipped
/// runbooks embedded.
mod distribution;

/// Damaged journals: verify, replay and show name the file and line.
mod journal;

/// The fleet journal: verify, replay, show and resume over real target journals.
mod fleet_journal;

/// Replays that match, and replays of changed runbooks that must not.
mod replay;

/// Hostile runbooks: capability gating and sandbox limits.
mod sandbox;

/// Python runbooks: the same contract, sandbox, journal and replay.
mod python;

/// Signed runbooks and signed journals, checked both ways against ssh-keygen.
mod signing;

/// The in-process test harness for runbook authors.
mod harness;

/// The compiled-component cache.
mod cache;

/// Recoveries that finish: broken journals, runs that die, IAM on a bad day,
/// and --resume.
mod recovery;

/// The consent prompt on a terminal.
mod terminal;

/// inspect, policy and help: describing a runbook without running it.
mod cli;

/// A closed stdout or stderr (`runbook show J | head`): no command panics.
mod closed_pipes;

/// `run --output json`: one JSON report on stdout, the transcript on stderr.
mod machine_output;
