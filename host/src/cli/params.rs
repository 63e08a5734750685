//! A runbook's parameters as command-line flags. `run` and `policy` take the
//! runbook's own parameters (`--user mfa-test`), declared in its manifest, so
//! the runbook is found in argv first and the subcommand parsed with one flag
//! added per declared parameter.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory};
use runbook_host::manifest::Manifest;

/// The long flags of `runbook SUB` itself, as clap defines them (`--help`
/// included), split into those that take a value and those that do not.
fn host_flags(sub: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut cmd = super::Cli::command();
    cmd.build();
    let mut valued = BTreeSet::new();
    let mut switches = BTreeSet::new();
    if let Some(sub) = cmd.find_subcommand(sub) {
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long() {
                if arg.get_action().takes_values() {
                    valued.insert(long.to_owned());
                } else {
                    switches.insert(long.to_owned());
                }
            }
        }
    }
    (valued, switches)
}

/// The subcommands whose flags depend on the runbook.
pub const DYNAMIC: &[&str] = &["run", "policy"];

/// The subcommand and the runbook named after it, for `run` and `policy`.
pub fn runbook_in(argv: &[OsString]) -> Option<(String, String)> {
    let args: Vec<&str> = argv.iter().skip(1).filter_map(|a| a.to_str()).collect();
    let sub = *args.first()?;
    if !DYNAMIC.contains(&sub) {
        return None;
    }
    let (_, switches) = host_flags(sub);
    let mut i = 1;
    while i < args.len() {
        let a = args[i];
        if a == "--" {
            return args.get(i + 1).map(|s| (sub.to_owned(), (*s).to_owned()));
        }
        if let Some(flag) = a.strip_prefix("--") {
            // Runbook parameters all take a value; of the host's flags, only
            // those clap knows as switches do not.
            let takes_value = !flag.contains('=') && !switches.contains(flag);
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

/// `cmd` with one flag per parameter the manifest declares. A parameter named
/// like a flag of `runbook run` or `runbook policy` themselves (as clap
/// defines them: no list kept by hand) is refused, naming both.
pub fn declare(mut cmd: Command, manifest: &Manifest, verb: &str) -> Result<Command, String> {
    for sub in DYNAMIC {
        let (valued, switches) = host_flags(sub);
        if let Some(p) = manifest
            .params
            .iter()
            .find(|p| valued.contains(&p.name) || switches.contains(&p.name))
        {
            return Err(format!(
                "runbook '{}' declares the parameter --{}, which is a flag of `runbook {sub}` itself; rename the parameter in its runbook.toml",
                manifest.name, p.name
            ));
        }
    }
    cmd = cmd.about(format!(
        "{verb} {} {}: {}",
        manifest.name, manifest.version, manifest.description
    ));
    for p in &manifest.params {
        let arg = Arg::new(format!("param:{}", p.name))
            .long(p.name.clone())
            .value_name("VALUE")
            .help(format!("{} (parameter of {})", p.help, manifest.name))
            .action(ArgAction::Set)
            .help_heading("Runbook parameters");
        // A fleet run's targets file gives each target's parameters.
        let arg = match (p.required, verb) {
            (true, "Run") => arg.required_unless_present("targets"),
            (required, _) => arg.required(required),
        };
        cmd = cmd.arg(arg);
    }
    Ok(cmd)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(param: &str) -> Manifest {
        Manifest::from_toml(&format!(
            "name = \"x\"\nversion = \"1.0.0\"\ndescription = \"d\"\n[[params]]\nname = \"{param}\"\nhelp = \"h\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_parameter_named_like_any_host_flag_is_refused() {
        // Flags no hand-kept list ever had: a limit, the resume, and policy's.
        for flag in [
            "deadline",
            "max-calls",
            "resume",
            "last-hash",
            "account",
            "yes",
            "help",
        ] {
            let err = declare(Command::new("run"), &manifest(flag), "Run").unwrap_err();
            assert!(
                err.contains(&format!(
                    "declares the parameter --{flag}, which is a flag of"
                )),
                "{flag}: {err}"
            );
        }
        assert!(declare(Command::new("run"), &manifest("user"), "Run").is_ok());
    }

    #[test]
    fn switches_come_from_clap_so_a_runbook_after_them_is_found() {
        let argv: Vec<OsString> = [
            "runbook",
            "run",
            "--yes",
            "--dry-run",
            "mfa-recovery",
            "--user",
            "u",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(
            runbook_in(&argv),
            Some(("run".to_owned(), "mfa-recovery".to_owned()))
        );
    }
}
