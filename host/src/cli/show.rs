//! `runbook show`: a journal as a transcript for people, or JSON for machines.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use runbook_host::exit;
use runbook_host::fleet::{self, FleetRecord, PartialFleet, Target};
use runbook_host::journal::{Partial, Record, first_kind};
use runbook_host::transcript::{self, MAX_TEXT_CHARS, printable, printable_path, printable_within};

/// Show a journal: one line per call (index, operation, key arguments,
/// outcome) and how the run ended. The journal is verified first. A journal
/// without a footer (the run crashed or was killed) is shown as far as it
/// goes, under a banner, and exits 7. A fleet journal is shown as a table
/// of its targets: target, account, outcome, changes, journal.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The journal to show.
    journal: PathBuf,

    /// The output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,

    /// Instead of the transcript: for each change the run sent to IAM, the
    /// `aws cloudtrail lookup-events` command that finds AWS's own record of
    /// it (its event, a time window, its request ids).
    #[arg(long, conflicts_with = "output")]
    cloudtrail: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    /// A transcript for people.
    Text,
    /// The header, the calls and the outcome as one JSON document.
    Json,
}

pub fn main(args: ShowArgs) -> anyhow::Result<u8> {
    if first_kind(&args.journal).as_deref() == Some(fleet::HEADER_KIND) {
        return show_fleet(&args);
    }
    let j = match Partial::read(&args.journal) {
        Ok(j) => j,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::JOURNAL_INVALID);
        }
    };
    // What a responder needs to know first about a record that is cut off.
    let banner = j.footer.is_none().then(|| {
        let mut b = format!(
            "INCOMPLETE: {} ends without a footer after line {}: the run crashed, was killed, or could not finish its journal; below is everything it recorded",
            args.journal.display(),
            j.lines
        );
        if j.torn {
            b.push_str(" (a partly written last line was left out)");
        }
        if let Some(c) = j.open_call() {
            b.push_str(&format!(
                "; call {} ({}) has no recorded outcome{}",
                c.index,
                c.request.op(),
                if c.request.is_mutation() {
                    ": it may or may not have reached IAM"
                } else {
                    ""
                }
            ));
        }
        b
    });
    match args.output {
        Output::Text if args.cloudtrail => {
            if let Some(b) = &banner {
                outln!("{}", printable_within(b, MAX_TEXT_CHARS));
            }
            out!("{}", transcript::cloudtrail(&j.records));
        }
        Output::Text => {
            if let Some(b) = &banner {
                outln!("{}", printable_within(b, MAX_TEXT_CHARS));
            }
            // Every value a journal supplies is escaped and cut.
            out!("{}", transcript::render(&j.records));
            match &j.footer {
                Some(f) => outln!(
                    "started {}, finished {}; last line sha256 {}",
                    printable(&j.header.started_at),
                    printable(&f.finished_at),
                    j.last_hash
                ),
                None => outln!(
                    "started {}, no footer; last line sha256 {}",
                    printable(&j.header.started_at),
                    j.last_hash
                ),
            }
        }
        Output::Json => {
            let logs: Vec<_> = j
                .records
                .iter()
                .filter_map(|r| match r {
                    Record::Log(l) => Some(l),
                    _ => None,
                })
                .collect();
            let doc = serde_json::json!({
                "header": j.header,
                "calls": transcript::lines(&j.records),
                "logs": logs,
                "outcome": j.footer.as_ref().map(|f| &f.outcome),
                "complete": j.footer.is_some(),
                "last_hash": j.last_hash,
            });
            outln!("{}", serde_json::to_string_pretty(&doc)?);
        }
    }
    if let Some(b) = banner {
        super::out::say(&b);
        return Ok(exit::JOURNAL_INVALID);
    }
    Ok(exit::SUCCESS)
}

/// The widest an outcome is shown in the fleet table, in characters.
const OUTCOME_CHARS: usize = 80;

