//! The command line: one file per subcommand. The `///` on each item is its
//! `--help` text.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

// First: its macros (`outln!`, `errln!`, ...) are for the modules below.
#[macro_use]
pub mod out;

mod config;
mod fleet;
mod inspect;
mod list;
mod new;
mod params;
mod policy;
mod replay;
mod run;
mod show;
mod sign;
mod verify;

/// Run reviewed AWS IAM recovery procedures ("runbooks") as sandboxed
/// WebAssembly components, with a tamper-evident journal of every call.
#[derive(Debug, Parser)]
#[command(name = "runbook", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(Box<run::RunArgs>),
    Replay(replay::ReplayArgs),
    Verify(verify::VerifyArgs),
    Show(show::ShowArgs),
    Inspect(inspect::InspectArgs),
    Policy(policy::PolicyArgs),
    New(new::NewArgs),
    List(list::ListArgs),
    Config(config::ConfigArgs),
    Sign(sign::SignArgs),
}

/// Parse `argv` and run the subcommand; returns the exit code.
pub fn main(argv: Vec<OsString>) -> anyhow::Result<u8> {
    out::check_argv(&argv);
    // A run sets up AWS from its first moment, beside everything else.
    let early = (argv.get(1).is_some_and(|sub| sub == "run"))
        .then(|| run::early_aws(&argv))
        .flatten();
    // `run` takes the runbook's own parameters as flags, declared in its
    // manifest: find the runbook first, then parse with its flags added.
    if let Some((sub, spec)) = params::runbook_in(&argv) {
        return match sub.as_str() {
            "policy" => policy::main(argv, &spec),
            _ => run::main(argv, &spec, early),
        };
    }
    let matches = out::command(Cli::command())
        .try_get_matches_from(argv)
        .unwrap_or_else(|e| out::clap_exit(e));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| out::clap_exit(e));
    match cli.command {
        Command::Run(_) => unreachable!("`run` with a runbook is handled above"),
        Command::Replay(args) => replay::main(args),
        Command::Verify(args) => verify::main(args),
        Command::Show(args) => show::main(args),
        Command::Inspect(args) => inspect::main(args),
        Command::Policy(_) => unreachable!("`policy` with a runbook is handled above"),
        Command::New(args) => new::main(args),
        Command::List(args) => list::main(args),
        Command::Config(args) => config::main(args),
        Command::Sign(args) => sign::main(args),
    }
}

/// Where journals go when `--journal` is not given: the configuration's
/// `journal-dir`, else `journals/` in the user's state directory.
pub fn journal_dir(config: &runbook_host::config::Config) -> PathBuf {
    config
        .journal_dir
        .clone()
        .unwrap_or_else(|| runbook_host::pins::state_dir().join("journals"))
}

/// The default place for a run's journal: a new file in `dir`.
pub fn default_journal_path(dir: &std::path::Path, runbook: &str) -> PathBuf {
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    dir.join(format!("{runbook}-{stamp}-{}.jsonl", std::process::id()))
}
