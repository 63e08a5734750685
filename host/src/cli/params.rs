//! A runbook's parameters as command-line flags. `run` and `policy` take the
//! runbook's own parameters (`--user mfa-test`), declared in its manifest, so
//! the runbook is found in argv first and the subcommand parsed with one flag
//! added per declared parameter.

use std::collections::BTreeMap;
use std::ffi::OsString;

use clap::{Arg, ArgAction, ArgMatches, Command};
use runbook_host::manifest::Manifest;

/// Host flags that take no value; every other `--flag` takes one (the
/// runbook's parameters all do).
const SWITCHES: &[&str] = &["yes", "dry-run", "help"];

/// The subcommands whose flags depend on the runbook.
pub const DYNAMIC: &[&str] = &["run", "policy"];

/// The subcommand and the runbook named after it, for `run` and `policy`.
pub fn runbook_in(argv: &[OsString]) -> Option<(String, String)> {
    let args: Vec<&str> = argv.iter().skip(1).filter_map(|a| a.to_str()).collect();
    let sub = *args.first()?;
    if !DYNAMIC.contains(&sub) {
        return None;
    }
    let mut i = 1;
    while i < args.len() {
        let a = args[i];
        if a == "--" {
            return args.get(i + 1).map(|s| (sub.to_owned(), (*s).to_owned()));
        }
        if let Some(flag) = a.strip_prefix("--") {
            let takes_value = !flag.contains('=') && !SWITCHES.contains(&flag);
            i += if takes_value { 2 } else { 1 };
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        return Some((sub.to_owned(), a.to_owned()));
    }
    None
}

/// The value of `--flag VALUE` or `--flag=VALUE` in argv.
pub fn find_value(argv: &[OsString], flag: &str) -> Option<OsString> {
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if a == flag {
            return it.next().cloned();
        }
        if let Some(v) = a
            .to_str()
            .and_then(|s| s.strip_prefix(flag))
            .and_then(|s| s.strip_prefix('='))
        {
            return Some(v.into());
        }
    }
    None
}

/// `cmd` with one flag per parameter the manifest declares.
pub fn declare(mut cmd: Command, manifest: &Manifest, verb: &str) -> Command {
    cmd = cmd.about(format!(
        "{verb} {} {}: {}",
        manifest.name, manifest.version, manifest.description
    ));
    for p in &manifest.params {
        cmd = cmd.arg(
            Arg::new(format!("param:{}", p.name))
                .long(p.name.clone())
                .value_name("VALUE")
                .help(format!("{} (parameter of {})", p.help, manifest.name))
                .required(p.required)
                .action(ArgAction::Set)
                .help_heading("Runbook parameters"),
        );
    }
    cmd
}

/// The parameters given, by name.
pub fn given(matches: &ArgMatches, manifest: &Manifest) -> BTreeMap<String, String> {
    manifest
        .params
        .iter()
        .filter_map(|p| {
            matches
                .get_one::<String>(&format!("param:{}", p.name))
                .map(|v| (p.name.clone(), v.clone()))
        })
        .collect()
}
