use std::path::Path;

use runbook_host::journal::{CallOutcome, Journal, Mode, Record, RunOutcome};

use crate::support::moto::{Moto, arn};
use crate::support::scenarios::seed_world;
use crate::support::{run_against, text};

/// Run mfa-recovery against `moto` with `extra` flags; returns the output and
/// the verified journal.
fn recover(moto: &Moto, user: &str, extra: &[&str]) -> (std::process::Output, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let out = run_against(moto, "mfa-recovery", user, &journal, extra);
    let j = Journal::read(&journal)
        .unwrap_or_else(|e| panic!("the journal must verify: {e}\n{}", text(&out).1));
    (out, j)
}

/// The operations of a journal's calls, in order.
fn ops(j: &Journal) -> Vec<&'static str> {
    j.calls().map(|(c, _)| c.request.op()).collect()
}

/// `runbook run mfa-recovery --user USER --yes --journal JOURNAL`, its state
/// (remembered callers, pins) in `state`, with what `with` adds (flags, the
/// environment).
fn recover_in(
    state: &Path,
    user: &str,
    journal: &Path,
    with: impl FnOnce(&mut std::process::Command),
) -> std::process::Output {
    let mut cmd = crate::support::runbook();
    cmd.env("RUNBOOK_STATE_DIR", state)
        .args(["run", "mfa-recovery", "--user", user, "--yes", "--journal"])
        .arg(journal);
    with(&mut cmd);
    cmd.output().unwrap()
}

fn mutations_sent(j: &Journal) -> usize {
    j.calls()
        .filter(|(c, e)| c.request.is_mutation() && matches!(e.outcome, CallOutcome::Ok { .. }))
        .count()
}

#[test]
fn seed_case_recovers_mfa_test_and_touches_nothing_else() {
    let moto = Moto::start();
    let seed = seed_world(&moto);
    let (out, journal) = recover(&moto, "mfa-test", &["--yes"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");

    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new());
    assert_eq!(moto.devices_of("alice"), vec![arn("alice")]);
    assert_eq!(
        moto.virtual_devices(),
        vec![
            (arn("alice"), Some("alice".to_owned())),
            (arn("orphan"), None)
        ],
        "mfa-test's device is deleted; alice's and the orphan survive"
    );

    assert_eq!(
        ops(&journal),
        [
            "list-mfa-devices",
            "deactivate-mfa-device",
            "list-mfa-devices",
            "list-virtual-mfa-devices",
            "delete-virtual-mfa-device"
        ]
    );
    assert_eq!(journal.header.mode, Mode::Live);
    assert_eq!(journal.header.parameters["user"], "mfa-test");
    assert!(matches!(
        journal.footer.outcome,
        RunOutcome::Succeeded { .. }
    ));
    let raw = std::fs::read_to_string(journal_path(&stdout)).unwrap_or_default();
    assert!(!raw.contains(&seed), "the MFA seed reached the journal");
    assert!(!raw.contains("testing"), "credentials reached the journal");

    assert!(
        stdout.contains("succeeded: 'mfa-test' has no MFA device now"),
        "{stdout}"
    );
    assert!(
        stdout.contains("register a new MFA device at once"),
        "{stdout}"
    );
}

/// The journal path a run printed.
fn journal_path(stdout: &str) -> &Path {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("journal: "))
        .expect("the run prints its journal path");
    Path::new(line.split(" (").next().unwrap())
}

#[test]
fn seed_case_journal_and_output_match_the_reviewed_snapshots() {
    let moto = Moto::start();
    seed_world(&moto);
    let (out, journal) = recover(&moto, "mfa-test", &["--yes"]);
    let (stdout, stderr) = text(&out);
    insta::assert_json_snapshot!("seed_case_journal", journal.records, {
        "[].started_at" => "[time]",
        "[].finished_at" => "[time]",
        // A fresh seed and the start of the virtual clock, per run.
        "[].wasi.random_seed" => "[seed]",
        "[].wasi.clock_start.seconds" => "[time]",
        "[].wasi.clock_start.nanoseconds" => "[time]",
        "[].duration_us" => "[duration]",
        "[].wasm_sha256" => "[sha256]",
        // Fuel depends on the build, like the sha256.
        "[].fuel_used" => "[fuel]",
        "[].sent_at" => "[time]",
        "[].request_ids[]" => "[request-id]",
        "[].target.endpoint" => "[moto]",
        "[].value[].enable_date" => "[time]",
    });
    let filters = vec![
        (r"sha256 [0-9a-f]{12,64}", "sha256 [hash]"),
        (r"journal: \S+", "journal: [path]"),
    ];
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("seed_case_output", format!("--- stdout\n{stdout}--- stderr\n{stderr}"));
    });
}

