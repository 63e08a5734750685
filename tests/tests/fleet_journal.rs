//! The fleet journal: written by `FleetWriter` over target journals from real
//! runs against moto, then verified, tampered with, resumed after a kill,
//! replayed with moto stopped, and shown, through the real binary.

use std::path::PathBuf;
use std::sync::Mutex;

use runbook_host::fleet::{
    Fleet, FleetError, FleetHeader, FleetRecord, FleetWriter, PartialFleet, Target, TargetDone,
};
use runbook_host::journal::{GENESIS, Journal, line_hash};
use runbook_host::transcript::outcome_line;
use serde_json::{Value, json};

use crate::support::moto::Moto;
use crate::support::scenarios::seed_world;
use crate::support::{run, run_against, text};

/// The users of the fleet, in target order.
const USERS: [&str; 3] = ["mfa-test", "bob", "carol"];

/// A directory holding one real mfa-recovery journal per user (`0-mfa-test.jsonl`,
/// ...), run against `moto`, and the fleet header naming them.
fn target_journals(moto: &Moto) -> (tempfile::TempDir, FleetHeader) {
    seed_world(moto);
    moto.user_with_virtual("bob", "bob");
    moto.user_with_virtual("carol", "carol");
    let dir = tempfile::tempdir().unwrap();
    for (i, user) in USERS.iter().enumerate() {
        let out = run_against(
            moto,
            "mfa-recovery",
            user,
            &journal_path(&dir, i),
            &["--yes"],
        );
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{user}: {stdout}\n{stderr}");
    }
    let first = Journal::read(&journal_path(&dir, 0)).unwrap();
    let caller = first
        .caller()
        .expect("the journal records its caller")
        .to_owned();
    let first = first.header;
    let header = FleetHeader {
        format: 0,
        runbook: first.runbook,
        runbook_version: first.runbook_version,
        wasm_sha256: first.wasm_sha256,
        host_version: first.host_version,
        caller,
        started_at: first.started_at,
        concurrency: 2,
        max_rate: Some(5.0),
        max_failures: None,
        targets: USERS
            .iter()
            .enumerate()
            .map(|(i, user)| Target {
                index: i as u32,
                // The first target names moto's account; the others run in
                // the caller's.
                account: (i == 0).then(|| "123456789012".to_owned()),
                role: None,
                parameters: [("user".to_owned(), (*user).to_owned())].into(),
            })
            .collect(),
    };
    (dir, header)
}

fn journal_name(i: usize) -> String {
    format!("{i}-{}.jsonl", USERS[i])
}

fn journal_path(dir: &tempfile::TempDir, i: usize) -> PathBuf {
    dir.path().join(journal_name(i))
}

/// What the fleet run records when target `i` ends: from its journal.
fn done(dir: &tempfile::TempDir, i: usize) -> TargetDone {
    let j = Journal::read(&journal_path(dir, i)).unwrap();
    TargetDone {
        index: i as u32,
        journal: journal_name(i),
        last_hash: j.last_hash,
        exit_code: 0,
        outcome: outcome_line(&j.footer.outcome),
        changes: j.footer.applied.map_or(0, |a| a.len() as u32),
    }
}

/// Write `DIR/fleet.jsonl` for all three targets, as worker threads would,
/// through one `Mutex<FleetWriter>`; its path.
fn write_fleet(dir: &tempfile::TempDir, header: FleetHeader) -> PathBuf {
    write_fleet_as(dir, "fleet.jsonl", header)
}

fn write_fleet_as(dir: &tempfile::TempDir, name: &str, header: FleetHeader) -> PathBuf {
    let path = dir.path().join(name);
    let writer = Mutex::new(FleetWriter::create(&path, header).unwrap());
    std::thread::scope(|s| {
        for i in 0..USERS.len() {
            let writer = &writer;
            s.spawn(move || {
                writer
                    .lock()
                    .unwrap()
                    .target_started(i as u32, &journal_name(i))
                    .unwrap();
                let d = done(dir, i);
                writer.lock().unwrap().target_done(d).unwrap();
            });
        }
    });
    let (footer, last) = writer.into_inner().unwrap().finish().unwrap();
    assert_eq!((footer.succeeded, footer.failed, footer.not_run), (3, 0, 0));
    assert_eq!(last, Fleet::read(&path).unwrap().last_hash);
    path
}

