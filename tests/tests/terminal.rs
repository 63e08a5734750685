//! On a terminal, `runbook run` without `--yes` plans first, lists the
//! changes, and asks once. A pseudo-terminal from util-linux `script` stands in
//! for the operator's terminal; the answer is typed into it.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::moto::{Moto, arn};
use crate::support::scenarios::seed_world;
use crate::support::{isolate, runbook_bin};

/// Run mfa-recovery for mfa-test in a pseudo-terminal, answering `answer`.
fn on_a_terminal(moto: &Moto, answer: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let line = format!(
        "{} run mfa-recovery --user mfa-test --endpoint-url {} --journal {}",
        runbook_bin().display(),
        moto.url,
        journal.display()
    );
    let mut cmd = Command::new("script");
    isolate(&mut cmd);
    let mut child = cmd
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` gives a pseudo-terminal");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{answer}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    (out.status.code(), text)
}

#[test]
fn one_prompt_lists_the_planned_changes_and_yes_applies_them() {
    let moto = Moto::start();
    seed_world(&moto);
    let (code, text) = on_a_terminal(&moto, "y");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("this run will:"), "{text}");
    assert!(
        text.contains(&format!(
            "  - delete virtual MFA device {}",
            arn("mfa-test")
        )),
        "{text}"
    );
    assert_eq!(
        text.matches("apply these 2 change(s)? [y/N]").count(),
        1,
        "{text}"
    );
    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new());
    assert_eq!(moto.devices_of("alice"), vec![arn("alice")]);
}

#[test]
fn any_other_answer_changes_nothing() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(&["mfa-test", "alice"]);
    let (code, text) = on_a_terminal(&moto, "no");
    assert_eq!(code, Some(5), "{text}");
    assert!(text.contains("not applied: nothing was changed"), "{text}");
    assert_eq!(moto.state(&["mfa-test", "alice"]), before);
}