#[test]
fn two_virtual_devices_named_unlike_the_user_are_both_removed() {
    let moto = Moto::start();
    moto.user("mfa-test");
    let (a, _) = moto.virtual_device("phone-a");
    let (b, _) = moto.virtual_device("phone-b");
    moto.enable("mfa-test", &a).enable("mfa-test", &b);
    moto.virtual_device("orphan");
    let (out, journal) = recover(&moto, "mfa-test", &["--yes"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new());
    assert_eq!(moto.virtual_devices(), vec![(arn("orphan"), None)]);
    assert_eq!(
        mutations_sent(&journal),
        4,
        "two deactivations, two deletions"
    );
}

#[test]
fn a_hardware_token_is_deactivated_and_never_deleted() {
    let moto = Moto::start();
    moto.user("mfa-test").enable("mfa-test", "GAHT12345678");
    moto.virtual_device("orphan");
    let (out, journal) = recover(&moto, "mfa-test", &["--yes"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new());
    assert_eq!(
        ops(&journal),
        [
            "list-mfa-devices",
            "deactivate-mfa-device",
            "list-mfa-devices"
        ],
        "no virtual device was detached, so none is listed or deleted"
    );
    assert_eq!(moto.virtual_devices(), vec![(arn("orphan"), None)]);
}

#[test]
fn a_user_without_mfa_is_a_successful_no_op() {
    let moto = Moto::start();
    moto.user("mfa-test");
    moto.user_with_virtual("alice", "alice");
    let before = moto.state(&["mfa-test", "alice"]);
    let (out, journal) = recover(&moto, "mfa-test", &["--yes"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("has no MFA device; nothing changed"),
        "{stdout}"
    );
    assert!(stdout.contains("changed: nothing"), "{stdout}");
    assert_eq!(ops(&journal), ["list-mfa-devices"]);
    assert_eq!(moto.state(&["mfa-test", "alice"]), before);
}

#[test]
fn a_user_that_does_not_exist_fails_naming_the_user() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(&["mfa-test", "alice"]);
    let (out, journal) = recover(&moto, "no-such-user", &["--yes"]);
    let (stdout, _) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit 1 is a runbook failure: {stdout}"
    );
    assert!(
        stdout.contains("failed: IAM user 'no-such-user' does not exist"),
        "{stdout}"
    );
    let (_, end) = journal.calls().next().unwrap();
    assert!(
        matches!(&end.outcome, CallOutcome::Error { .. }),
        "the NoSuchEntity error is journaled: {end:?}"
    );
    assert!(matches!(journal.footer.outcome, RunOutcome::Failed { .. }));
    assert_eq!(moto.state(&["mfa-test", "alice"]), before);
}

#[test]
fn dry_run_plans_every_change_and_sends_none() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(&["mfa-test", "alice"]);
    let (out, journal) = recover(&moto, "mfa-test", &["--dry-run"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        moto.state(&["mfa-test", "alice"]),
        before,
        "nothing changed"
    );
    assert!(
        stdout.contains("dry run, nothing changed; would change:"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("delete virtual MFA device {}", arn("mfa-test"))),
        "{stdout}"
    );
    assert_eq!(journal.header.mode, Mode::DryRun);
    let planned: Vec<_> = journal
        .calls()
        .filter(|(_, e)| e.outcome == CallOutcome::Planned)
        .map(|(c, _)| c.request.op())
        .collect();
    assert_eq!(
        planned,
        ["deactivate-mfa-device", "delete-virtual-mfa-device"]
    );
    assert_eq!(mutations_sent(&journal), 0);
}

#[test]
fn without_a_terminal_or_yes_nothing_changes_and_the_message_says_yes() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(&["mfa-test", "alice"]);
    let (out, journal) = recover(&moto, "mfa-test", &[]);
    let (stdout, _) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(5),
        "exit 5 is consent refused: {stdout}"
    );
    assert!(stdout.contains("pass --yes"), "{stdout}");
    assert_eq!(moto.state(&["mfa-test", "alice"]), before);
    assert!(matches!(journal.footer.outcome, RunOutcome::Refused { .. }));
    let (_, last) = journal.calls().last().unwrap();
    assert!(
        matches!(last.outcome, CallOutcome::Refused { .. }),
        "{last:?}"
    );
    assert_eq!(mutations_sent(&journal), 0);
    assert!(
        journal
            .records
            .iter()
            .all(|r| !matches!(r, Record::Result(e) if e.outcome == CallOutcome::Planned))
    );
}

