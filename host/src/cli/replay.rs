//! `runbook replay`: re-run the recorded runbook against a journal, offline.

use std::path::{Path, PathBuf};

use clap::Args;
use runbook_host::exit;
use runbook_host::fleet::{self, Fleet, FleetError};
use runbook_host::journal::{Journal, first_kind};
use runbook_host::manifest::is_runbook_name;
use runbook_host::offline;
use runbook_host::project;
use runbook_host::sandbox::shared_runtime;
use runbook_host::transcript::{self, printable, printable_path};

/// Replay a journal: run the recorded runbook (or --runbook) with the recorded
/// parameters, answer every call from the journal, and stop at the first call
/// that differs. Nothing is sent to AWS. A fleet journal is verified with
/// every target journal it names, and each of those is replayed.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The journal to replay (verified first).
    journal: PathBuf,

    /// Replay this runbook (name or .wasm path) instead of the recorded one,
    /// e.g. a changed runbook against an old recording.
    #[arg(long, value_name = "NAME|PATH")]
    runbook: Option<String>,

    /// The project checkout holding runbooks/ (default: found from the
    /// current directory).
    #[arg(long, value_name = "DIR")]
    runbooks: Option<PathBuf>,

    /// Refuse the runbook (exit 8) unless its component carries a valid
    /// signature by a key this allowed_signers file lists, as `runbook run
    /// --trusted-signers` does.
    #[arg(long, value_name = "FILE")]
    trusted_signers: Option<PathBuf>,

    /// The component's signature (default: COMPONENT.sig beside a --runbook
    /// given by path; a runbook given by name needs this flag).
    #[arg(long, value_name = "FILE")]
    signature: Option<PathBuf>,
}

pub fn main(args: ReplayArgs) -> anyhow::Result<u8> {
    if first_kind(&args.journal).as_deref() == Some(fleet::HEADER_KIND) {
        return replay_fleet(&args);
    }
    let journal = match Journal::read(&args.journal) {
        Ok(j) => j,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::JOURNAL_INVALID);
        }
    };
    replay_journal(&args, &args.journal, &journal)
}

/// Replay a fleet journal: verify it and every target journal it names
/// (exit 7 naming the first bad one), then replay each target's journal in
/// turn. 0 if every replay matched; else 6 if any diverged, or the first
/// other failure's code; the targets that did not match are named.
fn replay_fleet(args: &ReplayArgs) -> anyhow::Result<u8> {
    let fleet_path = &args.journal;
    let verified = Fleet::read(fleet_path)
        .map_err(FleetError::from)
        .and_then(|f| Ok((f.verify_targets(Fleet::dir_of(fleet_path))?, f)));
    let (targets, fleet) = match verified {
        Ok(v) => v,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::JOURNAL_INVALID);
        }
    };
    let mut failed: Vec<(String, u8)> = Vec::new();
    for t in &targets {
        let target = fleet.header.targets[t.index as usize].describe();
        outln!("== {target}: {}", printable_path(&t.path));
        let code = match replay_journal(args, &t.path, &t.journal) {
            Ok(code) => code,
            Err(e) => {
                super::out::error(format_args!("{e:#}"));
                exit::HOST_ERROR
            }
        };
        if code != exit::SUCCESS {
            failed.push((target, code));
        }
    }
    let not_run = fleet.header.targets.len() - targets.len();
    if failed.is_empty() {
        outln!(
            "fleet replay matched: all {} target journal(s) of {} replayed as recorded{}",
            targets.len(),
            printable_path(fleet_path),
            if not_run > 0 {
                format!(" ({not_run} target(s) did not run and have no journal)")
            } else {
                String::new()
            }
        );
        return Ok(exit::SUCCESS);
    }
    let diverged = failed.iter().any(|(_, c)| *c == exit::REPLAY_DIVERGED);
    for (target, code) in &failed {
        errln!(
            "{target}: {}",
            if *code == exit::REPLAY_DIVERGED {
                "replay diverged".to_owned()
            } else {
                format!("replay failed (exit {code})")
            }
        );
    }
    errln!(
        "fleet replay of {}: {} of {} target(s) did not match",
        printable_path(fleet_path),
        failed.len(),
        targets.len()
    );
    Ok(if diverged {
        exit::REPLAY_DIVERGED
    } else {
        failed[0].1
    })
}

