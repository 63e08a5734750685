//! Hostile runbooks (tests/runbooks/) against moto, with a bystander user and
//! an unrelated device present. Each attack must end within its limit, with a
//! clear message and a documented exit code, IAM unchanged where it must be,
//! and a journal that verifies with a footer saying why.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runbook_host::journal::{CallOutcome, Journal, RunOutcome};

use crate::support::attack::{Attack, USERS, contained, denied, trapped};
use crate::support::moto::{Moto, arn};
use crate::support::scenarios::seed_world;
use crate::support::{run, run_against, runbook_spec, text};

/// Run test runbook `name` with `--yes` and `extra` flags.
fn attack(moto: &Moto, name: &str, extra: &[&str]) -> Attack {
    crate::support::attack::attack(moto, &runbook_spec(name), extra)
}

#[test]
fn an_undeclared_action_is_denied_and_journaled() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "hostile-undeclared", &[]);
    contained::undeclared_action(&a);
    let j = a.journal();
    assert!(
        j.header
            .grant
            .rules
            .iter()
            .all(|r| r.action != "iam:GetUser")
    );
}

#[test]
fn another_users_device_stays_active_and_the_denial_reveals_nothing() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(USERS);
    let a = attack(&moto, "hostile-other-user", &[]);
    contained::other_user(&moto, &before, &a);
}

#[test]
fn an_unrelated_unassigned_device_cannot_be_deleted() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(USERS);
    let a = attack(&moto, "hostile-delete-orphan", &[]);
    contained::orphan(&moto, &before, &a);
}

#[test]
fn an_endless_loop_stops_at_the_deadline() {
    let moto = Moto::start();
    seed_world(&moto);
    // Fuel for hours: the deadline alone must stop it.
    let a = attack(
        &moto,
        "hostile-loop",
        &["--deadline", "1", "--max-fuel", "100000000000000"],
    );
    trapped(&a, "ran past its 1s deadline");
    assert!(a.elapsed < Duration::from_secs(30), "took {:?}", a.elapsed);
}

#[test]
fn the_deadline_holds_for_each_run_of_one_runtime_in_turn() {
    // The thread that advances the engine's epoch runs only while a store
    // runs (the harness's runtime keeps it a second longer, for the next
    // run): it must start again for a later run of the same runtime. The
    // turns are two seconds apart, so each starts a new one.
    let bytes = std::fs::read(runbook_spec("hostile-loop")).unwrap();
    for turn in 0..3 {
        if turn > 0 {
            std::thread::sleep(Duration::from_secs(2));
        }
        let started = Instant::now();
        let run = runbook_host::harness::Harness::from_bytes("hostile-loop", &bytes)
            .unwrap()
            .param("user", "mfa-test")
            .answer_with(|r| panic!("the loop calls nothing, yet called {r:?}"))
            .limits(runbook_host::sandbox::Limits {
                deadline: Duration::from_secs(1),
                // Minutes of spinning: the deadline must stop it, yet a
                // ticker that did not start again fails here, not hangs.
                max_fuel: 20 * runbook_host::sandbox::DEFAULT_FUEL,
                ..Default::default()
            })
            .run()
            .unwrap();
        assert_eq!(run.exit_code, 4, "turn {turn}: {:?}", run.outcome);
        assert!(
            matches!(&run.outcome, RunOutcome::Trapped { reason } if reason.contains("ran past its 1s deadline")),
            "turn {turn}: {:?}",
            run.outcome
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "turn {turn} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn an_endless_loop_runs_out_of_the_default_fuel_long_before_the_deadline() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "hostile-loop", &[]);
    trapped(
        &a,
        "used up its fuel, 10000000000 units of work (--max-fuel)",
    );
    let j = a.journal.as_ref().unwrap();
    assert_eq!(j.header.max_fuel, Some(10_000_000_000));
    assert_eq!(j.footer.fuel_used, Some(10_000_000_000), "all of it");
    assert!(a.elapsed < Duration::from_secs(60), "took {:?}", a.elapsed);
}

/// Run fuel-burner live against `moto` with `flags`, then `runbook replay`
/// its journal; the live journal and the replay's output and journal.
fn burn_and_replay(
    moto: &Moto,
    dir: &Path,
    flags: &[&str],
) -> (
    std::process::Output,
    Journal,
    std::process::Output,
    u8,
    Journal,
) {
    let live_path = dir.join("live.jsonl");
    let live = run_against(
        moto,
        &runbook_spec("fuel-burner"),
        "mfa-test",
        &live_path,
        flags,
    );
    let journal = Journal::read(&live_path)
        .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&live.stdout)));
    let replay = run(&[
        "replay",
        live_path.to_str().unwrap(),
        "--runbook",
        &runbook_spec("fuel-burner"),
    ]);
    // `runbook replay` prints a transcript; the same replay in process
    // writes its journal, to read what it recorded.
    let rt = runbook_host::sandbox::shared_runtime().unwrap();
    let bytes = std::fs::read(runbook_spec("fuel-burner")).unwrap();
    let loaded = rt.load("fuel-burner", &bytes).unwrap();
    let replay_path = dir.join("replay.jsonl");
    let file = std::fs::File::create(&replay_path).unwrap();
    let report = runbook_host::offline::replay(
        rt,
        &loaded,
        "live.jsonl",
        &journal,
        runbook_host::offline::Replay {
            journal: runbook_host::journal::JournalWriter::to_writer(file),
            ..runbook_host::offline::Replay::default()
        },
    )
    .unwrap();
    let replayed = Journal::read(&replay_path).unwrap();
    (live, journal, replay, report.exit_code, replayed)
}