#[test]
fn a_live_run_journals_the_request_id_of_every_answer_iam_sent() {
    let moto = Moto::start();
    seed_world(&moto);
    let (out, journal) = recover(&moto, "mfa-test", &["--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let mut ids = Vec::new();
    for (call, end) in journal.calls() {
        // moto sends x-amzn-RequestId on every answer, as IAM does: one
        // answer per call here (one page, no retries).
        assert_eq!(end.request_ids.len(), 1, "call {}: {end:?}", call.index);
        assert!(!end.request_ids[0].is_empty());
        assert!(end.sent_at.is_some(), "call {}", call.index);
        ids.push(end.request_ids[0].clone());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "each answer has its own id");
}

#[test]
fn show_cloudtrail_prints_a_lookup_per_change_sent() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let out = run_against(&moto, "mfa-recovery", "mfa-test", &path, &["--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let show = crate::support::run(&["show", path.to_str().unwrap(), "--cloudtrail"]);
    let (stdout, stderr) = text(&show);
    assert_eq!(show.status.code(), Some(0), "{stderr}");
    // The ids in the commands are the journal's ids of the two changes.
    let journal = Journal::read(&path).unwrap();
    for (call, end) in journal.calls() {
        let id = &end.request_ids[0];
        assert_eq!(
            stdout.contains(&format!("contains(CloudTrailEvent, '{id}')")),
            call.request.is_mutation(),
            "call {}: {stdout}",
            call.index
        );
    }
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[time]"),
        (r"request id [A-Za-z0-9-]+", "request id [request-id]"),
        (r"contains\(CloudTrailEvent, '[A-Za-z0-9-]+'\)", "contains(CloudTrailEvent, '[request-id]')"),
    ]}, {
        insta::assert_snapshot!("show_cloudtrail", stdout);
    });
}

#[test]
fn the_caller_is_asked_of_sts_once_per_access_key_and_remembered_privately() {
    use crate::support::proxy::{Fault, Proxy, Rule};
    let moto = Moto::start();
    moto.user_with_virtual("u1", "u1");
    moto.user_with_virtual("u2", "u2");
    let proxy = Proxy::start(&moto);
    let state = tempfile::tempdir().unwrap();
    let run = |user: &str| {
        let journal = state.path().join(format!("{user}.jsonl"));
        let out = recover_in(state.path(), user, &journal, |cmd| {
            cmd.args(["--endpoint-url", &proxy.url]);
        });
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        Journal::read(&journal).unwrap()
    };
    let first = run("u1");
    assert_eq!(first.caller(), Some("arn:aws:sts::123456789012:user/moto"));
    assert_eq!(proxy.applied("GetCallerIdentity"), 1, "{}", proxy.log());
    // Now STS refuses: the second run knows its caller all the same, from
    // the first run's answer for the same access key at the same endpoint.
    let deny = proxy.add(Rule::on("GetCallerIdentity", Fault::access_denied()).always());
    let second = run("u2");
    assert_eq!(second.caller(), Some("arn:aws:sts::123456789012:user/moto"));
    assert_eq!(proxy.fired(deny), 0, "not asked again: {}", proxy.log());
    // Kept private: the directory is the user's alone, and holds no secret.
    let dir = state.path().join("callers");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o077,
        0
    );
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        assert_eq!(text, "arn:aws:sts::123456789012:user/moto");
    }
}

