//! On a terminal, `runbook run` without `--yes` plans first, lists the
//! changes, and asks once. A pseudo-terminal from util-linux `script` stands in
//! for the operator's terminal; the answer is typed into it.

use runbook_host::journal::{Journal, Mode, RunOutcome};

use crate::support::moto::{Moto, arn};
use crate::support::runbook_bin;
use crate::support::scenarios::seed_world;

/// Run mfa-recovery for `user` in a pseudo-terminal, answering `answer`;
/// returns the exit code, what the terminal showed, and the journal.
fn on_a_terminal(moto: &Moto, user: &str, answer: &str) -> (Option<i32>, String, Journal) {
    let dir = tempfile::tempdir().unwrap();
    on_a_terminal_with(moto, user, answer, &dir.path().join("run.jsonl"), "")
}

/// `on_a_terminal`, journaling to `journal`, with `extra` flags.
fn on_a_terminal_with(
    moto: &Moto,
    user: &str,
    answer: &str,
    journal: &std::path::Path,
    extra: &str,
) -> (Option<i32>, String, Journal) {
    let line = format!(
        "{} run mfa-recovery --user {user} --endpoint-url {} --journal {} {extra}",
        runbook_bin().display(),
        moto.url,
        journal.display()
    );
    let (code, text) = crate::support::on_a_terminal(&line, answer);
    let journal = Journal::read(journal).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (code, text, journal)
}

#[test]
fn a_resumed_run_asks_only_for_the_changes_left_to_make() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.jsonl");
    // The first run may not delete: it deactivates, then fails.
    let out = crate::support::run_against(
        &moto,
        "mfa-recovery",
        "mfa-test",
        &first,
        &["--yes", "--deny", "iam:DeleteVirtualMFADevice"],
    );
    let (stdout, _) = crate::support::text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("--resume"), "{stdout}");
    let (code, text, journal) = on_a_terminal_with(
        &moto,
        "mfa-test",
        "y",
        &dir.path().join("resumed.jsonl"),
        &format!("--resume {}", first.display()),
    );
    assert_eq!(code, Some(0), "{text}");
    let plan = text
        .split("this run will:")
        .nth(1)
        .and_then(|t| t.split("apply these").next())
        .unwrap_or_else(|| panic!("no plan in {text}"));
    assert_eq!(
        plan.trim(),
        format!("- delete virtual MFA device {}", arn("mfa-test")),
        "the deactivation was done by the first run: {text}"
    );
    assert!(text.contains("apply these 1 change(s)?"), "{text}");
    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new());
    assert_eq!(
        moto.virtual_devices().len(),
        2,
        "mfa-test's device is deleted"
    );
    assert!(journal.header.resumes.is_some());
}

#[test]
fn one_prompt_lists_the_planned_changes_and_yes_applies_them() {
    let moto = Moto::start();
    seed_world(&moto);
    let (code, text, journal) = on_a_terminal(&moto, "mfa-test", "y");
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
    // The prompt is the host's own plan: the header line, then nothing but
    // the host's description of each planned change, then the question.
    let start = text.find("this run will:\n").expect("the plan");
    let end = text.find("apply these 2 change(s)?").expect("the question");
    assert_eq!(
        text[start..end].lines().skip(1).collect::<Vec<_>>(),
        [
            format!(
                "  - deactivate MFA device {} of user mfa-test",
                arn("mfa-test")
            ),
            format!("  - delete virtual MFA device {}", arn("mfa-test")),
        ],
        "{text}"
    );
    assert!(
        text[..start]
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("runbook mfa-recovery 0.1.0 (sha256 ")
                && l.ends_with(" for --user mfa-test")),
        "{text}"
    );
    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new());
    assert_eq!(moto.devices_of("alice"), vec![arn("alice")]);
    assert_eq!(journal.header.mode, Mode::Live);
}

#[test]
fn any_other_answer_changes_nothing() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(&["mfa-test", "alice"]);
    let (code, text, journal) = on_a_terminal(&moto, "mfa-test", "no");
    assert_eq!(code, Some(5), "{text}");
    assert!(text.contains("not applied: nothing was changed"), "{text}");
    assert_eq!(moto.state(&["mfa-test", "alice"]), before);
    // The journal keeps the plan's reads and the refusal.
    assert_eq!(journal.header.mode, Mode::DryRun);
    assert!(
        matches!(&journal.footer.outcome, RunOutcome::Refused { reason } if reason.contains("declined the 2 planned change(s)")),
        "{:?}",
        journal.footer.outcome
    );
}

#[test]
fn a_plan_that_fails_asks_nothing_and_changes_nothing() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(&["mfa-test", "alice"]);
    let (code, text, journal) = on_a_terminal(&moto, "no-such-user", "y");
    assert_eq!(code, Some(1), "{text}");
    assert!(!text.contains("[y/N]"), "{text}");
    assert!(
        text.contains("IAM user 'no-such-user' does not exist"),
        "{text}"
    );
    assert_eq!(moto.state(&["mfa-test", "alice"]), before);
    assert!(matches!(journal.footer.outcome, RunOutcome::Failed { .. }));
}
