//! access-key-quarantine end to end against moto (with AWS's managed
//! policies loaded), with a bystander: one key contained, the user's other
//! key and another user's keys untouched, evidence first, nothing deleted.

use runbook_host::journal::{CallOutcome, Journal};

use crate::support::moto::Moto;
use crate::support::{run, run_against, text};

const QUARANTINE: &str = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3";

/// leaky with two active keys, alice with one; returns (leaky's, alice's).
fn world(moto: &Moto) -> (Vec<String>, String) {
    moto.user("leaky").user("alice");
    let keys = vec![moto.access_key("leaky"), moto.access_key("leaky")];
    (keys, moto.access_key("alice"))
}

#[test]
fn one_leaked_key_is_contained_and_everything_else_keeps_working() {
    let moto = Moto::start_with_managed_policies();
    let (keys, alices) = world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let out = run_against(
        &moto,
        "access-key-quarantine",
        "leaky",
        &path,
        &["--access-key-id", &keys[0], "--yes"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");

    let leaky = moto.access_keys("leaky");
    assert!(
        leaky.contains(&(keys[0].clone(), "Inactive".to_owned())),
        "{leaky:?}"
    );
    assert!(
        leaky.contains(&(keys[1].clone(), "Active".to_owned())),
        "{leaky:?}"
    );
    assert_eq!(leaky.len(), 2, "nothing deleted");
    assert_eq!(moto.access_keys("alice"), [(alices, "Active".to_owned())]);
    assert_eq!(moto.attached_policies("leaky"), [QUARANTINE]);
    assert!(moto.attached_policies("alice").is_empty());

    // Evidence before containment; the tag carries the recorded clock's time.
    let j = Journal::read(&path).unwrap();
    let ops: Vec<&str> = j.calls().map(|(c, _)| c.request.op()).collect();
    assert_eq!(
        ops,
        [
            "list-access-keys",
            "get-access-key-last-used",
            "update-access-key",
            "attach-user-policy",
            "clock-now",
            "tag-user",
            "list-access-keys"
        ]
    );
    let tags = moto.tags_of("leaky");
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert_eq!(tags[0].0, "runbook:quarantined");
    let seconds = j
        .calls()
        .find_map(|(c, e)| match (&c.request, &e.outcome) {
            (runbook_host::request::Request::ClockNow, CallOutcome::Ok { value }) => {
                value["seconds"].as_i64()
            }
            _ => None,
        })
        .unwrap();
    let expected = time::OffsetDateTime::from_unix_timestamp(seconds)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(tags[0].1, expected);
    assert!(
        stdout.contains(&format!("search CloudTrail for accessKeyId {}", keys[0])),
        "{stdout}"
    );
}

#[test]
fn a_key_of_another_user_is_refused_with_nothing_changed() {
    let moto = Moto::start_with_managed_policies();
    let (_, alices) = world(&moto);
    let before = (
        moto.access_keys("leaky"),
        moto.access_keys("alice"),
        moto.attached_policies("leaky"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let out = run_against(
        &moto,
        "access-key-quarantine",
        "leaky",
        &path,
        &["--access-key-id", &alices, "--yes"],
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("is not a key of 'leaky'; nothing was changed"),
        "{stdout}"
    );
    assert_eq!(
        (
            moto.access_keys("leaky"),
            moto.access_keys("alice"),
            moto.attached_policies("leaky"),
        ),
        before
    );
    let j = Journal::read(&path).unwrap();
    assert_eq!(j.calls().count(), 1, "one read, no change");
}

#[test]
fn a_dry_run_says_what_it_would_do_and_changes_nothing() {
    let moto = Moto::start_with_managed_policies();
    let (keys, _) = world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dry.jsonl");
    let out = run_against(
        &moto,
        "access-key-quarantine",
        "leaky",
        &path,
        &["--dry-run"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("dry run: 2 key(s) of 'leaky' would be quarantined"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("would make inactive {}", keys[0])),
        "{stderr}"
    );
    assert!(moto.access_keys("leaky").iter().all(|(_, s)| s == "Active"));
    assert!(moto.attached_policies("leaky").is_empty());
    assert!(moto.tags_of("leaky").is_empty());
    let j = Journal::read(&path).unwrap();
    let planned = j
        .calls()
        .filter(|(_, e)| e.outcome == CallOutcome::Planned)
        .count();
    assert_eq!(planned, 4, "two keys, the policy, the tag");
}

#[test]
fn policy_is_least_privilege_valid_iam_json_and_allows_only_the_quarantine_policy() {
    let out = run(&["policy", "access-key-quarantine", "--user", "leaky"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    assert_eq!(doc["Version"], "2012-10-17");
    insta::assert_json_snapshot!("access_key_quarantine_policy", doc);
}