#[test]
fn a_stalled_sts_costs_a_run_no_more_than_its_deadline() {
    use crate::support::proxy::{Fault, Forward, Proxy, Rule};
    let moto = Moto::start();
    moto.user_with_virtual("mfa-test", "mfa-test");
    let proxy = Proxy::start(&moto);
    // STS holds its answer a minute: the caller is waited for before the
    // first change, within the run's deadline, not the SDK's timeout.
    proxy.add(
        Rule::on(
            "GetCallerIdentity",
            Fault::Stall {
                duration: std::time::Duration::from_secs(60),
                forward: Forward::Before,
            },
        )
        .always(),
    );
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("run.jsonl");
    let started = std::time::Instant::now();
    let out = crate::support::runbook()
        .env("RUNBOOK_STATE_DIR", state.path())
        .args(["run", "mfa-recovery", "--user", "mfa-test", "--yes"])
        .args(["--deadline", "3", "--endpoint-url", &proxy.url, "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_secs(20),
        "took {elapsed:?}: {:?}",
        text(&out)
    );
    let j = Journal::read(&journal).unwrap();
    assert_eq!(
        j.caller(),
        Some("unknown (STS did not answer before the run's deadline)")
    );
    // Past the deadline, nothing was changed.
    assert_eq!(out.status.code(), Some(4), "{:?}", text(&out));
    assert_eq!(mutations_sent(&j), 0);
}

#[test]
fn credentials_that_never_come_cost_a_run_no_more_than_its_deadline() {
    // Credentials are resolved once the run has started, by its first call
    // (none at set-up, none for a caller remembered or not): a credential
    // helper that hangs (a stuck SSO login, a token waiting for a touch)
    // holds that call, within the run's deadline, never the run past it.
    let moto = Moto::start();
    let (serial, _) = moto.user_with_virtual("mfa-test", "mfa-test");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "[profile stuck]\ncredential_process = sleep 20\n").unwrap();
    let journal = dir.path().join("run.jsonl");
    let started = std::time::Instant::now();
    let out = crate::support::runbook()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", &config)
        .env("RUNBOOK_STATE_DIR", dir.path())
        .args(["run", "mfa-recovery", "--user", "mfa-test", "--yes"])
        .args(["--profile", "stuck", "--deadline", "2"])
        .args(["--endpoint-url", &moto.url, "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_secs(15),
        "took {elapsed:?}: {:?}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(4), "{:?}", text(&out));
    assert!(
        text(&out).0.contains(
            "stopped at the run's deadline (--deadline): the run's deadline passed during list-mfa-devices"
        ),
        "{:?}",
        text(&out)
    );
    // The journal is whole and says so; nothing was sent, nothing changed.
    let j = Journal::read(&journal).unwrap();
    assert_eq!(j.calls().count(), 1);
    assert_eq!(mutations_sent(&j), 0);
    assert!(
        matches!(
            j.footer.outcome,
            RunOutcome::Trapped { .. } | RunOutcome::Aborted { .. }
        ),
        "{:?}",
        j.footer.outcome
    );
    assert_eq!(moto.devices_of("mfa-test"), vec![serial]);
}

#[test]
fn a_run_refused_before_it_starts_asks_aws_nothing() {
    // AWS is set up from the first moment of a run, but nothing is asked of
    // it (credentials, the caller) until the run has passed its checks and
    // made its journal: here the journal's path is taken.
    use crate::support::proxy::Proxy;
    let moto = Moto::start();
    moto.user_with_virtual("mfa-test", "mfa-test");
    let proxy = Proxy::start(&moto);
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("taken.jsonl");
    std::fs::write(&journal, "").unwrap();
    let out = crate::support::runbook()
        .env("RUNBOOK_STATE_DIR", state.path())
        .args(["run", "mfa-recovery", "--user", "mfa-test", "--yes"])
        .args(["--endpoint-url", &proxy.url, "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    // A host error (3), as `bad_input` shows for this journal.
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));
    assert!(text(&out).1.contains("already exists"), "{:?}", text(&out));
    for op in ["GetCallerIdentity", "ListMFADevices"] {
        assert_eq!(proxy.applied(op), 0, "{op}: {}", proxy.log());
    }
    assert!(!state.path().join("callers").exists());
}

#[test]
fn the_endpoint_flag_wins_over_the_environment_and_the_header_says_where_calls_went() {
    // The flag wins over every variable, for IAM's calls and STS's, and the
    // header records it. Here the variables name a closed port.
    let moto = Moto::start();
    let (serial, _) = moto.user_with_virtual("mfa-test", "mfa-test");
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("run.jsonl");
    let closed = "http://127.0.0.1:9";
    let out = recover_in(state.path(), "mfa-test", &journal, |cmd| {
        cmd.env("AWS_ENDPOINT_URL_IAM", closed)
            .env("AWS_ENDPOINT_URL_STS", closed)
            .env("AWS_ENDPOINT_URL", closed)
            .args(["--endpoint-url", &moto.url]);
    });
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(moto.devices_of("mfa-test").is_empty());
    assert!(moto.virtual_devices().iter().all(|(s, _)| *s != serial));
    let j = Journal::read(&journal).unwrap();
    assert_eq!(j.header.target.get("endpoint"), Some(&moto.url));
    // STS too was asked at the flag's endpoint: the caller is moto's.
    assert!(
        j.caller().is_some_and(|c| c.starts_with("arn:aws:")),
        "{:?}",
        j.caller()
    );
}

#[test]
fn a_profile_that_would_send_calls_elsewhere_than_the_header_says_is_refused() {
    // The header records where IAM's calls go from the command line and the
    // environment; a profile's endpoint_url would have sent them elsewhere
    // (here a closed port) while the header said AWS. Refused before any
    // call is sent, naming the setting and the fix; the flag then wins.
    let moto = Moto::start();
    let (serial, _) = moto.user_with_virtual("mfa-test", "mfa-test");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        "[profile elsewhere]\nendpoint_url = http://127.0.0.1:9\n",
    )
    .unwrap();
    let run = |journal: &Path, flag: &[&str]| {
        recover_in(dir.path(), "mfa-test", journal, |cmd| {
            cmd.env("AWS_CONFIG_FILE", &config)
                .args(["--profile", "elsewhere"])
                .args(flag);
        })
    };
    let refused = dir.path().join("refused.jsonl");
    let out = run(&refused, &[]);
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));
    let report = text(&out).0;
    assert!(
        report.contains(
            "sends IAM calls to http://127.0.0.1:9, while the journal records them as going to AWS's own"
        ) && report.contains(
            "give the endpoint with AWS_ENDPOINT_URL_IAM (IAM alone) or --endpoint-url (every service)"
        ),
        "{report}"
    );
    let j = Journal::read(&refused).unwrap();
    assert_eq!(j.header.target.get("endpoint"), None);
    assert_eq!(
        j.calls()
            .filter(|(c, _)| c.request.operation().is_some())
            .count(),
        1
    );
    assert!(
        matches!(j.calls().next(), Some((_, e)) if matches!(e.outcome, CallOutcome::Unanswered { .. })),
        "{:?}",
        j.calls().next()
    );
    assert_eq!(moto.devices_of("mfa-test"), vec![serial]);

    let flagged = dir.path().join("flagged.jsonl");
    let out = run(&flagged, &["--endpoint-url", &moto.url]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(moto.devices_of("mfa-test").is_empty());
}

