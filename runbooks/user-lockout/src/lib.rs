//! User lockout: the user (or whoever holds its credentials) can do nothing
//! more, now. Nothing is deleted but the console password; every step can be
//! undone, and the outcome says how.
//!
//! The procedure, in AWS CLI terms:
//! 1. Record what the user has: `list-access-keys`, `get-login-profile`,
//!    `list-groups-for-user`, `list-attached-user-policies`,
//!    `list-user-policies`.
//! 2. `delete-login-profile`: no console sign-in.
//! 3. `update-access-key --status Inactive` for every active key.
//! 4. `put-user-policy runbook-deny-sessions-before`: deny everything to
//!    sessions issued before now (`aws:TokenIssueTime`; the time comes from
//!    the recorded clock, so a replay writes the same document).
//! 5. `attach-user-policy AWSDenyAll`.

use runbook_sdk::iam::{self, AccessKeyStatus, Applied, IamError};
use runbook_sdk::{Failure, Outcome, Params, Runbook, log};

const DENY_ALL: &str = "arn:aws:iam::aws:policy/AWSDenyAll";
const DENY_SESSIONS: &str = "runbook-deny-sessions-before";

struct UserLockout;

impl Runbook for UserLockout {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;

        // 1. What the user has, for the record.
        let keys = iam::list_access_keys(user).map_err(|e| match e {
            IamError::NoSuchEntity(_) => Failure::new(format!(
                "IAM user '{user}' does not exist; check the name and the AWS account"
            )),
            other => Failure::from(other),
        })?;
        let login = iam::get_login_profile(user)?;
        let groups = iam::list_groups_for_user(user)?;
        let attached = iam::list_attached_user_policies(user)?;
        let inline = iam::list_user_policies(user)?;
        log::info(format!(
            "'{user}': {} access key(s), {}console password, groups [{}], managed policies [{}], inline policies [{}]",
            keys.len(),
            if login.is_some() { "a " } else { "no " },
            groups
                .iter()
                .map(|g| g.group_name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            attached
                .iter()
                .map(|p| p.policy_arn.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            inline.join(", ")
        ));

        let mut outcome = Outcome::default();
        let mut undo = Vec::new();
        let mut planned = false;
        let mut note = |applied: Applied| {
            planned |= applied == Applied::Planned;
            applied
        };

        // 2. No console sign-in.
        if login.is_some() {
            let verb = match iam::delete_login_profile(user) {
                Ok(applied) => note(applied).said("deleted", "would delete"),
                // A resumed run sends again a deletion whose outcome the
                // killed run never recorded: IAM says it is gone already.
                Err(IamError::NoSuchEntity(_)) => "found deleted",
                Err(e) => return Err(e.into()),
            };
            outcome = outcome.changed(format!("{verb} the console password of {user}"));
            undo.push(format!(
                "aws iam create-login-profile --user-name {user} --password-reset-required --password <new>  (the old password is gone)"
            ));
        }

        // 3. No access key.
        for key in keys.iter().filter(|k| k.status == AccessKeyStatus::Active) {
            let id = &key.access_key_id;
            let verb = note(iam::update_access_key(user, id, AccessKeyStatus::Inactive)?)
                .said("made inactive", "would make inactive");
            outcome = outcome.changed(format!("{verb} access key {id} of {user}"));
            undo.push(format!(
                "aws iam update-access-key --user-name {user} --access-key-id {id} --status Active"
            ));
        }

        // 4. No session issued before now.
        let now = runbook_sdk::now().to_rfc3339();
        let document = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"*","Resource":"*","Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{now}"}}}}}}]}}"#
        );
        let verb =
            note(iam::put_user_policy(user, DENY_SESSIONS, &document)?).said("put", "would put");
        outcome = outcome.changed(format!(
            "{verb} inline policy {DENY_SESSIONS} on {user}: deny sessions issued before {now}"
        ));
        undo.push(format!(
            "aws iam delete-user-policy --user-name {user} --policy-name {DENY_SESSIONS}"
        ));

        // 5. Deny everything.
        let verb = note(iam::attach_user_policy(user, DENY_ALL)?).said("attached", "would attach");
        outcome = outcome.changed(format!("{verb} {DENY_ALL} to {user}"));
        undo.push(format!(
            "aws iam detach-user-policy --user-name {user} --policy-arn {DENY_ALL}"
        ));

        outcome.summary = if planned {
            format!("dry run: '{user}' would be locked out")
        } else {
            format!(
                "'{user}' is locked out: no console password, no active key, no older session, deny-all"
            )
        };
        for (i, step) in undo.iter().enumerate() {
            outcome = outcome.next_step(format!("to undo ({}): {step}", i + 1));
        }
        for g in &groups {
            outcome = outcome.next_step(format!(
                "for the record: '{user}' is in group {} (unchanged)",
                g.group_name
            ));
        }
        Ok(outcome)
    }
}

runbook_sdk::runbook!(UserLockout);