fn last_call(j: &Journal) -> (u32, &'static str) {
    let (c, _) = j.calls().last().expect("a call");
    (c.index, c.request.op())
}

#[test]
fn a_runbook_out_of_fuel_stops_at_the_same_call_live_and_in_replay() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let (live, journal, replay, replay_code, replayed) = burn_and_replay(
        &moto,
        dir.path(),
        &["--rounds", "1000000000000", "--max-fuel", "50000000"],
    );
    let (stdout, _) = text(&live);
    assert_eq!(live.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("used up its fuel, 50000000 units of work (--max-fuel)"),
        "{stdout}"
    );
    assert_eq!(journal.header.max_fuel, Some(50_000_000));
    assert_eq!(journal.footer.fuel_used, Some(50_000_000));
    // The first call went out; the loop ran out before the second.
    assert_eq!(last_call(&journal), (0, "list-mfa-devices"));

    // The replay run ends as the live one did, exit code included;
    // `runbook replay` says it matched (exit 0) and how the run ended.
    assert_eq!(replay_code, 4);
    let (rstdout, rstderr) = text(&replay);
    assert_eq!(replay.status.code(), Some(0), "{rstdout}{rstderr}");
    assert!(
        rstdout.contains("replay matched the recording"),
        "{rstdout}"
    );
    assert!(
        rstdout.contains("stopped: the runbook used up its fuel"),
        "{rstdout}"
    );
    let last_line = rstdout.lines().rfind(|l| l.starts_with('#')).unwrap();
    assert!(last_line.starts_with("#0  list-mfa-devices"), "{rstdout}");
    assert_eq!(last_call(&replayed), last_call(&journal));
    assert_eq!(replayed.footer.outcome, journal.footer.outcome);
    match &replayed.footer.outcome {
        RunOutcome::Trapped { reason } => assert!(reason.contains("fuel"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        replayed.header.max_fuel,
        Some(50_000_000),
        "the recorded budget"
    );
    assert_eq!(replayed.footer.fuel_used, Some(50_000_000));
}

#[test]
fn a_successful_run_records_its_fuel_and_its_replay_uses_the_same() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let (live, journal, replay, replay_code, replayed) =
        burn_and_replay(&moto, dir.path(), &["--rounds", "100000"]);
    assert_eq!(live.status.code(), Some(0), "{}", text(&live).0);
    let used = journal.footer.fuel_used.expect("fuel used is recorded");
    assert!(used > 100_000, "the loop costs fuel: {used}");
    assert!(used < runbook_host::sandbox::DEFAULT_FUEL / 1000, "{used}");
    assert_eq!(replay.status.code(), Some(0), "{}", text(&replay).0);
    assert_eq!(replay_code, 0);
    assert_eq!(
        replayed.footer.fuel_used,
        Some(used),
        "fuel is deterministic"
    );
    assert_eq!(last_call(&journal), (1, "list-mfa-devices"));
}