#[test]
fn a_profile_endpoint_for_sts_alone_is_used_for_the_caller() {
    // No journal records STS's endpoint: a profile's services section that
    // sends STS elsewhere (an STS VPC endpoint, say) is honoured, not refused.
    // Here it sends STS through the fault proxy, which counts the lookup.
    use crate::support::proxy::Proxy;
    let moto = Moto::start();
    moto.user_with_virtual("mfa-test", "mfa-test");
    let proxy = Proxy::start(&moto);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile vpc]\nservices = vpc\n\n[services vpc]\nsts =\n  endpoint_url = {}\n",
            proxy.url
        ),
    )
    .unwrap();
    let journal = dir.path().join("run.jsonl");
    let out = recover_in(dir.path(), "mfa-test", &journal, |cmd| {
        cmd.env("AWS_CONFIG_FILE", &config)
            .env("AWS_ENDPOINT_URL_IAM", &moto.url)
            .args(["--profile", "vpc"]);
    });
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(moto.devices_of("mfa-test").is_empty());
    assert_eq!(proxy.applied("GetCallerIdentity"), 1, "{}", proxy.log());
    assert_eq!(proxy.applied("ListMFADevices"), 0, "{}", proxy.log());
    let j = Journal::read(&journal).unwrap();
    assert_eq!(j.header.target.get("endpoint"), Some(&moto.url));
}

