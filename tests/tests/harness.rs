//! The runbook test harness, as a runbook author uses it (the README's example
//! is the first test here, verbatim).

use runbook_host::bindings::{IamError, MfaDevice, VirtualMfaDevice};
use runbook_host::harness::Harness;
use runbook_host::journal::RunOutcome;
use runbook_host::request::{Request, Response};

use crate::support::root;

#[test]
fn mfa_recovery_deactivates_then_deletes_the_users_device() {
    let serial = "arn:aws:iam::123456789012:mfa/mfa-test";
    let mut attached = true;
    let run = Harness::new("mfa-recovery")
        .unwrap()
        .param("user", "mfa-test")
        .answer_with(move |request| match request {
            Request::ListMfaDevices { user_name } if attached => {
                Ok(Response::MfaDevices(vec![MfaDevice {
                    user_name: user_name.clone(),
                    serial_number: serial.to_owned(),
                    enable_date: "2026-01-01T00:00:00Z".to_owned(),
                }]))
            }
            Request::ListMfaDevices { .. } => Ok(Response::MfaDevices(vec![])),
            Request::DeactivateMfaDevice { .. } => {
                attached = false;
                Ok(Response::Done)
            }
            Request::ListVirtualMfaDevices { .. } => {
                Ok(Response::VirtualMfaDevices(vec![VirtualMfaDevice {
                    serial_number: serial.to_owned(),
                    user_name: None,
                    enable_date: None,
                }]))
            }
            Request::DeleteVirtualMfaDevice { .. } => Ok(Response::Done),
            other => Err(IamError::InvalidInput(format!("unexpected call {other:?}"))),
        })
        .run()
        .unwrap();
    assert_eq!(run.exit_code, 0, "{:?}", run.outcome);
    assert_eq!(run.changes.len(), 2);
    insta::assert_snapshot!(run.transcript());
}

#[test]
fn a_scripted_error_reaches_the_runbook_as_its_typed_error() {
    let run = Harness::new("mfa-recovery")
        .unwrap()
        .param("user", "ghost")
        .answer_with(|_| {
            Err(IamError::NoSuchEntity(
                "The user with name ghost cannot be found.".into(),
            ))
        })
        .run()
        .unwrap();
    assert_eq!(run.exit_code, 1);
    assert_eq!(
        run.outcome,
        RunOutcome::Failed {
            error: "IAM user 'ghost' does not exist; check the name and the AWS account".into()
        }
    );
}

#[test]
fn a_recorded_journal_backs_a_run_in_process() {
    let run = Harness::new("mfa-recovery")
        .unwrap()
        .replay(&root().join("tests/fixtures/two-virtual-devices/journal.jsonl"))
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(run.exit_code, 0, "{:?}", run.outcome);
    assert_eq!(run.changes.len(), 4);
}

#[test]
fn without_consent_the_first_change_is_refused() {
    let run = Harness::new("mfa-recovery")
        .unwrap()
        .param("user", "mfa-test")
        .without_consent()
        .answer_with(|request| match request {
            Request::ListMfaDevices { user_name } => Ok(Response::MfaDevices(vec![MfaDevice {
                user_name: user_name.clone(),
                serial_number: "GAHT12345678".into(),
                enable_date: "2026-01-01T00:00:00Z".into(),
            }])),
            other => panic!("{other:?} must not reach the backend"),
        })
        .run()
        .unwrap();
    assert_eq!(run.exit_code, 5);
    assert!(matches!(run.outcome, RunOutcome::Refused { .. }));
}

#[test]
fn a_missing_parameter_is_an_error_naming_it() {
    let err = Harness::new("mfa-recovery")
        .unwrap()
        .answer_with(|_| Ok(Response::Done))
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("needs --user"), "{err}");
}

#[test]
fn a_change_outside_the_approved_plan_is_refused() {
    let serial = "arn:aws:iam::123456789012:mfa/mfa-test";
    let mut attached = true;
    let run = Harness::new("mfa-recovery")
        .unwrap()
        .param("user", "mfa-test")
        // The plan the operator approved showed only the deactivation.
        .approving(vec![Request::DeactivateMfaDevice {
            user_name: "mfa-test".into(),
            serial_number: serial.into(),
        }])
        .answer_with(move |request| match request {
            Request::ListMfaDevices { user_name } if attached => {
                Ok(Response::MfaDevices(vec![MfaDevice {
                    user_name: user_name.clone(),
                    serial_number: serial.into(),
                    enable_date: "2026-01-01T00:00:00Z".into(),
                }]))
            }
            Request::ListMfaDevices { .. } => Ok(Response::MfaDevices(vec![])),
            Request::DeactivateMfaDevice { .. } => {
                attached = false;
                Ok(Response::Done)
            }
            Request::ListVirtualMfaDevices { .. } => {
                Ok(Response::VirtualMfaDevices(vec![VirtualMfaDevice {
                    serial_number: serial.into(),
                    user_name: None,
                    enable_date: None,
                }]))
            }
            other => panic!("{other:?} must not reach the backend"),
        })
        .run()
        .unwrap();
    assert_eq!(run.exit_code, 5, "{:?}", run.outcome);
    assert!(
        matches!(&run.outcome, RunOutcome::Refused { reason }
            if reason.contains("refused to delete virtual MFA device") && reason.contains("not the next change of the plan approved")),
        "{:?}",
        run.outcome
    );
    assert_eq!(run.changes.len(), 1, "the approved deactivation was made");
}

#[test]
fn a_backend_that_cannot_send_stops_the_run_before_its_first_call_is_sent() {
    use runbook_host::backend::{Answer, Backend, NotReady};
    use runbook_host::journal::{CallOutcome, Record};
    /// AWS that could not be set up (see `Deferred`).
    struct NoClient;
    impl Backend for NoClient {
        fn call(&mut self, request: &Request, _: std::time::Instant) -> Answer {
            panic!("{request:?} was sent to a backend that was not ready")
        }
        fn ready(&mut self, _: &Request, _: std::time::Instant) -> Result<(), NotReady> {
            Err(NotReady::Unavailable(
                "cannot set up the AWS client: no runtime".into(),
            ))
        }
    }
    let run = Harness::new("mfa-recovery")
        .unwrap()
        .param("user", "mfa-test")
        .backend(NoClient)
        .run()
        .unwrap();
    assert_eq!(run.exit_code, runbook_host::exit::HOST_ERROR);
    let reason = "cannot set up the AWS client: no runtime; the call was not sent";
    assert_eq!(
        run.outcome,
        RunOutcome::Aborted {
            reason: reason.into()
        }
    );
    // The call is in the journal, closed as not answered; nothing else ran.
    let ends: Vec<_> = run
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Result(end) => Some(&end.outcome),
            _ => None,
        })
        .collect();
    assert_eq!(
        ends,
        vec![&CallOutcome::Unanswered {
            reason: reason.into()
        }]
    );
    assert!(run.changes.is_empty());
}