#[test]
fn a_fleet_verifies_with_its_targets_and_a_tampered_target_fails_naming_it() {
    let moto = Moto::start();
    let (dir, header) = target_journals(&moto);
    let fleet = write_fleet(&dir, header);
    let shown = fleet.to_str().unwrap();

    let out = run(&["verify", shown]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("3 target(s): 3 succeeded, 0 failed, 0 not run; each of the 3 target journal(s) verifies"),
        "{stdout}"
    );
    // --last-hash applies to the fleet journal.
    let last = Fleet::read(&fleet).unwrap().last_hash;
    let out = run(&["verify", shown, "--last-hash", &last]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let out = run(&["verify", shown, "--last-hash", &"0".repeat(64)]);
    assert_eq!(out.status.code(), Some(7), "{:?}", text(&out));

    // One byte of bob's journal (a log line's text) changed: the chain breaks.
    let bob = journal_path(&dir, 1);
    let raw = std::fs::read_to_string(&bob).unwrap();
    assert!(raw.contains("'bob' has 1 MFA device"), "{raw}");
    std::fs::write(&bob, raw.replacen("'bob' has 1", "'bob' has 2", 1)).unwrap();
    let out = run(&["verify", shown]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("target 1 (user=bob): its journal")
            && stderr.contains("1-bob.jsonl does not verify")
            && stderr.contains("hash chain broken"),
        "{stderr}"
    );
    // So does replay, before replaying anything.
    let out = run(&["replay", shown]);
    assert_eq!(out.status.code(), Some(7), "{:?}", text(&out));

    // A target journal replaced by another whole run's: its last line is
    // not the one recorded.
    std::fs::copy(journal_path(&dir, 2), &bob).unwrap();
    let e = Fleet::read(&fleet)
        .unwrap()
        .verify_targets(dir.path())
        .unwrap_err();
    assert!(matches!(e, FleetError::Target { index: 1, .. }), "{e}");
    assert!(e.to_string().contains("not the"), "{e}");

    // A missing one is named too.
    std::fs::remove_file(&bob).unwrap();
    let out = run(&["verify", shown]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("target 1 (user=bob)") && stderr.contains("1-bob.jsonl is missing"),
        "{stderr}"
    );
}

#[test]
fn a_fleet_replays_offline_with_moto_stopped_and_shows_as_a_table() {
    let moto = Moto::start();
    let (dir, header) = target_journals(&moto);
    drop(moto);
    let fleet = write_fleet(&dir, header.clone());
    let shown = fleet.to_str().unwrap();

    let out = run(&["replay", shown]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("fleet replay matched: all 3 target journal(s)"),
        "{stdout}"
    );
    for (i, user) in USERS.iter().enumerate() {
        assert!(
            stdout.contains(&format!("== target {i} ("))
                && stdout.contains(&format!("user={user}): ")),
            "{stdout}"
        );
    }
    assert_eq!(stdout.matches("replay matched the recording").count(), 3);

    let out = run(&["show", shown]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let filters = vec![
        (r"[0-9a-f]{64}", "[hash]"),
        (r"\d{4}-\d{2}-\d{2}T[0-9:.]+Z", "[time]"),
    ];
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("fleet_show", stdout);
    });

    // Bob's journal rewritten (chain and all) to answer that bob's device
    // is another: the runbook then deactivates that one, and bob's replay
    // diverges from the recorded request; the others still match.
    let bob = journal_path(&dir, 1);
    let lines: Vec<Value> = std::fs::read_to_string(&bob)
        .unwrap()
        .lines()
        .map(|l| {
            let l = l.replace("mfa/bob\",\"user_name", "mfa/other\",\"user_name");
            let mut v: Value = serde_json::from_str(&l).unwrap();
            v.as_object_mut().unwrap().remove("prev");
            v
        })
        .collect();
    std::fs::write(&bob, chained(&lines)).unwrap();
    let fleet = write_fleet_as(&dir, "fleet-2.jsonl", header);
    let out = run(&["replay", fleet.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(6), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("target 1 (user=bob): replay diverged")
            && stderr.contains("1 of 3 target(s) did not match"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("target 0 ") && !stderr.contains("target 2 "),
        "{stderr}"
    );
    assert_eq!(stdout.matches("replay matched the recording").count(), 2);
}

#[test]
fn a_killed_fleet_run_resumes_keeping_its_done_targets() {
    let moto = Moto::start();
    let (dir, header) = target_journals(&moto);
    let path = dir.path().join("fleet.jsonl");
    {
        let mut w = FleetWriter::create(&path, header).unwrap();
        w.target_started(0, &journal_name(0)).unwrap();
        w.target_done(done(&dir, 0)).unwrap();
        w.target_started(1, &journal_name(1)).unwrap();
        // Target 0 is done once.
        let e = w.target_started(0, "again.jsonl").unwrap_err();
        assert!(e.to_string().contains("target 0 is done already"), "{e}");
    }
    // Killed while writing target 1's end: half a line, no newline.
    let torn = r#"{"kind":"target-done","index":1,"jour"#;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, torn.as_bytes()))
        .unwrap();
    let out = run(&["verify", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(7), "{:?}", text(&out));
    let out = run(&["show", path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}\n{stderr}");
    assert!(stdout.contains("INCOMPLETE: fleet journal"), "{stdout}");
    assert!(stdout.contains("started, not finished"), "{stdout}");

    let (mut w, state) = FleetWriter::resume(&path).unwrap();
    assert_eq!(state.done.keys().copied().collect::<Vec<_>>(), [0]);
    assert_eq!(
        state.unfinished.iter().collect::<Vec<_>>(),
        [(&1, &journal_path(&dir, 1))],
        "target 1's journal exists: a resume continues it"
    );
    assert_eq!(state.torn_bytes, torn.len() as u64);
    assert_eq!(state.to_run().map(|t| t.index).collect::<Vec<_>>(), [1, 2]);
    for i in [1, 2] {
        w.target_started(i as u32, &journal_name(i)).unwrap();
        w.target_done(done(&dir, i)).unwrap();
    }
    w.finish().unwrap();
    drop(w);

    let fleet = Fleet::read(&path).unwrap();
    assert_eq!(fleet.done.len(), 3);
    let resumed: Vec<_> = fleet
        .records
        .iter()
        .filter_map(|r| match r {
            FleetRecord::Resumed(r) => Some(r.torn_bytes),
            _ => None,
        })
        .collect();
    assert_eq!(resumed, [torn.len() as u64]);
    let out = run(&["verify", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));

    // A finished fleet run is not resumed.
    let e = FleetWriter::resume(&path).unwrap_err().to_string();
    assert!(e.contains("the fleet run finished"), "{e}");
}

/// A fleet journal of `lines` (records without `prev`), chained.
fn chained(lines: &[Value]) -> String {
    let mut prev = GENESIS.to_owned();
    let mut text = String::new();
    for l in lines {
        let mut l = l.clone();
        l["prev"] = json!(prev);
        let line = l.to_string();
        prev = line_hash(&line);
        text.push_str(&line);
        text.push('\n');
    }
    text
}

#[test]
fn a_fleet_journal_naming_a_file_outside_its_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let header = json!({
        "kind": "fleet", "format": 1, "runbook": "mfa-recovery", "runbook_version": "0.1.0",
        "wasm_sha256": "0".repeat(64), "host_version": "0.1.0",
        "caller": "arn:aws:iam::123456789012:user/ops", "started_at": "2026-01-01T00:00:00Z",
        "concurrency": 1,
        "targets": [{"index": 0, "parameters": {"user": "alice"}}],
    });
    for name in ["../x.jsonl", "/etc/passwd", "a/../../b.jsonl", ""] {
        let path = dir.path().join("fleet.jsonl");
        std::fs::write(
            &path,
            chained(&[
                header.clone(),
                json!({"kind": "target-started", "index": 0, "journal": "0.jsonl", "at": "2026-01-01T00:00:00Z"}),
                json!({"kind": "target-done", "index": 0, "journal": name, "last_hash": "a".repeat(64),
                       "exit_code": 0, "outcome": "succeeded", "changes": 1}),
                json!({"kind": "fleet-footer", "finished_at": "2026-01-01T00:00:01Z",
                       "succeeded": 1, "failed": 0, "not_run": 0}),
            ]),
        )
        .unwrap();
        let e = Fleet::read(&path).unwrap_err().to_string();
        assert!(e.contains("fleet.jsonl:3: the journal '"), "{name}: {e}");
        assert!(
            e.contains("is not a file name relative to the fleet journal's directory"),
            "{name}: {e}"
        );
        for cmd in ["verify", "replay", "show"] {
            let out = run(&[cmd, path.to_str().unwrap()]);
            let (_, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(7), "{cmd} {name}: {stderr}");
            assert!(stderr.contains("fleet.jsonl:3:"), "{cmd} {name}: {stderr}");
        }
        std::fs::remove_file(&path).unwrap();
    }

    // The writer refuses such a name too.
    let mut w = FleetWriter::create(
        &dir.path().join("fleet.jsonl"),
        serde_json::from_value(header).unwrap(),
    )
    .unwrap();
    let e = w.target_started(0, "/etc/passwd").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
}

#[test]
fn a_fleet_journal_read_as_a_run_journal_and_the_reverse_say_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.jsonl");
    let header = json!({
        "kind": "fleet", "format": 1, "runbook": "mfa-recovery", "runbook_version": "0.1.0",
        "wasm_sha256": "0".repeat(64), "host_version": "0.1.0",
        "caller": "arn:aws:iam::123456789012:user/ops", "started_at": "2026-01-01T00:00:00Z",
        "concurrency": 1, "targets": [],
    });
    std::fs::write(&fleet, chained(&[header])).unwrap();
    let e = Journal::read(&fleet).unwrap_err().to_string();
    assert!(
        e.contains(":1: not a journal record: the first line is not a journal header: this is a fleet journal"),
        "{e}"
    );
    let seed = crate::support::root().join("tests/fixtures/seed-case/journal.jsonl");
    let e = PartialFleet::read(&seed).unwrap_err().to_string();
    assert!(
        e.contains("the first line is not a fleet journal header: this is a run's journal"),
        "{e}"
    );
    // A fleet journal cut off before its footer is not verified.
    let out = run(&["verify", fleet.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("ends without a footer"), "{stderr}");
}
