//! The access-key operations (contract 0.2): live against moto with a
//! bystander, dry run, offline replay, and the host's ownership checks.

use runbook_host::journal::{CallOutcome, Journal, Mode};

use crate::support::moto::Moto;
use crate::support::{run, run_against, runbook_spec, text};

/// mfa-test with two keys, alice with one; returns (mfa-test's, alice's).
fn keys(moto: &Moto) -> (Vec<String>, String) {
    moto.user("mfa-test").user("alice");
    let mine = vec![moto.access_key("mfa-test"), moto.access_key("mfa-test")];
    (mine, moto.access_key("alice"))
}

fn statuses(moto: &Moto, user: &str) -> Vec<String> {
    moto.access_keys(user).into_iter().map(|(_, s)| s).collect()
}

#[test]
fn one_key_is_made_inactive_and_the_users_other_key_and_a_bystanders_stay_active() {
    let moto = Moto::start();
    let (mine, _) = keys(&moto);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let spec = runbook_spec("access-keys");
    let out = run_against(
        &moto,
        &spec,
        "mfa-test",
        &path,
        &["--key", &mine[0], "--yes"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let after = moto.access_keys("mfa-test");
    assert!(
        after.contains(&(mine[0].clone(), "Inactive".to_owned())),
        "{after:?}"
    );
    assert!(
        after.contains(&(mine[1].clone(), "Active".to_owned())),
        "{after:?}"
    );
    assert_eq!(statuses(&moto, "alice"), ["Active"]);

    let j = Journal::read(&path).unwrap();
    let ops: Vec<&str> = j.calls().map(|(c, _)| c.request.op()).collect();
    assert_eq!(
        ops,
        [
            "list-access-keys",
            "get-access-key-last-used",
            "update-access-key",
            "list-access-keys"
        ]
    );
    let raw = std::fs::read_to_string(&path).unwrap();
    assert!(
        !raw.to_lowercase().contains("secret"),
        "no secret in the journal"
    );

    // The recording replays offline, call for call.
    let replay = run(&["replay", path.to_str().unwrap(), "--runbook", &spec]);
    assert_eq!(replay.status.code(), Some(0), "{:?}", text(&replay));
}

#[test]
fn a_dry_run_plans_the_change_and_sends_nothing() {
    let moto = Moto::start();
    let (mine, _) = keys(&moto);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dry.jsonl");
    let spec = runbook_spec("access-keys");
    let out = run_against(
        &moto,
        &spec,
        "mfa-test",
        &path,
        &["--key", &mine[0], "--dry-run"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("would make inactive access key"),
        "{stdout}"
    );
    assert_eq!(statuses(&moto, "mfa-test"), ["Active", "Active"]);
    let j = Journal::read(&path).unwrap();
    assert_eq!(j.header.mode, Mode::DryRun);
    let (call, end) = j.calls().nth(2).unwrap();
    assert_eq!(call.request.op(), "update-access-key");
    assert_eq!(end.outcome, CallOutcome::Planned);
}

#[test]
fn another_users_key_is_refused_before_any_change() {
    let moto = Moto::start();
    let (_, alices) = keys(&moto);
    let before = (moto.access_keys("mfa-test"), moto.access_keys("alice"));
    let dir = tempfile::tempdir().unwrap();

    // The runbook sees the key is not the user's and changes nothing.
    let path = dir.path().join("run.jsonl");
    let out = run_against(
        &moto,
        &runbook_spec("access-keys"),
        "mfa-test",
        &path,
        &["--key", &alices, "--yes"],
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("is not one of 'mfa-test''s keys"),
        "{stdout}"
    );

    // A hostile runbook with a grant on every user is denied by the host,
    // whether it claims the key as the user's or names its real owner.
    let path = dir.path().join("hostile.jsonl");
    let out = run_against(
        &moto,
        &runbook_spec("hostile-other-key"),
        "mfa-test",
        &path,
        &["--key", &alices, "--yes"],
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for attempt in ["claimed", "unseen"] {
        assert!(
            stdout.contains(&format!("{attempt}: access denied: the runbook's grant")),
            "{attempt}: {stdout}"
        );
    }
    let j = Journal::read(&path).unwrap();
    let denied: Vec<&str> = j
        .calls()
        .filter(|(_, e)| matches!(e.outcome, CallOutcome::Denied { .. }))
        .map(|(c, _)| c.request.op())
        .collect();
    assert_eq!(denied, ["update-access-key", "delete-access-key"]);
    assert_eq!(
        (moto.access_keys("mfa-test"), moto.access_keys("alice")),
        before,
        "nothing changed in IAM"
    );
}