#[test]
fn unbounded_allocation_stops_at_the_memory_cap() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "hostile-alloc", &["--max-memory-mib", "16"]);
    trapped(&a, "memory");
}

#[test]
fn a_100_mb_argument_is_refused_before_it_is_journaled_or_sent() {
    let moto = Moto::start();
    seed_world(&moto);
    // Room to build the string in the guest, so the argument cap is what stops it.
    let a = attack(&moto, "hostile-huge-string", &["--max-memory-mib", "512"]);
    trapped(
        &a,
        "passed a 104857600-byte argument to list-mfa-devices, over the 4096-byte limit",
    );
    assert_eq!(
        a.journal.unwrap().footer.calls,
        0,
        "nothing was journaled or sent"
    );
}

#[test]
fn a_log_flood_stops_at_the_log_cap() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "hostile-log-flood", &["--max-log-bytes", "65536"]);
    trapped(&a, "logged more than 65536 bytes");
}

#[test]
fn a_panic_ends_the_run_with_its_message() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "hostile-panic", &[]);
    trapped(&a, "the runbook panicked");
    assert!(
        a.stdout.contains("hostile runbook panicked on purpose"),
        "{}",
        a.stdout
    );
}

#[test]
fn guest_stdout_and_stderr_become_journal_lines() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "hostile-stdout", &[]);
    assert_eq!(a.code, Some(0), "{}{}", a.stdout, a.stderr);
    let j = a.journal.unwrap();
    let logs: Vec<(String, String)> = j
        .records
        .iter()
        .filter_map(|r| match r {
            runbook_host::journal::Record::Log(l) => Some((l.level.clone(), l.message.clone())),
            _ => None,
        })
        .collect();
    assert!(
        logs.contains(&("stdout".into(), "hello from stdout".into())),
        "{logs:?}"
    );
    assert!(
        logs.contains(&("stderr".into(), "hello from stderr".into())),
        "{logs:?}"
    );
}

#[test]
fn a_component_of_another_world_is_refused_before_it_runs() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(USERS);
    let a = attack(&moto, "wrong-world", &[]);
    assert_eq!(a.code, Some(3), "{}{}", a.stdout, a.stderr);
    assert!(
        a.stderr.contains("does not export the runbook world"),
        "{}",
        a.stderr
    );
    assert!(a.journal.is_none(), "nothing ran, so nothing was journaled");
    assert_eq!(moto.state(USERS), before);
}

#[test]
fn deny_narrows_the_grant_for_one_run() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(
        &moto,
        "mfa-recovery",
        &["--deny", "iam:DeleteVirtualMFADevice"],
    );
    assert_eq!(a.code, Some(1), "{}{}", a.stdout, a.stderr);
    assert!(
        a.stdout.contains("could not delete virtual MFA device"),
        "{}",
        a.stdout
    );
    assert_eq!(
        moto.devices_of("mfa-test"),
        Vec::<String>::new(),
        "deactivated"
    );
    assert!(
        moto.virtual_devices().contains(&(arn("mfa-test"), None)),
        "not deleted"
    );
    let j = a.journal.unwrap();
    assert!(
        j.header
            .grant
            .rules
            .iter()
            .all(|r| r.action != "iam:DeleteVirtualMFADevice")
    );
}

