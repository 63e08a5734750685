//! A hostile runbook run against moto, and what it left behind: shared by the
//! sandbox tests of Rust runbooks (`sandbox`) and of Python ones (`python`),
//! so both languages face the same checks.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runbook_host::journal::{CallOutcome, Journal, RunOutcome};

use super::moto::Moto;
use super::{run_against, text};

/// The users of the seed world: the target and the bystander.
pub const USERS: &[&str] = &["mfa-test", "alice"];

/// How an attack ended.
pub struct Attack {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The journal, verified, if the run wrote one.
    pub journal: Option<Journal>,
    /// The journal's text.
    pub raw: String,
    /// Where the journal is (kept until the attack is dropped).
    pub path: PathBuf,
    pub elapsed: Duration,
    _dir: tempfile::TempDir,
}

impl Attack {
    /// The journal, which the run must have written.
    pub fn journal(&self) -> &Journal {
        self.journal.as_ref().expect("the run wrote a journal")
    }
}

/// Run the runbook `spec` (a name or a path) for mfa-test with `--yes` and
/// `extra` flags against `moto`.
pub fn attack(moto: &Moto, spec: &str, extra: &[&str]) -> Attack {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let mut flags = vec!["--yes"];
    flags.extend_from_slice(extra);
    let started = Instant::now();
    let out = run_against(moto, spec, "mfa-test", &path, &flags);
    let elapsed = started.elapsed();
    let (stdout, stderr) = text(&out);
    let raw = std::fs::read_to_string(&path).unwrap_or_default();
    let journal = path.exists().then(|| {
        Journal::read(&path)
            .unwrap_or_else(|e| panic!("{spec}: journal invalid: {e}\n{stdout}{stderr}"))
    });
    Attack {
        code: out.status.code(),
        stdout,
        stderr,
        journal,
        raw,
        path,
        elapsed,
        _dir: dir,
    }
}

/// The operations of the calls the host denied.
pub fn denied(j: &Journal) -> Vec<&'static str> {
    j.calls()
        .filter(|(_, e)| matches!(e.outcome, CallOutcome::Denied { .. }))
        .map(|(c, _)| c.request.op())
        .collect()
}

/// Exit 4 (a trap or a limit), said on stdout and in the footer.
pub fn trapped(a: &Attack, needle: &str) {
    assert_eq!(
        a.code,
        Some(4),
        "exit 4 is a trap or limit: {}{}",
        a.stdout,
        a.stderr
    );
    assert!(a.stdout.contains(needle), "{}", a.stdout);
    match &a.journal().footer.outcome {
        RunOutcome::Trapped { reason } => assert!(reason.contains(needle), "{reason}"),
        other => panic!("footer {other:?}"),
    }
}

/// The checks every language's version of an attack must pass: the same
/// words, the same denials, IAM as it was.
pub mod contained {
    use super::{Attack, USERS, denied};
    use crate::support::moto::{Moto, arn};

    /// An action the manifest does not declare: denied (exit 1), journaled.
    pub fn undeclared_action(a: &Attack) {
        assert_eq!(a.code, Some(1), "{}{}", a.stdout, a.stderr);
        assert!(
            a.stdout
                .contains("access denied: the runbook's grant does not allow iam:GetUser"),
            "{}",
            a.stdout
        );
        assert_eq!(denied(a.journal()), ["get-user"]);
    }

    /// Another user's device: alice keeps it, IAM is as it was (`before`),
    /// and the denial does not say whether alice exists.
    pub fn other_user(moto: &Moto, before: &[String], a: &Attack) {
        assert_eq!(a.code, Some(1), "{}{}", a.stdout, a.stderr);
        assert_eq!(
            moto.devices_of("alice"),
            vec![arn("alice")],
            "alice keeps her device"
        );
        assert_eq!(moto.state(USERS), before);
        assert_eq!(
            denied(a.journal()),
            ["list-mfa-devices", "deactivate-mfa-device"]
        );
        // The same words as for any resource outside the grant.
        assert!(
            a.stdout
                .contains("access denied: the runbook's grant does not allow iam:DeactivateMFADevice on the requested resource"),
            "{}",
            a.stdout
        );
        assert!(!a.stdout.contains("cannot be found"), "{}", a.stdout);
    }

    /// An unassigned device the run never saw attached: it survives.
    pub fn orphan(moto: &Moto, before: &[String], a: &Attack) {
        assert_eq!(a.code, Some(1), "{}{}", a.stdout, a.stderr);
        assert_eq!(moto.state(USERS), before, "the orphan survives");
        assert_eq!(denied(a.journal()), ["delete-virtual-mfa-device"]);
    }
}
