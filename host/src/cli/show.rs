//! `runbook show`: a journal as a transcript for people, or JSON for machines.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use runbook_host::journal::{Journal, Record};
use runbook_host::sandbox::exit;
use runbook_host::transcript::{self, printable};

/// Show a journal: one line per call (index, operation, key arguments,
/// outcome) and how the run ended. The journal is verified first.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The journal to show.
    journal: PathBuf,

    /// The output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    /// A transcript for people.
    Text,
    /// The header, the calls and the outcome as one JSON document.
    Json,
}

pub fn main(args: ShowArgs) -> anyhow::Result<u8> {
    let j = match Journal::read(&args.journal) {
        Ok(j) => j,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::JOURNAL_INVALID);
        }
    };
    match args.output {
        Output::Text => {
            // Every value a journal supplies is escaped and cut.
            out!("{}", transcript::render(&j.records));
            outln!(
                "started {}, finished {}; last line sha256 {}",
                printable(&j.header.started_at),
                printable(&j.footer.finished_at),
                j.last_hash
            );
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
                "outcome": j.footer.outcome,
                "last_hash": j.last_hash,
            });
            outln!("{}", serde_json::to_string_pretty(&doc)?);
        }
    }
    Ok(exit::SUCCESS)
}