#[test]
fn an_operator_policy_cannot_widen_the_grant() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "allow = [\"iam:GetUser\", \"iam:ListMFADevices\"]\n",
    )
    .unwrap();
    let a = attack(
        &moto,
        "hostile-undeclared",
        &["--policy", policy.to_str().unwrap()],
    );
    assert_eq!(a.code, Some(1), "{}{}", a.stdout, a.stderr);
    let j = a.journal.unwrap();
    assert_eq!(
        denied(&j),
        ["get-user"],
        "GetUser stays denied: the runbook never declared it"
    );
    let actions: Vec<&str> = j
        .header
        .grant
        .rules
        .iter()
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(actions, ["iam:ListMFADevices"]);
}

#[test]
fn a_policy_naming_an_unknown_action_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, r#"{"deny": ["iam:DeleteEverything"]}"#).unwrap();
    let out = run(&[
        "run",
        "mfa-recovery",
        "--user",
        "mfa-test",
        "--yes",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("'iam:DeleteEverything' is not an IAM action"),
        "{stderr}"
    );
}

#[test]
fn a_wasi_sleep_never_blocks_the_host_it_moves_virtual_time() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "hostile-sleep", &["--deadline", "2"]);
    assert_eq!(a.code, Some(0), "{}{}", a.stdout, a.stderr);
    assert!(a.stdout.contains("slept for an hour"), "{}", a.stdout);
    // Not the hour: no host thread slept (the bound leaves room for a
    // first compile on a busy machine).
    assert!(a.elapsed < Duration::from_secs(30), "took {:?}", a.elapsed);
    let j = a.journal.unwrap();
    assert_eq!(j.footer.calls, 0, "a WASI wait is not a host call");
    assert!(
        j.header.wasi.is_some(),
        "the header records the clock's start"
    );
}

#[test]
fn empty_log_lines_and_bare_newlines_are_charged_and_the_journal_stays_small() {
    for (via, needle) in [
        ("log", "logged more than 65536 bytes"),
        ("stdout", "more than 65536 bytes to stdout"),
    ] {
        let moto = Moto::start();
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("run.jsonl");
        let out = run_against(
            &moto,
            &runbook_spec("hostile-empty-logs"),
            "mfa-test",
            &journal,
            &["--yes", "--max-log-bytes", "65536", "--via", via],
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(4), "{via}: {stdout}{stderr}");
        assert!(stdout.contains(needle), "{via}: {stdout}");
        let size = std::fs::metadata(&journal).unwrap().len();
        assert!(size < 1 << 20, "{via}: the journal grew to {size} bytes");
        Journal::read(&journal).expect("the journal verifies");
    }
}

#[test]
fn an_outcome_over_the_log_budget_is_refused_and_neither_journaled_nor_printed() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let out = run_against(
        &moto,
        &runbook_spec("hostile-huge-outcome"),
        "mfa-test",
        &path,
        &["--yes"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stdout.contains("the runbook's outcome is 10486912 bytes"),
        "{stdout}"
    );
    assert!(stdout.len() < 4096, "{} bytes on stdout", stdout.len());
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 16 * 1024, "a {size}-byte journal");
    let j = Journal::read(&path).unwrap();
    assert!(
        matches!(&j.footer.outcome, RunOutcome::Trapped { reason } if reason.contains("--max-log-bytes")),
        "{:?}",
        j.footer.outcome
    );
}