/// Replay one verified run journal, the file at `path`: the exit code.
fn replay_journal(args: &ReplayArgs, path: &Path, journal: &Journal) -> anyhow::Result<u8> {
    let recorded = &journal.header.runbook;
    let python = journal
        .header
        .sdk_version
        .as_deref()
        .is_some_and(|v| v.ends_with(runbook_host::python::SDK_SUFFIX));
    if args.runbook.is_none() && python {
        super::out::error(format_args!(
            "{}:1: the journal was recorded from a Python runbook ('{}', sha256 {}), which is found by its directory, not by name: replay it with --runbook PATH (the directory holding its runbook.toml and app.py)",
            printable_path(path),
            printable(recorded),
            printable(&journal.header.wasm_sha256),
        ));
        return Ok(exit::HOST_ERROR);
    }
    let mut say = |m: &str| super::out::say(m);
    let found = match &args.runbook {
        // The operator chose: a name or a path.
        Some(spec) => project::find_runbook(spec, args.runbooks.as_deref(), &mut say),
        // A journal is untrusted input: the runbook it names is looked up by
        // name (in the runbooks directory, then in the binary), never read as
        // a path (a header naming /dev/zero made the host read it).
        None if !is_runbook_name(recorded) => {
            super::out::error(format_args!(
                "{}:1: the journal names the runbook '{}', which is not a runbook name (lowercase letters, digits and '-'); the runbook of a journal is looked up by name in the project's runbooks/, never as a path: pass --runbook NAME|PATH to choose the component",
                printable_path(path),
                printable(recorded)
            ));
            return Ok(exit::HOST_ERROR);
        }
        // Of the components with that name, the one the journal recorded:
        // a checkout's may be an author's change, the binary's is not.
        None => project::named_runbooks(recorded, args.runbooks.as_deref(), &mut say, false).map(
            |mut all| {
                let at = all
                    .iter()
                    .position(|f| f.sha256() == journal.header.wasm_sha256)
                    .unwrap_or(0);
                all.swap_remove(at)
            },
        ),
    };
    let found = found.map_err(|e| {
        e.context(format!(
            "{}:1: the runbook '{}' the journal names cannot be loaded; pass --runbook NAME|PATH",
            printable_path(path),
            printable(recorded)
        ))
    })?;
    // Before any of the component is parsed: its signature, if required.
    let trust = super::run::Trust {
        trusted_signers: args.trusted_signers.clone(),
        signature: args.signature.clone(),
        sign_journal: None,
    };
    if let Err((code, message)) = trust.check(
        args.runbook.as_deref().and_then(project::component_file),
        &found,
    ) {
        super::out::error(message);
        return Ok(code);
    }
    let what = &found.what;
    let rt = shared_runtime()?;
    let loaded = rt.load(what, &found.bytes)?;
    if args.runbook.is_none() && loaded.sha256 != journal.header.wasm_sha256 {
        super::out::error(format_args!(
            "{what} (sha256 {}, {}) is not the component recorded in {} (sha256 {}): the runbook changed since the recording; replay it anyway with --runbook {}",
            loaded.sha256,
            found.source,
            printable_path(path),
            printable(&journal.header.wasm_sha256),
            printable(recorded)
        ));
        return Ok(exit::REPLAY_DIVERGED);
    }
    if args.runbook.is_some() && loaded.sha256 != journal.header.wasm_sha256 {
        super::out::say(&format!(
            "note: replaying {what} (sha256 {}), not the component recorded (sha256 {})",
            loaded.sha256,
            printable(&journal.header.wasm_sha256)
        ));
    }
    loaded
        .manifest
        .check_params(&journal.header.parameters)
        .map_err(anyhow::Error::msg)?;
    let run = offline::replay(
        rt,
        &loaded,
        &path.display().to_string(),
        journal,
        offline::Replay::default(),
    )?;
    // The transcript escapes every value the journal and the runbook supplied.
    out!("{}", transcript::render(run.journal.records()));
    if run.exit_code == exit::REPLAY_DIVERGED {
        errln!("replay of {} diverged", printable_path(path));
        return Ok(exit::REPLAY_DIVERGED);
    }
    if run.exit_code == exit::HOST_ERROR || run.exit_code == exit::JOURNAL_INVALID {
        super::out::error(transcript::outcome_line(&run.outcome));
        return Ok(run.exit_code);
    }
    outln!(
        "replay matched the recording: {} call(s); recorded outcome: {}",
        journal.footer.calls,
        transcript::outcome_line(&journal.footer.outcome)
    );
    Ok(exit::SUCCESS)
}
