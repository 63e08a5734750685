//! `runbook show`: a journal as a transcript for people, or JSON for machines.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use runbook_host::exit;
use runbook_host::journal::{Partial, Record};
use runbook_host::transcript::{self, MAX_TEXT_CHARS, printable, printable_within};

/// Show a journal: one line per call (index, operation, key arguments,
/// outcome) and how the run ended. The journal is verified first. A journal
/// without a footer (the run crashed or was killed) is shown as far as it
/// goes, under a banner, and exits 7.
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
