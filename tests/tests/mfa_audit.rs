//! mfa-audit end to end: an account of 1,000 users, a few with a console
//! password and no MFA; the audit names exactly those, in a few IAM calls.

use runbook_host::journal::{Journal, RunOutcome};

use crate::support::moto::Moto;
use crate::support::proxy::Proxy;
use crate::support::{run, runbook, text};

#[test]
fn the_audit_names_exactly_the_console_users_without_mfa_among_1000_in_a_few_calls() {
    let moto = Moto::start();
    let mut exposed = Vec::new();
    for i in 0..1000 {
        let name = format!("user-{i:04}");
        moto.user(&name);
        match i % 100 {
            // Console password, no MFA: the finding.
            7 => {
                moto.login_profile(&name);
                exposed.push(name);
            }
            // Console password and MFA: fine.
            13 => {
                moto.login_profile(&name);
                let (serial, _) = moto.virtual_device(&name);
                moto.enable(&name, &serial);
            }
            // No console access at all: fine.
            _ => {}
        }
    }
    let proxy = Proxy::start(&moto);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let out = runbook()
        .args([
            "run",
            "mfa-audit",
            "--endpoint-url",
            &proxy.url,
            "--journal",
            path.to_str().unwrap(),
            "--yes",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");

    let j = Journal::read(&path).unwrap();
    let RunOutcome::Succeeded {
        summary,
        next_steps,
        ..
    } = &j.footer.outcome
    else {
        panic!("{:?}", j.footer.outcome);
    };
    assert_eq!(
        summary,
        "10 of 1000 user(s) can sign in to the console with a password alone (no MFA)"
    );
    let named: Vec<&str> = next_steps
        .iter()
        .map(|s| s.split(':').next().unwrap())
        .collect();
    assert_eq!(named, exposed, "exactly the console users without MFA");

    // A few IAM calls for the whole account, never one per user.
    let iam_calls = proxy.seen("GenerateCredentialReport") + proxy.seen("GetCredentialReport");
    assert!(iam_calls < 10, "{iam_calls} IAM calls:\n{}", proxy.log());
    assert_eq!(j.calls().count(), 1, "one host call for the runbook");

    // The report (1,000 rows) replays offline.
    let replay = run(&["replay", path.to_str().unwrap()]);
    assert_eq!(replay.status.code(), Some(0), "{:?}", text(&replay));
}

#[test]
fn the_audit_policy_grants_generating_and_getting_the_report_and_nothing_else() {
    let out = run(&["policy", "mfa-audit"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    insta::assert_json_snapshot!("mfa_audit_policy", doc);
}
