//! user-lockout end to end against moto (AWS's managed policies loaded), with
//! a bystander: the user can do nothing more, the bystander everything it
//! could; nothing is deleted but the console password.

use runbook_host::journal::{CallOutcome, Journal, RunOutcome};

use crate::support::moto::Moto;
use crate::support::{run, run_against, runbook_spec, text};

const DENY_ALL: &str = "arn:aws:iam::aws:policy/AWSDenyAll";
const DENY_SESSIONS: &str = "runbook-deny-sessions-before";

/// `locked` and bystander `alice`, each with a console password and keys,
/// both in group `devs`.
fn world(moto: &Moto) {
    for user in ["locked", "alice"] {
        moto.user(user).login_profile(user).in_group(user, "devs");
        moto.access_key(user);
    }
    moto.access_key("locked");
}

#[test]
fn a_locked_out_user_can_do_nothing_and_a_bystander_everything_it_could() {
    let moto = Moto::start_with_managed_policies();
    world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let out = run_against(&moto, "user-lockout", "locked", &path, &["--yes"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");

    assert!(!moto.has_login_profile("locked"));
    let keys = moto.access_keys("locked");
    assert_eq!(keys.len(), 2, "keys kept");
    assert!(keys.iter().all(|(_, s)| s == "Inactive"), "{keys:?}");
    assert_eq!(moto.attached_policies("locked"), [DENY_ALL]);
    let document = moto
        .inline_policy("locked", DENY_SESSIONS)
        .expect("the session policy");
    assert!(document.contains("aws:TokenIssueTime"), "{document}");
    assert_eq!(moto.groups_of("locked"), ["devs"], "groups unchanged");

    assert!(moto.has_login_profile("alice"));
    assert!(moto.access_keys("alice").iter().all(|(_, s)| s == "Active"));
    assert!(moto.attached_policies("alice").is_empty());
    assert_eq!(moto.inline_policy("alice", DENY_SESSIONS), None);
    assert_eq!(moto.groups_of("alice"), ["devs"]);

    // The outcome says how to undo each step, and what it found.
    assert!(stdout.contains("to undo"), "{stdout}");
    assert!(stdout.contains("is in group devs"), "{stdout}");

    // The replay writes the same session policy: its time is the recorded clock's.
    let replay = run(&["replay", path.to_str().unwrap()]);
    assert_eq!(replay.status.code(), Some(0), "{:?}", text(&replay));
}

#[test]
fn a_lockout_dry_run_plans_every_step_and_changes_nothing() {
    let moto = Moto::start_with_managed_policies();
    world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dry.jsonl");
    let out = run_against(&moto, "user-lockout", "locked", &path, &["--dry-run"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("dry run: 'locked' would be locked out"),
        "{stdout}"
    );
    assert!(moto.has_login_profile("locked"));
    assert!(
        moto.access_keys("locked")
            .iter()
            .all(|(_, s)| s == "Active")
    );
    assert!(moto.attached_policies("locked").is_empty());
    let j = Journal::read(&path).unwrap();
    let planned: Vec<&str> = j
        .calls()
        .filter(|(_, e)| e.outcome == CallOutcome::Planned)
        .map(|(c, _)| c.request.op())
        .collect();
    assert_eq!(
        planned,
        [
            "delete-login-profile",
            "update-access-key",
            "update-access-key",
            "put-user-policy",
            "attach-user-policy"
        ]
    );
}

#[test]
fn policies_a_manifest_does_not_list_and_another_users_password_are_denied() {
    let moto = Moto::start_with_managed_policies();
    world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.jsonl");
    let out = run_against(
        &moto,
        &runbook_spec("hostile-policies"),
        "locked",
        &path,
        &["--yes"],
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for attempt in ["admin", "backdoor", "alice"] {
        assert!(
            stdout.contains(&format!("{attempt}: access denied: the runbook's grant")),
            "{attempt}: {stdout}"
        );
    }
    assert!(moto.attached_policies("locked").is_empty());
    assert_eq!(moto.inline_policy("locked", "backdoor"), None);
    assert!(moto.has_login_profile("alice"));
}

#[test]
fn the_lockout_policy_is_valid_iam_json_pinned_to_its_managed_policy() {
    let out = run(&["policy", "user-lockout", "--user", "locked"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    insta::assert_json_snapshot!("user_lockout_policy", doc);
    // inspect shows a reviewer the only policies it may name.
    let out = run(&["inspect", "user-lockout"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("only policy arn:aws:iam::aws:policy/AWSDenyAll"),
        "{stdout}"
    );
    assert!(
        stdout.contains("only policy runbook-deny-sessions-before"),
        "{stdout}"
    );
}

#[test]
fn groups_tags_users_and_policy_removal_work_and_another_users_are_denied() {
    let moto = Moto::start_with_managed_policies();
    world(&moto);
    let dir = tempfile::tempdir().unwrap();
    // Lock out first: there is a deny-all and a session policy to remove.
    let locked = dir.path().join("lockout.jsonl");
    let out = run_against(&moto, "user-lockout", "locked", &locked, &["--yes"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));

    let spec = runbook_spec("groups-and-tags");
    let dry = dir.path().join("dry.jsonl");
    let out = run_against(
        &moto,
        &spec,
        "locked",
        &dry,
        &["--group", "devs", "--dry-run"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("would tag"), "{stdout}");
    assert_eq!(
        moto.groups_of("locked"),
        ["devs"],
        "a dry run changes nothing"
    );
    assert_eq!(moto.attached_policies("locked"), [DENY_ALL]);

    let path = dir.path().join("run.jsonl");
    let out = run_against(&moto, &spec, "locked", &path, &["--group", "devs", "--yes"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("2 user(s); locked had 0 tag(s); tagged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("alice tag: access denied: the runbook's grant"),
        "{stdout}"
    );
    assert!(
        stdout.contains("alice group: access denied: the runbook's grant"),
        "{stdout}"
    );
    assert!(moto.groups_of("locked").is_empty());
    assert!(moto.attached_policies("locked").is_empty());
    assert_eq!(moto.inline_policy("locked", DENY_SESSIONS), None);
    assert_eq!(
        moto.tags_of("locked"),
        [("runbook:reviewed".to_owned(), "yes".to_owned())]
    );
    assert_eq!(moto.groups_of("alice"), ["devs"], "alice keeps her group");
    assert!(moto.tags_of("alice").is_empty());

    let j = Journal::read(&path).unwrap();
    let denied: Vec<&str> = j
        .calls()
        .filter(|(_, e)| matches!(e.outcome, CallOutcome::Denied { .. }))
        .map(|(c, _)| c.request.op())
        .collect();
    assert_eq!(denied, ["tag-user", "remove-user-from-group"]);
    let replay = run(&["replay", path.to_str().unwrap(), "--runbook", &spec]);
    assert_eq!(replay.status.code(), Some(0), "{:?}", text(&replay));
}

#[test]
fn a_resumed_lockout_whose_password_deletion_reached_iam_finishes() {
    use runbook_host::bindings::{IamError, LoginProfile};
    use runbook_host::harness::Harness;
    use runbook_host::request::{Request, Response};
    // The killed run's deletion reached IAM; sent again on --resume, IAM
    // answers NoSuchEntity. The lockout goes on and succeeds.
    let run = Harness::new("user-lockout")
        .unwrap()
        .param("user", "locked")
        .answer_with(|request| match request {
            Request::ListAccessKeys { .. } => Ok(Response::AccessKeys(vec![])),
            Request::GetLoginProfile { user_name } => {
                Ok(Response::LoginProfile(Some(LoginProfile {
                    user_name: user_name.clone(),
                    create_date: "2026-01-01T00:00:00Z".into(),
                    password_reset_required: false,
                })))
            }
            Request::ListGroupsForUser { .. } => Ok(Response::Groups(vec![])),
            Request::ListAttachedUserPolicies { .. } => Ok(Response::AttachedPolicies(vec![])),
            Request::ListUserPolicies { .. } => Ok(Response::Names(vec![])),
            Request::DeleteLoginProfile { .. } => Err(IamError::NoSuchEntity(
                "Login Profile for User locked cannot be found.".into(),
            )),
            Request::ClockNow => Ok(Response::Instant(runbook_host::bindings::Instant {
                seconds: 1_795_000_000,
                nanoseconds: 0,
            })),
            Request::PutUserPolicy { .. } | Request::AttachUserPolicy { .. } => Ok(Response::Done),
            other => panic!("unexpected {other:?}"),
        })
        .run()
        .unwrap();
    assert_eq!(run.exit_code, 0, "{:?}", run.outcome);
    let RunOutcome::Succeeded { changes, .. } = &run.outcome else {
        panic!("{:?}", run.outcome)
    };
    assert!(
        changes
            .iter()
            .any(|c| c == "found deleted the console password of locked"),
        "{changes:?}"
    );
}