#[test]
fn user_names_and_device_owners_are_checked_by_the_host_whatever_the_scope() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(USERS);
    let a = attack(&moto, "hostile-unseen-device", &[]);
    assert_eq!(a.code, Some(1), "{}{}", a.stdout, a.stderr);
    for attempt in ["empty user", "unseen", "claimed"] {
        assert!(
            a.stdout
                .contains(&format!("{attempt}: access denied: the runbook's grant")),
            "{attempt}: {}",
            a.stdout
        );
    }
    assert_eq!(moto.state(USERS), before, "nothing changed in IAM");
    let j = a.journal.unwrap();
    assert_eq!(
        denied(&j),
        [
            "list-mfa-devices",
            "deactivate-mfa-device",
            "deactivate-mfa-device"
        ]
    );
    let reasons: Vec<String> = j
        .calls()
        .filter_map(|(_, e)| match &e.outcome {
            CallOutcome::Denied { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert!(reasons[0].contains("not an IAM user name"), "{reasons:?}");
    assert!(reasons[1].contains("has not seen attached"), "{reasons:?}");
    assert!(reasons[2].contains("has not seen attached"), "{reasons:?}");
}

/// Run the sleeper test runbook with `flags`; returns its output, how long it
/// took, and its journal's path (in `dir`).
fn sleeper(dir: &tempfile::TempDir, flags: &[&str]) -> (std::process::Output, Duration, PathBuf) {
    let moto = Moto::start();
    let path = dir.path().join("run.jsonl");
    let started = Instant::now();
    let out = run_against(&moto, &runbook_spec("sleeper"), "mfa-test", &path, flags);
    (out, started.elapsed(), path)
}

/// `runbook replay` of a sleeper journal, and how long it took.
fn replay_sleeper(path: &Path) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = run(&[
        "replay",
        path.to_str().unwrap(),
        "--runbook",
        &runbook_spec("sleeper"),
    ]);
    (out, started.elapsed())
}

#[test]
fn a_wait_past_the_deadline_is_cut_there_and_replays_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let (out, elapsed, path) = sleeper(&dir, &["--seconds", "600", "--deadline", "2"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stdout}{stderr}");
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    assert!(
        stdout.contains("stopped at the run's deadline (--deadline)"),
        "{stdout}"
    );
    let j = Journal::read(&path).unwrap();
    let (call, end) = j.calls().last().unwrap();
    assert_eq!(call.request.op(), "clock-sleep");
    assert!(
        matches!(&end.outcome, CallOutcome::Cut { reason } if reason.contains("clock-sleep")),
        "{:?}",
        end.outcome
    );
    // The replay reaches the same cut, at once, and matches.
    let (replay, took) = replay_sleeper(&path);
    assert_eq!(replay.status.code(), Some(0), "{:?}", text(&replay));
    assert!(took < Duration::from_secs(60));
}

#[test]
fn a_recorded_wait_is_journaled_and_instant_in_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (out, took, path) = sleeper(&dir, &["--seconds", "3"]);
    assert!(took >= Duration::from_secs(3), "it waited");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("waited 3 s (the clock moved 3 s)"),
        "{stdout}"
    );
    let j = Journal::read(&path).unwrap();
    let ops: Vec<&str> = j.calls().map(|(c, _)| c.request.op()).collect();
    assert_eq!(ops, ["clock-now", "clock-sleep", "clock-now"]);
    // The replay sees the recorded clock move 3 s without waiting for it:
    // the cut-off sits well below the 3 s a real wait would take.
    let (replay, took) = replay_sleeper(&path);
    let (stdout, _) = text(&replay);
    assert_eq!(replay.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("the clock moved 3 s"), "{stdout}");
    assert!(took < Duration::from_secs(3));
}

#[test]
fn a_manifest_that_draws_on_the_terminal_is_refused_before_a_byte_of_it_is_printed() {
    // Its version clears the screen and draws a fake empty plan above the
    // real consent prompt; its description and help hold escapes too.
    let wasm = runbook_spec("hostile-manifest");
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    for args in [
        &[
            "run",
            &wasm,
            "--user",
            "mfa-test",
            "--journal",
            journal.to_str().unwrap(),
        ][..],
        &["inspect", &wasm],
        &["inspect", &wasm, "--json"],
        &["policy", &wasm, "--user", "mfa-test"],
        &["run", &wasm, "--help"],
    ] {
        let out = run(args);
        let (stdout, stderr) = text(&out);
        let cmd = args[0];
        crate::support::assert_no_terminal_controls(cmd, &out);
        assert_eq!(out.status.code(), Some(3), "{cmd}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{cmd}: {stdout}");
        assert!(
            stderr.contains("the embedded manifest is invalid: version '\\u{1b}[2J\\u{1b}[H"),
            "{cmd}: {stderr}"
        );
        assert!(
            stderr.contains("is not a semantic version"),
            "{cmd}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{cmd}: {stderr}");
    }
    assert!(!journal.exists(), "nothing ran, so no journal");
}