#[test]
fn an_empty_endpoint_variable_is_unset_for_the_run_and_for_the_check() {
    // CI sets a variable to "" when its secret is missing: the next rule
    // applies (here AWS_ENDPOINT_URL), on runbook's side and in the check of
    // the SDK's configuration alike, rather than a refusal naming "".
    let moto = Moto::start();
    moto.user_with_virtual("mfa-test", "mfa-test");
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let out = recover_in(dir.path(), "mfa-test", &journal, |cmd| {
        cmd.env("AWS_ENDPOINT_URL_IAM", "")
            .env("AWS_ENDPOINT_URL_STS", "")
            .env("AWS_ENDPOINT_URL", &moto.url);
    });
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(moto.devices_of("mfa-test").is_empty());
    let j = Journal::read(&journal).unwrap();
    assert_eq!(j.header.target.get("endpoint"), Some(&moto.url));
}

#[test]
fn a_remembered_caller_is_kept_per_endpoint_however_the_endpoint_is_given() {
    // Two endpoints named through AWS_ENDPOINT_URL with one access key id
    // are two places, each with its own caller: the second run asks STS at
    // its own endpoint rather than take the first one's answer.
    use crate::support::proxy::Proxy;
    let moto = Moto::start();
    moto.user_with_virtual("first", "first");
    moto.user_with_virtual("second", "second");
    let proxy = Proxy::start(&moto);
    let state = tempfile::tempdir().unwrap();
    let run = |user: &str, url: &str| {
        let journal = state.path().join(format!("{user}.jsonl"));
        let out = recover_in(state.path(), user, &journal, |cmd| {
            cmd.env("AWS_ENDPOINT_URL", url);
        });
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        Journal::read(&journal).unwrap()
    };
    let first = run("first", &moto.url);
    assert_eq!(first.header.target.get("endpoint"), Some(&moto.url));
    let second = run("second", &proxy.url);
    assert_eq!(second.header.target.get("endpoint"), Some(&proxy.url));
    assert_eq!(proxy.applied("GetCallerIdentity"), 1, "{}", proxy.log());
    let remembered = std::fs::read_dir(state.path().join("callers"))
        .unwrap()
        .count();
    assert_eq!(remembered, 2);
}

#[test]
fn credentials_are_resolved_once_per_run() {
    // A credential helper (an SSO login, a hardware token) runs once per
    // run, however many clients (IAM's, STS's for the caller) need it.
    let moto = Moto::start();
    moto.user_with_virtual("mfa-test", "mfa-test");
    let dir = tempfile::tempdir().unwrap();
    let (config, count) = crate::support::counting_credential_helper(dir.path());
    let journal = dir.path().join("run.jsonl");
    // A fresh state directory: no caller remembered, so STS is asked too.
    let out = recover_in(dir.path(), "mfa-test", &journal, |cmd| {
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_CONFIG_FILE", &config)
            .args(["--profile", "helper", "--endpoint-url", &moto.url]);
    });
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(moto.devices_of("mfa-test").is_empty());
    let j = Journal::read(&journal).unwrap();
    assert!(
        j.caller().is_some_and(|c| c.starts_with("arn:aws:")),
        "{:?}",
        j.caller()
    );
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "x\n");
}
