//! `runbook config`: the configuration in effect and where each value came
//! from.

use clap::Args;
use runbook_host::config::{self, Origin};
use runbook_host::exit;
use runbook_host::sandbox::Limits;
use runbook_host::transcript::printable_path;

/// Print the effective configuration: each setting, its value, and whether it
/// comes from the configuration file or is the default. The file is
/// RUNBOOK_CONFIG, else $XDG_CONFIG_HOME/runbook/config.toml (default
/// ~/.config/runbook/config.toml); its keys are the names of the flags of
/// `runbook run` they set (trusted-signers, sign-journal, policy,
/// journal-dir, and under [limits]: deadline, max-memory-mib, max-calls,
/// max-arg-bytes, max-log-bytes, max-fuel). A flag on the command line
/// overrides the file.
#[derive(Debug, Args)]
pub struct ConfigArgs {}

pub fn main(_args: ConfigArgs) -> anyhow::Result<u8> {
    let loaded = match config::load() {
        Ok(l) => l,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::HOST_ERROR);
        }
    };
    let why = match loaded.origin {
        Origin::Env => "named by RUNBOOK_CONFIG",
        Origin::Default => "the default place",
    };
    let state = if loaded.present {
        "read"
    } else {
        "not present: every value is its default"
    };
    outln!(
        "configuration file: {} ({why}; {state})",
        printable_path(&loaded.path)
    );
    let c = &loaded.config;
    let path = |p: &Option<std::path::PathBuf>, none: &str| {
        p.as_deref()
            .map_or_else(|| (none.to_owned(), false), |p| (printable_path(p), true))
    };
    let d = Limits::default();
    let num = |v: Option<u64>, default: u64| (v.unwrap_or(default).to_string(), v.is_some());
    let rows = [
        (
            "trusted-signers",
            path(
                &c.trusted_signers,
                "(none: components are not signature-checked)",
            ),
        ),
        (
            "sign-journal",
            path(&c.sign_journal, "(none: journals are not signed)"),
        ),
        (
            "policy",
            path(&c.policy, "(none: the grant the runbook declares)"),
        ),
        (
            "journal-dir",
            (
                printable_path(&super::journal_dir(c)),
                c.journal_dir.is_some(),
            ),
        ),
        (
            "limits.deadline",
            num(c.limits.deadline, d.deadline.as_secs()),
        ),
        ("limits.max-fuel", num(c.limits.max_fuel, d.max_fuel)),
        (
            "limits.max-memory-mib",
            num(
                c.limits.max_memory_mib.map(|v| v as u64),
                (d.memory_bytes >> 20) as u64,
            ),
        ),
        (
            "limits.max-calls",
            num(c.limits.max_calls.map(u64::from), u64::from(d.max_calls)),
        ),
        (
            "limits.max-arg-bytes",
            num(
                c.limits.max_arg_bytes.map(|v| v as u64),
                d.max_arg_bytes as u64,
            ),
        ),
        (
            "limits.max-log-bytes",
            num(
                c.limits.max_log_bytes.map(|v| v as u64),
                d.max_log_bytes as u64,
            ),
        ),
    ];
    for (key, (value, from_file)) in rows {
        let source = if from_file { "config file" } else { "default" };
        outln!("{key:<22} {value}  ({source})");
    }
    Ok(exit::SUCCESS)
}
