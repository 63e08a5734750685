//! The configuration file (`RUNBOOK_CONFIG`, else
//! `$XDG_CONFIG_HOME/runbook/config.toml`): what an organisation sets once,
//! with flags overriding it, and `runbook config` saying where each value
//! came from.

use std::path::Path;
use std::process::Output;

use crate::support::moto::Moto;
use crate::support::scenarios::seed_world;
use crate::support::{root, runbook, text};

fn with_config(config: &Path, args: &[&str]) -> Output {
    runbook()
        .env("RUNBOOK_CONFIG", config)
        .args(args)
        .output()
        .unwrap()
}

fn seed_fixture() -> String {
    root()
        .join("tests/fixtures/seed-case/journal.jsonl")
        .display()
        .to_string()
}

#[test]
fn runbook_config_prints_each_value_and_where_it_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        "policy = \"operator.toml\"\njournal-dir = \"/var/incidents\"\n\n[limits]\nmax-calls = 50\n",
    )
    .unwrap();
    let out = with_config(&config, &["config"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = stdout.replace(&tmp.path().display().to_string(), "[TMP]");
    insta::assert_snapshot!("config_from_a_file", stdout);

    // No file at the default place: every value is its default.
    let out = runbook()
        .env("HOME", tmp.path())
        .env("RUNBOOK_STATE_DIR", "/state")
        .args(["config"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    insta::assert_snapshot!("config_defaults", stdout);
}

#[test]
fn limits_and_the_journal_directory_come_from_the_file_and_flags_override_them() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        "journal-dir = \"journals\"\n[limits]\nmax-calls = 2\n",
    )
    .unwrap();
    let moto = Moto::start();
    seed_world(&moto);
    let args = [
        "run",
        "mfa-recovery",
        "--user",
        "mfa-test",
        "--dry-run",
        "--endpoint-url",
        &moto.url,
    ];
    // The seed case's dry run makes four calls: the file's limit of 2 stops it.
    let out = with_config(&config, &args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("more than 2 host calls (--max-calls)"),
        "{stdout}\n{stderr}"
    );
    // Its journal went to the file's journal-dir, relative to the file.
    let journals: Vec<_> = std::fs::read_dir(tmp.path().join("journals"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(journals.len(), 1, "one journal in journal-dir");

    // A flag overrides the file.
    let mut with_flag = args.to_vec();
    with_flag.extend(["--max-calls", "10"]);
    let out = with_config(&config, &with_flag);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
}

#[test]
fn a_bad_configuration_file_is_refused_naming_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    // A misspelt key must not silently leave components unchecked.
    std::fs::write(&config, "# ours\ntrusted-signer = \"/etc/allowed\"\n").unwrap();
    let replay = seed_fixture();
    for args in [
        vec!["config"],
        vec![
            "run",
            "mfa-recovery",
            "--user",
            "mfa-test",
            "--replay",
            &replay,
        ],
    ] {
        let out = with_config(&config, &args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!("{}:2: ", config.display()))
                && stderr.contains("trusted-signer"),
            "{stderr}"
        );
        assert!(stdout.is_empty(), "nothing ran: {stdout}");
    }

    // RUNBOOK_CONFIG naming a missing file is a mistake, not "no config".
    let out = with_config(&tmp.path().join("missing.toml"), &["config"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr.contains("RUNBOOK_CONFIG names it"), "{stderr}");
}
