//! Every recovery finishes, and its record tells the truth when things break:
//! a journal that cannot be written after a change was sent, a run that dies
//! mid-call, IAM on a bad day (a fault-injecting proxy in front of moto), and
//! `--resume`, which finishes the job without sending a settled change twice.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_iam::types::AssignmentStatusType;
use runbook_host::bindings::MfaDevice;
use runbook_host::harness::Harness;
use runbook_host::journal::{CallOutcome, Journal, JournalWriter, Partial, Record};
use runbook_host::request::{Request, Response};

use crate::support::moto::{Moto, arn};
use crate::support::proxy::{Fault, Forward, Proxy, Rule};
use crate::support::scenarios::seed_world;
use crate::support::{run, runbook, text};

const USERS: &[&str] = &["mfa-test", "alice"];

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
        (r"\[request ids? [^\]]*\]", "[request id]"),
    ]}, {
        insta::assert_snapshot!("crashed_journal_show", stdout);
    });
}

/// A recovery of the seed world (mfa-test's virtual device, bystander alice,
/// an orphan device) against a fault-injecting proxy in front of moto.
struct BadDay {
    moto: Moto,
    proxy: Proxy,
    dir: tempfile::TempDir,
}

impl BadDay {
    fn new() -> BadDay {
        let moto = Moto::start();
        seed_world(&moto);
        let proxy = Proxy::start(&moto);
        BadDay {
            moto,
            proxy,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn journal(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `runbook run mfa-recovery --user mfa-test` through the proxy, with
    /// `--yes` and `extra`, journaling to `name`.
    fn run(&self, name: &str, extra: &[&str]) -> (Output, Journal) {
        let out = self.command(name, extra).output().expect("running runbook");
        let journal = Journal::read(&self.journal(name)).unwrap_or_else(|e| {
            panic!(
                "{name} must verify: {e}\n{:?}\n{}",
                text(&out),
                self.proxy.log()
            )
        });
        (out, journal)
    }

    fn command(&self, name: &str, extra: &[&str]) -> std::process::Command {
        let mut cmd = runbook();
        cmd.args([
            "run",
            "mfa-recovery",
            "--user",
            "mfa-test",
            "--endpoint-url",
            &self.proxy.url,
            "--journal",
            self.journal(name).to_str().unwrap(),
            "--yes",
        ])
        .args(extra);
        cmd
    }

    /// The next `times` unassigned lists after the deactivation still give
    /// the list from before it (without the detached device).
    fn stale_unassigned_list(&self, times: usize) {
        self.prime_unassigned_list();
        self.proxy.add(
            Rule::on("ListVirtualMFADevices", Fault::Stale)
                .with("AssignmentStatus", "Unassigned")
                .after("DeactivateMFADevice")
                .times(times),
        );
    }

    /// Send the runbook's own `ListVirtualMFADevices Unassigned` request
    /// through the proxy now, so a `Stale` rule has this answer to give later.
    fn prime_unassigned_list(&self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = rt.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_iam::config::Credentials::new(
                    "testing", "testing", None, None, "tests",
                ))
                .endpoint_url(&self.proxy.url)
                .load(),
        );
        rt.block_on(
            aws_sdk_iam::Client::new(&config)
                .list_virtual_mfa_devices()
                .assignment_status(AssignmentStatusType::Unassigned)
                .max_items(1000)
                .send(),
        )
        .expect("list-virtual-mfa-devices through the proxy");
    }

    /// The recovery is done: mfa-test has no device and its virtual one is
    /// deleted, alice's and the orphan are untouched, and IAM applied each
    /// change exactly once.
    fn assert_recovered(&self) {
        let log = self.proxy.log();
        assert_eq!(
            self.moto.devices_of("mfa-test"),
            Vec::<String>::new(),
            "{log}"
        );
        assert_eq!(self.moto.devices_of("alice"), vec![arn("alice")], "{log}");
        assert_eq!(
            self.moto.virtual_devices(),
            vec![
                (arn("alice"), Some("alice".to_owned())),
                (arn("orphan"), None)
            ],
            "{log}"
        );
        assert_eq!(self.proxy.applied("DeactivateMFADevice"), 1, "{log}");
        assert_eq!(self.proxy.applied("DeleteVirtualMFADevice"), 1, "{log}");
    }

    /// Run a printed `--resume` command (`args` after `runbook`) with a
    /// journal of `name` and `--yes`; it must succeed. Returns the journal.
    fn run_printed_resume(&self, mut args: Vec<String>, name: &str) -> PathBuf {
        let resumed = self.journal(name);
        args.extend([
            "--journal".to_owned(),
            resumed.display().to_string(),
            "--yes".to_owned(),
        ]);
        let out = runbook().args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{:?}\n{}",
            text(&out),
            self.proxy.log()
        );
        resumed
    }

