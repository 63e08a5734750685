//! `runbook show J | head` closes the pipe before runbook is done writing:
//! `println!` would panic (exit 101). No command may panic on a closed stdout
//! or stderr; each ends with its own exit code. (SIGPIPE stays ignored, as
//! Rust sets it: its default action would kill a live run mid-mutation.)

use std::process::{Output, Stdio};

use crate::support::{root, runbook, text};

const SEED: &str = "tests/fixtures/seed-case/journal.jsonl";

/// A pipe whose read end is already closed: every write to it fails (EPIPE).
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Stdio::from(writer)
}

/// `runbook ARGS` with stdout (or else stderr) a pipe nobody reads.
fn with_closed(stream: &str, args: &[&str]) -> Output {
    let mut cmd = runbook();
    cmd.args(args);
    match stream {
        "stdout" => cmd.stdout(closed_pipe()).stderr(Stdio::piped()),
        _ => cmd.stdout(Stdio::piped()).stderr(closed_pipe()),
    };
    cmd.output().expect("running the runbook binary")
}

/// Commands that write to stdout or stderr, with the exit code each must
/// end with whatever happens to its output.
fn commands(dir: &std::path::Path) -> Vec<(Vec<String>, i32)> {
    let journal = |n: &str| dir.join(n).display().to_string();
    let mut bad = std::fs::read_to_string(root().join(SEED)).unwrap();
    bad.insert(10, 'X');
    std::fs::write(dir.join("bad.jsonl"), bad).unwrap();
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        (owned(&["show", SEED]), 0),
        (owned(&["show", SEED, "--output", "json"]), 0),
        (owned(&["verify", SEED]), 0),
        (owned(&["verify", &journal("bad.jsonl")]), 7),
        (owned(&["inspect", "mfa-recovery"]), 0),
        (owned(&["inspect", "mfa-recovery", "--json"]), 0),
        (owned(&["policy", "mfa-recovery", "--user", "mfa-test"]), 0),
        (owned(&["replay", SEED, "--runbook", "mfa-recovery"]), 0),
        (
            owned(&[
                "run",
                "mfa-recovery",
                "--user",
                "mfa-test",
                "--replay",
                SEED,
                "--journal",
                &journal("run.jsonl"),
            ]),
            0,
        ),
        (owned(&["--help"]), 0),
        (owned(&["--version"]), 0),
        (owned(&["run", "mfa-recovery", "--help"]), 0),
        (owned(&["verify", "--no-such-flag"]), 2),
        (owned(&["run", "mfa-recovery", "--user", "*", "--yes"]), 2),
        (owned(&["inspect", "no-such-runbook"]), 3),
    ]
}

#[test]
fn no_command_panics_when_stdout_is_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    for (args, code) in commands(dir.path()) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = with_closed("stdout", &args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // The run wrote its journal in full although nobody read its output.
    runbook_host::journal::Journal::read(&dir.path().join("run.jsonl"))
        .expect("the run's journal verifies");
}

#[test]
fn no_command_panics_when_stderr_is_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    for (args, code) in commands(dir.path()) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = with_closed("stderr", &args);
        let (stdout, _) = text(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stdout}");
        assert!(!stdout.contains("panicked"), "{args:?}: {stdout}");
    }
}
