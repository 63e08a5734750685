//! Every recovery finishes, and its record tells the truth when things break:
//! a journal that cannot be written after a change was sent, a run that dies
//! mid-call, IAM on a bad day (a fault-injecting proxy in front of moto), and
//! `--resume`, which finishes the job without sending a settled change twice.

use runbook_host::bindings::MfaDevice;
use runbook_host::harness::Harness;
use runbook_host::journal::{Journal, JournalWriter, Partial, Record};
use runbook_host::request::{Request, Response};

use crate::support::moto::arn;
use crate::support::{run, text};

/// A journal sink that takes `lines` lines, then fails every write as a full
/// disk does.
struct FillsUpAfter {
    lines: usize,
}

impl std::io::Write for FillsUpAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.lines == 0 {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.lines -= buf.iter().filter(|&&b| b == b'\n').count();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_change_sent_before_the_disk_filled_is_reported_with_how_it_ended() {
    let serial = arn("mfa-test");
    let device = MfaDevice {
        user_name: "mfa-test".into(),
        serial_number: serial.clone(),
        enable_date: "2026-11-25T00:00:00Z".into(),
    };
    let mut deactivations = 0;
    // Lines: header, call 0, its result, a log line, call 1 (the
    // deactivation's intent): the disk is full when its outcome comes.
    let err = Harness::new("mfa-recovery")
        .unwrap()
        .param("user", "mfa-test")
        .journal(JournalWriter::to_writer(FillsUpAfter { lines: 5 }))
        .answer_with(move |req| match req {
            Request::ListMfaDevices { .. } => Ok(Response::MfaDevices(vec![device.clone()])),
            Request::DeactivateMfaDevice { .. } => {
                deactivations += 1;
                assert_eq!(deactivations, 1, "sent once");
                Ok(Response::Done)
            }
            other => panic!("the run must stop at the unrecorded change, not {other:?}"),
        })
        .run()
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains(&format!(
            "deactivate MFA device {serial} of user mfa-test: sent to IAM and succeeded, but the journal could not record it"
        )),
        "{message}"
    );
    assert!(
        message.contains("cannot write the journal footer"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "changes sent to IAM: deactivate MFA device {serial}"
        )),
        "{message}"
    );
}

#[test]
fn a_torn_last_line_is_left_out_and_named() {
    let seed = seed_fixture();
    let mut torn: String = seed.lines().take(5).map(|l| format!("{l}\n")).collect();
    let sixth = seed.lines().nth(5).unwrap();
    torn.push_str(&sixth[..sixth.len() / 2]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torn.jsonl");
    std::fs::write(&path, &torn).unwrap();
    let p = Partial::read(&path).unwrap();
    assert!(p.torn && p.footer.is_none() && p.lines == 5);
    assert_eq!(
        p.open_call().map(|c| c.request.op()),
        Some("deactivate-mfa-device")
    );
    let out = run(&["show", path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}{stderr}");
    assert!(
        stdout.contains("(a partly written last line was left out)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "call 1 (deactivate-mfa-device) has no recorded outcome: it may or may not have reached IAM"
        ),
        "{stdout}"
    );
    // verify still refuses it: a record without a footer is not whole.
    let verified = run(&["verify", path.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(7));
}

fn seed_fixture() -> String {
    std::fs::read_to_string(crate::support::root().join("tests/fixtures/seed-case/journal.jsonl"))
        .unwrap()
}

#[test]
fn a_crashed_journal_is_shown_under_a_banner_and_snapshots() {
    // The seed fixture cut after the deactivation's intent: what a run
    // killed while IAM was answering leaves.
    let seed = seed_fixture();
    let cut: String = seed.lines().take(5).map(|l| format!("{l}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crashed.jsonl");
    std::fs::write(&path, &cut).unwrap();
    let p = Partial::read(&path).unwrap();
    assert!(matches!(p.records.last(), Some(Record::Call(_))));
    assert!(Journal::read(&path).is_err(), "incomplete for verify");

    let out = run(&["show", path.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(7));
    insta::with_settings!({filters => vec![
        (r"[0-9a-f]{64}", "[sha256]"),
        (r"\d{4}-\d\d-\d\dT[0-9:.]+Z", "[time]"),
        (r"/\S*/crashed\.jsonl", "[journal]"),
    ]}, {
        insta::assert_snapshot!("crashed_journal_show", stdout);
    });
}