    /// Every change reached IAM exactly once (not only applied once).
    fn assert_sent_once(&self) {
        let log = self.proxy.log();
        assert_eq!(self.proxy.sent("DeactivateMFADevice"), 1, "{log}");
        assert_eq!(self.proxy.sent("DeleteVirtualMFADevice"), 1, "{log}");
    }
}

fn ops(j: &Journal) -> Vec<&'static str> {
    j.calls().map(|(c, _)| c.request.op()).collect()
}

/// The exact `--resume` command a run printed, as arguments after `runbook`.
fn printed_resume_command(stdout: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .skip_while(|l| !l.starts_with("to finish this run"))
        .nth(1)
        .unwrap_or_else(|| panic!("no resume command in:\n{stdout}"));
    line.split_whitespace()
        .skip(1) // `runbook`
        .map(|w| w.trim_matches('\'').to_owned())
        .collect()
}

#[test]
fn a_stale_device_list_after_the_deactivation_is_read_again_and_the_run_finishes() {
    let day = BadDay::new();
    day.proxy.add(
        Rule::on("ListMFADevices", Fault::Stale)
            .after("DeactivateMFADevice")
            .times(2),
    );
    let (out, j) = day.run("run.jsonl", &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    day.assert_recovered();
    day.assert_sent_once();
    // Two stale reads, two recorded waits, then the truth.
    assert_eq!(
        ops(&j),
        [
            "list-mfa-devices",
            "deactivate-mfa-device",
            "list-mfa-devices",
            "clock-sleep",
            "list-mfa-devices",
            "clock-sleep",
            "list-mfa-devices",
            "list-virtual-mfa-devices",
            "delete-virtual-mfa-device",
        ]
    );
    // Lists ask for IAM's largest page.
    assert!(
        day.proxy.log().contains("MaxItems=1000"),
        "{}",
        day.proxy.log()
    );
}

#[test]
fn a_stale_unassigned_list_is_read_again_and_the_run_finishes() {
    let day = BadDay::new();
    day.stale_unassigned_list(1);
    let (out, j) = day.run("run.jsonl", &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    day.assert_recovered();
    day.assert_sent_once();
    assert!(ops(&j).contains(&"clock-sleep"), "{:?}", ops(&j));
}

#[test]
fn a_delete_conflict_is_waited_out_in_the_same_run() {
    let day = BadDay::new();
    day.proxy
        .add(Rule::on("DeleteVirtualMFADevice", Fault::delete_conflict()));
    let (out, _) = day.run("run.jsonl", &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    day.assert_recovered();
    day.assert_sent_once();
}

#[test]
fn a_concurrent_modification_is_retried_by_the_host_and_each_attempt_is_journaled() {
    let day = BadDay::new();
    day.proxy.add(Rule::on(
        "DeactivateMFADevice",
        Fault::concurrent_modification(),
    ));
    day.proxy.add(Rule::on(
        "DeleteVirtualMFADevice",
        Fault::temporarily_unmodifiable(),
    ));
    let (out, j) = day.run("run.jsonl", &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    day.assert_recovered();
    day.assert_sent_once();
    let retries: Vec<(&str, Vec<String>)> = j
        .calls()
        .filter(|(_, e)| !e.retries.is_empty())
        .map(|(c, e)| (c.request.op(), e.retries.clone()))
        .collect();
    assert_eq!(retries.len(), 2, "{retries:?}");
    assert_eq!(retries[0].0, "deactivate-mfa-device");
    assert!(
        retries[0].1[0].starts_with("ConcurrentModification: "),
        "{retries:?}"
    );
    assert_eq!(retries[1].0, "delete-virtual-mfa-device");
    assert!(
        retries[1].1[0].starts_with("EntityTemporarilyUnmodifiable: "),
        "{retries:?}"
    );
    let shown = run(&["show", day.journal("run.jsonl").to_str().unwrap()]);
    assert!(
        text(&shown)
            .0
            .contains("[after 1 failed attempt(s): ConcurrentModification]"),
        "{:?}",
        text(&shown)
    );
}

#[test]
fn a_dropped_connection_is_retried_and_a_change_already_made_is_not_made_twice() {
    // Dropped before IAM saw it: the retry is the one that reaches IAM.
    let day = BadDay::new();
    day.proxy.add(Rule::on(
        "DeactivateMFADevice",
        Fault::Drop { forwarded: false },
    ));
    let (out, j) = day.run("run.jsonl", &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    day.assert_recovered();
    day.assert_sent_once();
    let (_, end) = j.calls().nth(1).unwrap();
    assert!(
        end.retries[0].starts_with("Transport: "),
        "{:?}",
        end.retries
    );

    // Dropped after IAM applied it: the retry reaches IAM too, which says the
    // device is no longer attached; the runbook checks, and finishes.
    let day = BadDay::new();
    day.proxy.add(Rule::on(
        "DeleteVirtualMFADevice",
        Fault::Drop { forwarded: true },
    ));
    let (out, _) = day.run("run.jsonl", &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stderr.contains("found deleted virtual MFA device"),
        "{stderr}"
    );
    day.assert_recovered();
}

#[test]
fn a_stall_longer_than_the_deadline_is_cut_there_and_resume_finishes_the_job() {
    let day = BadDay::new();
    let stall = Duration::from_secs(30);
    day.proxy.add(Rule::on(
        "DeactivateMFADevice",
        Fault::Stall {
            duration: stall,
            forward: Forward::Never,
        },
    ));
    let started = Instant::now();
    let (out, j) = day.run("cut.jsonl", &["--deadline", "2"]);
    let elapsed = started.elapsed();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stdout}{stderr}");
    assert!(elapsed < stall / 2, "the run took {elapsed:?}");
    let (call, end) = j.calls().last().unwrap();
    assert_eq!(call.request.op(), "deactivate-mfa-device");
    assert!(
        matches!(&end.outcome, CallOutcome::Cut { reason } if reason.contains("may or may not have reached IAM")),
        "{:?}",
        end.outcome
    );
    day.proxy.release("DeactivateMFADevice");

    // The exact command printed finishes the recovery.
    let args = printed_resume_command(&stdout);
    let resumed = day.run_printed_resume(args, "resumed.jsonl");
    day.assert_recovered();
    day.assert_sent_once();
    let j = Journal::read(&resumed).unwrap();
    let resumes = j.header.resumes.as_ref().expect("names what it resumes");
    assert_eq!(
        resumes.journal,
        day.journal("cut.jsonl").display().to_string()
    );
    assert_eq!(
        resumes.calls_reused, 1,
        "the first list, not the cut change"
    );
    // verify checks the journal it resumes still ends where it was resumed.
    let verified = run(&["verify", resumed.to_str().unwrap()]);
    let (stdout, stderr) = text(&verified);
    assert_eq!(verified.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("which still ends in the pinned line"),
        "{stdout}"
    );
    let pinned = run(&[
        "verify",
        resumed.to_str().unwrap(),
        "--last-hash",
        &j.last_hash,
    ]);
    assert_eq!(pinned.status.code(), Some(0), "{:?}", text(&pinned));
    let wrong = run(&[
        "verify",
        resumed.to_str().unwrap(),
        "--last-hash",
        &"0".repeat(64),
    ]);
    assert_eq!(wrong.status.code(), Some(7));
    assert!(
        text(&wrong).1.contains("not the pinned"),
        "{:?}",
        text(&wrong)
    );
    // The journal it resumed loses its footer (a valid, shorter chain), then
    // gets a line that is not a journal record: both are caught.
    let original = std::fs::read_to_string(day.journal("cut.jsonl")).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let shortened: String = lines[..lines.len() - 1]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    for (content, needle) in [
        (shortened, "it changed after it was resumed"),
        (
            format!("{original}{{\"kind\":\"log\"}}\n"),
            "which is damaged",
        ),
    ] {
        std::fs::write(day.journal("cut.jsonl"), content).unwrap();
        let changed = run(&["verify", resumed.to_str().unwrap()]);
        assert_eq!(changed.status.code(), Some(7), "{:?}", text(&changed));
        assert!(text(&changed).1.contains(needle), "{:?}", text(&changed));
    }
    // The resumed journal replays offline like any other, and shows which
    // answers came from the journal it resumed.
    let replay = run(&["replay", resumed.to_str().unwrap()]);
    assert_eq!(replay.status.code(), Some(0), "{:?}", text(&replay));
    let shown = run(&["show", resumed.to_str().unwrap()]);
    let (stdout, _) = text(&shown);
    assert!(
        stdout.contains("1 device(s): arn:aws:iam::123456789012:mfa/mfa-test [answered from the resumed journal, not sent]"),
        "{stdout}"
    );
}

#[test]
fn a_detached_device_left_undeleted_fails_and_the_printed_resume_deletes_it() {
    let day = BadDay::new();
    // IAM does not list the detached device as unassigned for the whole of
    // the runbook's patience (one read and five re-reads, 20 s).
    day.stale_unassigned_list(6);
    let (out, j) = day.run("failed.jsonl", &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "never 'succeeded': {stdout}{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "the detached virtual MFA device(s) {} are not deleted",
            arn("mfa-test")
        )),
        "{stdout}"
    );
    assert_eq!(
        day.moto.virtual_devices().len(),
        3,
        "left behind, unassigned"
    );
    let args = printed_resume_command(&stdout);
    assert_eq!(
        args,
        [
            "run",
            "mfa-recovery",
            "--user",
            "mfa-test",
            "--endpoint-url",
            &day.proxy.url,
            "--resume",
            &day.journal("failed.jsonl").display().to_string(),
        ]
    );
    assert_eq!(
        j.calls().filter(|(c, _)| c.request.is_mutation()).count(),
        1
    );

    let resumed = day.run_printed_resume(args, "resumed.jsonl");
    day.assert_recovered();
    day.assert_sent_once();
    let j = Journal::read(&resumed).unwrap();
    // The listing and the deactivation came from the failed run's journal.
    let reused: Vec<&str> = j
        .calls()
        .filter(|(_, e)| e.resumed)
        .map(|(c, _)| c.request.op())
        .collect();
    assert_eq!(reused, ["list-mfa-devices", "deactivate-mfa-device"]);
}

#[test]
fn sigkill_in_the_middle_of_a_run_then_resume_completes_the_recovery() {
    for forward in [Forward::Never, Forward::After] {
        let day = BadDay::new();
        day.proxy.add(Rule::on(
            "DeactivateMFADevice",
            Fault::Stall {
                duration: Duration::from_secs(60),
                forward,
            },
        ));
        let mut child = day
            .command("killed.jsonl", &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        day.proxy
            .wait_until_held("DeactivateMFADevice", Duration::from_secs(60));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        day.proxy.release("DeactivateMFADevice");
        day.proxy.wait_until_idle(Duration::from_secs(10));

        let killed = Partial::read(&day.journal("killed.jsonl")).unwrap();
        assert!(killed.footer.is_none());
        assert_eq!(
            killed.open_call().map(|c| c.request.op()),
            Some("deactivate-mfa-device")
        );

        let out = run(&[
            "run",
            "mfa-recovery",
            "--user",
            "mfa-test",
            "--endpoint-url",
            &day.proxy.url,
            "--resume",
            day.journal("killed.jsonl").to_str().unwrap(),
            "--journal",
            day.journal("resumed.jsonl").to_str().unwrap(),
            "--yes",
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{forward:?}: {stdout}{stderr}");
        day.assert_recovered();
        if forward == Forward::Never {
            day.assert_sent_once();
        } else {
            // IAM had applied it before the kill: the change whose outcome
            // was never journaled is sent again, and IAM's answer (the device
            // is no longer attached) decides.
            assert!(stderr.contains("found deactivated '"), "{stderr}");
        }
    }
}

#[test]
fn resume_refuses_another_user_a_succeeded_run_and_a_dry_run() {
    let day = BadDay::new();
    let (out, _) = day.run("ok.jsonl", &[]);
    assert_eq!(out.status.code(), Some(0));
    let before = day.moto.state(USERS);
    let ok = day.journal("ok.jsonl");
    let dry = day.journal("dry.jsonl");
    let out = run(&[
        "run",
        "mfa-recovery",
        "--user",
        "mfa-test",
        "--endpoint-url",
        &day.proxy.url,
        "--journal",
        dry.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    for (resumed, needle) in [
        (&ok, "succeeded: there is nothing to resume"),
        (
            &dry,
            "the journal is of a dry-run run, which changed nothing",
        ),
    ] {
        let out = day
            .command("again.jsonl", &["--resume", resumed.to_str().unwrap()])
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(
            !day.journal("again.jsonl").exists(),
            "a refused resume leaves no journal behind"
        );
    }
    let out = run(&[
        "run",
        "mfa-recovery",
        "--user",
        "alice",
        "--endpoint-url",
        &day.proxy.url,
        "--resume",
        ok.to_str().unwrap(),
        "--yes",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("had parameters `--user mfa-test`, not `--user alice`"),
        "{stderr}"
    );
    assert_eq!(day.moto.state(USERS), before, "nothing changed");
}

/// The last-line hash a run printed ("journal: PATH (last line sha256 H)").
fn printed_last_hash(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.split("(last line sha256 ").nth(1))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no last hash in:\n{stdout}"))
        .to_owned()
}

/// `text` (a journal) with line `n` (1-based) edited and every `prev` after
/// it recomputed: a forgery consistent with itself.
fn forged(text: &str, n: usize, edit: impl Fn(&mut serde_json::Value)) -> String {
    let mut prev = runbook_host::journal::GENESIS.to_owned();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if i + 1 == n {
            edit(&mut v);
        }
        v["prev"] = serde_json::Value::String(prev.clone());
        let line = serde_json::to_string(&v).unwrap();
        prev = runbook_host::journal::line_hash(&line);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The first run of `day` deactivates mfa-test's device and may not delete
/// it: it fails, leaving the device detached. Returns its stdout.
fn deactivated_not_deleted(day: &BadDay, journal: &str) -> String {
    let (out, _) = day.run(journal, &["--deny", "iam:DeleteVirtualMFADevice"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(day.moto.devices_of("mfa-test"), Vec::<String>::new());
    stdout
}

#[test]
fn a_journal_this_host_did_not_pin_is_trusted_only_when_vouched_for() {
    let day = BadDay::new();
    let stdout = deactivated_not_deleted(&day, "first.jsonl");
    let hash = printed_last_hash(&stdout);
    let first = std::fs::read_to_string(day.journal("first.jsonl")).unwrap();

    // Moved (or handed over): no pins under its new path. Its answers are not
    // trusted, so the run starts over; IAM no longer lists mfa-test's device,
    // so nothing is deleted on the journal's word.
    std::fs::write(day.journal("moved.jsonl"), &first).unwrap();
    let (out, j) = day.run(
        "unvouched.jsonl",
        &["--resume", day.journal("moved.jsonl").to_str().unwrap()],
    );
    let (stdout, stderr) = text(&out);
    assert!(stderr.contains("is not pinned by this host"), "{stderr}");
    assert_eq!(j.header.resumes.as_ref().unwrap().calls_reused, 0);
    assert_eq!(j.calls().filter(|(_, e)| e.resumed).count(), 0, "{stdout}");
    assert_eq!(day.moto.virtual_devices().len(), 3, "nothing deleted");

    // Vouched for with the hash its run printed: trusted, and it finishes.
    std::fs::write(day.journal("vouched.jsonl"), &first).unwrap();
    let (out, j) = day.run(
        "finished.jsonl",
        &[
            "--resume",
            day.journal("vouched.jsonl").to_str().unwrap(),
            "--last-hash",
            &hash,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(j.header.resumes.as_ref().unwrap().calls_reused, 2);
    day.assert_recovered();

    // Forged in place: the first answer now lists the orphan as mfa-test's,
    // the chain recomputed. The printed hash no longer vouches for it, and
    // without it nothing past the edit is pinned.
    let day = BadDay::new();
    let stdout = deactivated_not_deleted(&day, "first.jsonl");
    let hash = printed_last_hash(&stdout);
    let first = std::fs::read_to_string(day.journal("first.jsonl")).unwrap();
    let fake = forged(&first, 3, |v| {
        v["value"].as_array_mut().unwrap().push(serde_json::json!({
            "enable_date": "2026-11-25T00:00:00Z",
            "serial_number": arn("orphan"),
            "user_name": "mfa-test",
        }));
    });
    std::fs::write(day.journal("first.jsonl"), fake).unwrap();
    let out = day
        .command(
            "forged.jsonl",
            &[
                "--resume",
                day.journal("first.jsonl").to_str().unwrap(),
                "--last-hash",
                &hash,
            ],
        )
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("it is not the journal the hash was kept for"),
        "{stderr}"
    );
    let (_, j) = day.run(
        "forged.jsonl",
        &["--resume", day.journal("first.jsonl").to_str().unwrap()],
    );
    assert_eq!(j.header.resumes.as_ref().unwrap().calls_reused, 0);
    assert!(
        day.moto.virtual_devices().contains(&(arn("orphan"), None)),
        "the orphan survives a forged journal"
    );
}

#[test]
fn a_journal_is_resumed_once_and_a_resume_that_stopped_replaying_continues_from_its_source() {
    let day = BadDay::new();
    deactivated_not_deleted(&day, "first.jsonl");
    let first = day.journal("first.jsonl");

    // A resume that stops while replaying: its grant now denies the
    // deactivation the first run made, so the replay diverges at call 1.
    let (out, second) = day.run(
        "second.jsonl",
        &[
            "--resume",
            first.to_str().unwrap(),
            "--deny",
            "iam:DeactivateMFADevice",
        ],
    );
    assert_eq!(out.status.code(), Some(6), "{:?}", text(&out));
    assert_eq!(second.calls().filter(|(_, e)| e.resumed).count(), 1);

    // The first journal was claimed by that resume: not resumed twice.
    let out = day
        .command("again.jsonl", &["--resume", first.to_str().unwrap()])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("it was resumed already"), "{stderr}");
    assert!(stderr.contains("second.jsonl"), "{stderr}");
    assert!(!day.journal("again.jsonl").exists());

    // Resuming the second goes back to the first's record, and finishes.
    let (out, third) = day.run(
        "third.jsonl",
        &["--resume", day.journal("second.jsonl").to_str().unwrap()],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("resuming from that journal's record"),
        "{stderr}"
    );
    let resumes = third.header.resumes.as_ref().unwrap();
    assert_eq!(resumes.journal, first.display().to_string());
    assert_eq!(resumes.calls_reused, 2);
    day.assert_recovered();
    day.assert_sent_once();
}

#[test]
fn on_a_terminal_an_approved_change_iam_refused_once_may_be_sent_again() {
    let day = BadDay::new();
    day.proxy
        .add(Rule::on("DeleteVirtualMFADevice", Fault::delete_conflict()));
    let journal = day.journal("run.jsonl");
    let line = format!(
        "{} run mfa-recovery --user mfa-test --endpoint-url {} --journal {}",
        crate::support::runbook_bin().display(),
        day.proxy.url,
        journal.display()
    );
    let (code, shown) = crate::support::on_a_terminal(&line, "y");
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("apply these 2 change(s)?"), "{shown}");
    day.assert_recovered();
    day.assert_sent_once();
    let j = Journal::read(&journal).unwrap();
    let deletes = j
        .calls()
        .filter(|(c, _)| c.request.op() == "delete-virtual-mfa-device")
        .count();
    assert_eq!(deletes, 2, "refused once by IAM, then sent again");
}

#[test]
fn a_run_killed_before_its_first_change_is_run_again_not_resumed() {
    // The seed fixture cut after its first read: killed before its first
    // change, so before it recorded its caller (an identity line comes just
    // before the first change). Nothing needs resuming, and saying so beats
    // comparing a caller it never learned.
    // (The fixture predates the identity line: its header names the caller,
    // which a run of this host would not yet have written.)
    let seed = seed_fixture();
    let mut lines: Vec<serde_json::Value> = seed
        .lines()
        .take(3)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines[0]["target"].as_object_mut().unwrap().remove("caller");
    let cut = crate::journal::chain(lines);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.jsonl");
    std::fs::write(&path, &cut).unwrap();
    let p = Partial::read(&path).unwrap();
    assert_eq!(p.caller(), None);
    let out = crate::support::runbook()
        .env("RUNBOOK_STATE_DIR", dir.path())
        .args(["run", "mfa-recovery", "--user", "mfa-test", "--yes"])
        .args(["--endpoint-url", "http://127.0.0.1:9", "--resume"])
        .arg(&path)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("the journal's run stopped before its first change (it changed nothing, and never recorded its caller): there is nothing to resume; run again"),
        "{stderr}"
    );
}
