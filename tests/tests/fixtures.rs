//! Recorded journals of the MFA recovery scenarios (tests/fixtures/NAME/),
//! replayed offline by plain `cargo test`: no moto, no network.
//!
//! `scripts/record-fixtures` records them anew against moto (the ignored test
//! `record_fixtures` below); review the transcript snapshots it changes.

use std::path::PathBuf;

use runbook_host::harness::Harness;
use runbook_host::journal::Journal;
use runbook_host::transcript;

use crate::support::moto::Moto;
use crate::support::scenarios::ALL;
use crate::support::{root, run, run_against, runbook_spec, text};

fn fixture(name: &str) -> PathBuf {
    root()
        .join("tests/fixtures")
        .join(name)
        .join("journal.jsonl")
}

/// Every fixture directory on disk, so a new one cannot be forgotten.
fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("tests/fixtures"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("journal.jsonl").is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn every_scenario_has_a_fixture() {
    let mut expected: Vec<String> = ALL.iter().map(|s| s.name.to_owned()).collect();
    expected.push("clock-reader".to_owned());
    expected.sort();
    assert_eq!(fixture_names(), expected);
}

#[test]
fn every_fixture_replays_offline_to_its_recorded_outcome() {
    for name in fixture_names() {
        let path = fixture(&name);
        let recorded = Journal::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let run = Harness::new(&runbook_spec(&recorded.header.runbook))
            .unwrap()
            .replay(&path)
            .unwrap()
            .run()
            .unwrap();
        assert_eq!(run.outcome, recorded.footer.outcome, "{name}");
        // IAM's request ids name the live answers; a replay sends nothing.
        let calls = |records| {
            let mut lines = transcript::lines(records);
            lines.iter_mut().for_each(|l| l.request_ids.clear());
            lines
        };
        assert_eq!(
            calls(&run.records),
            calls(&recorded.records),
            "{name}: the replay made the recorded calls with the recorded answers"
        );
        let expected_exit = ALL
            .iter()
            .find(|s| s.name == name)
            .map_or(0, |s| s.exit_code);
        assert_eq!(i32::from(run.exit_code), expected_exit, "{name}");
    }
}

#[test]
fn fixture_transcripts_match_the_reviewed_snapshots() {
    for name in fixture_names() {
        let recorded = Journal::read(&fixture(&name)).unwrap();
        // Request ids are IAM's (moto's random ones): new at every recording.
        insta::with_settings!({
            snapshot_suffix => name.clone(),
            filters => vec![(r"\[request ids? [^\]]*\]", "[request id]")],
        }, {
            insta::assert_snapshot!("transcript", transcript::render(&recorded.records));
        });
    }
}

#[test]
fn a_runbook_reading_the_clock_replays_the_recorded_time() {
    let path = fixture("clock-reader");
    let recorded = Journal::read(&path).unwrap();
    // Replayed now, at another time than the recording: the same answer.
    for _ in 0..2 {
        let run = Harness::new(&runbook_spec("clock-reader"))
            .unwrap()
            .replay(&path)
            .unwrap()
            .run()
            .unwrap();
        assert_eq!(run.exit_code, 0, "{:?}", run.outcome);
        assert_eq!(run.outcome, recorded.footer.outcome);
    }
}

/// Records every fixture anew against moto. Run by `scripts/record-fixtures`.
#[test]
#[ignore = "records fixtures; run by scripts/record-fixtures"]
fn record_fixtures() {
    for s in ALL {
        let moto = if matches!(s.runbook, "access-key-quarantine" | "user-lockout") {
            Moto::start_with_managed_policies()
        } else {
            Moto::start()
        };
        (s.setup)(&moto);
        let path = fixture(s.name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        let out = if s.user.is_empty() {
            let mut args = vec![
                "run",
                s.runbook,
                "--endpoint-url",
                &moto.url,
                "--journal",
                path.to_str().unwrap(),
            ];
            args.extend_from_slice(s.flags);
            run(&args)
        } else {
            run_against(&moto, s.runbook, s.user, &path, s.flags)
        };
        assert_eq!(
            out.status.code(),
            Some(s.exit_code),
            "{}: {:?}",
            s.name,
            text(&out)
        );
    }
    // The clock reader makes no IAM call: nothing is sent anywhere.
    let path = fixture("clock-reader");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    let clock = runbook_spec("clock-reader");
    let out = run(&["run", &clock, "--yes", "--journal", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}