/// Show a fleet journal: its header, a table of its targets (target,
/// account, outcome, changes, journal) and its footer. The target journals
/// are not read (`runbook verify` checks them).
fn show_fleet(args: &ShowArgs) -> anyhow::Result<u8> {
    if args.cloudtrail {
        super::out::error(format_args!(
            "{} is a fleet journal: --cloudtrail reads a run's journal; run `runbook show --cloudtrail` on a target's journal",
            printable_path(&args.journal)
        ));
        return Ok(exit::USAGE);
    }
    let f = match PartialFleet::read(&args.journal) {
        Ok(f) => f,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::JOURNAL_INVALID);
        }
    };
    let banner = f.footer.is_none().then(|| {
        format!(
            "INCOMPLETE: fleet journal {} ends without a footer after line {}: the fleet run was killed or is still running{}; `runbook run ... --resume {}` finishes it",
            args.journal.display(),
            f.lines,
            if f.torn {
                " (a partly written last line was left out)"
            } else {
                ""
            },
            args.journal.display()
        )
    });
    let h = &f.header;
    // What the table and the JSON say of each target.
    let status = |t: &Target| -> (&'static str, Option<&fleet::TargetDone>) {
        match (f.done.get(&t.index), f.unfinished.contains_key(&t.index)) {
            (Some(d), _) => ("done", Some(d)),
            (None, true) => ("unfinished", None),
            (None, false) => ("not-run", None),
        }
    };
    match args.output {
        Output::Json => {
            let targets: Vec<_> = h
                .targets
                .iter()
                .map(|t| {
                    let (state, done) = status(t);
                    serde_json::json!({
                        "index": t.index,
                        "account": t.account,
                        "role": t.role,
                        "parameters": t.parameters,
                        "status": state,
                        "exit_code": done.map(|d| d.exit_code),
                        "outcome": done.map(|d| &d.outcome),
                        "changes": done.map(|d| d.changes),
                        "journal": done.map(|d| &d.journal)
                            .or_else(|| f.unfinished.get(&t.index).map(|s| &s.journal)),
                        "last_hash": done.map(|d| &d.last_hash),
                    })
                })
                .collect();
            let mut header = serde_json::to_value(h)?;
            if let Some(o) = header.as_object_mut() {
                o.remove("targets");
            }
            let doc = serde_json::json!({
                "fleet": header,
                "targets": targets,
                "footer": f.footer,
                "complete": f.footer.is_some(),
                "last_hash": f.last_hash,
            });
            outln!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Output::Text => {
            if let Some(b) = &banner {
                outln!("{}", printable_within(b, MAX_TEXT_CHARS));
            }
            let mut policy = format!("concurrency {}", h.concurrency);
            if let Some(r) = h.max_rate {
                policy.push_str(&format!(", at most {r} IAM call(s)/s per account"));
            }
            if let Some(n) = h.max_failures {
                policy.push_str(&format!(", stop after {n} failure(s)"));
            }
            outln!(
                "fleet run of {} {} (sha256 {}) by {}, started {}; {policy}",
                printable(&h.runbook),
                printable(&h.runbook_version),
                printable(&h.wasm_sha256),
                printable(&h.caller),
                printable(&h.started_at)
            );
            let resumed = f
                .records
                .iter()
                .filter(|r| matches!(r, FleetRecord::Resumed(_)))
                .count();
            if resumed > 0 {
                outln!("resumed {resumed} time(s)");
            }
            let mut rows = vec![[
                "TARGET".to_owned(),
                "ACCOUNT".to_owned(),
                "OUTCOME".to_owned(),
                "CHANGES".to_owned(),
                "JOURNAL".to_owned(),
            ]];
            for t in &h.targets {
                let mut target = t.index.to_string();
                for (k, v) in &t.parameters {
                    target.push_str(&format!(" {}={}", printable(k), printable(v)));
                }
                if let Some(r) = &t.role {
                    target.push_str(&format!(" role={}", printable(r)));
                }
                let account = t
                    .account
                    .as_deref()
                    .map_or_else(|| "(caller's)".to_owned(), printable);
                let (outcome, changes, journal) = match status(t) {
                    (_, Some(d)) => (
                        if d.exit_code == 0 {
                            printable_within(&d.outcome, OUTCOME_CHARS)
                        } else {
                            printable_within(
                                &format!("exit {}: {}", d.exit_code, d.outcome),
                                OUTCOME_CHARS,
                            )
                        },
                        d.changes.to_string(),
                        printable(&d.journal),
                    ),
                    ("unfinished", _) => (
                        "started, not finished".to_owned(),
                        "-".to_owned(),
                        printable(&f.unfinished[&t.index].journal),
                    ),
                    _ => ("not run".to_owned(), "-".to_owned(), "-".to_owned()),
                };
                rows.push([target, account, outcome, changes, journal]);
            }
            let widths: Vec<usize> = (0..5)
                .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
                .collect();
            for row in &rows {
                let mut line = String::new();
                for (c, cell) in row.iter().enumerate() {
                    if c == 4 {
                        line.push_str(cell);
                    } else {
                        line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
                    }
                }
                outln!("{}", line.trim_end());
            }
            match &f.footer {
                Some(ft) => outln!(
                    "{} target(s): {} succeeded, {} failed, {} not run; finished {}; last line sha256 {}",
                    h.targets.len(),
                    ft.succeeded,
                    ft.failed,
                    ft.not_run,
                    printable(&ft.finished_at),
                    f.last_hash
                ),
                None => outln!(
                    "{} target(s): {} done, no footer; last line sha256 {}",
                    h.targets.len(),
                    f.done.len(),
                    f.last_hash
                ),
            }
        }
    }
    if let Some(b) = banner {
        super::out::say(&b);
        return Ok(exit::JOURNAL_INVALID);
    }
    Ok(exit::SUCCESS)
}
