//! Access-key quarantine: an access key leaked (a commit, a paste, a log).
//! Contain it now, keep the evidence, tell the operator what comes next
//! (AWS's IRP-CredCompromise playbook: contain, keep evidence, never destroy
//! what an investigator needs).
//!
//! The procedure, in AWS CLI terms:
//! 1. `list-access-keys --user-name U`: the user's keys; the given key must be
//!    one of them (else nothing changes), or take every active key.
//! 2. `get-access-key-last-used --access-key-id K`: when, with which service
//!    and where each key was last used: where to start in CloudTrail.
//! 3. `update-access-key --user-name U --access-key-id K --status Inactive`:
//!    never delete: the key id is evidence.
//! 4. `attach-user-policy --policy-arn …/AWSCompromisedKeyQuarantineV3`.
//! 5. `tag-user --tags Key=runbook:quarantined,Value=<UTC time>`.
//! 6. `list-access-keys` again: each key is inactive (IAM is eventually
//!    consistent: read again with backoff before deciding it is not).

use std::time::Duration;

use runbook_sdk::iam::{self, AccessKeyStatus, Applied, IamError, Tag};
use runbook_sdk::{Failure, Outcome, Params, Runbook, log};

/// AWS's managed policy for a compromised key: denies the actions an
/// attacker uses to persist or escalate.
const QUARANTINE: &str = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3";

/// Re-reads while IAM catches up: 7 s in all.
const WAITS_MS: [u64; 3] = [1_000, 2_000, 4_000];

struct AccessKeyQuarantine;

impl Runbook for AccessKeyQuarantine {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;

        // 1. The user's keys, and the ones to contain.
        let keys = iam::list_access_keys(user).map_err(|e| match e {
            IamError::NoSuchEntity(_) => Failure::new(format!(
                "IAM user '{user}' does not exist; check the name and the AWS account"
            )),
            other => Failure::new(format!(
                "could not list the access keys of '{user}': {}",
                other.describe()
            )),
        })?;
        let targets: Vec<&str> = match params.get("access-key-id") {
            Some(key) => {
                if !keys.iter().any(|k| k.access_key_id == key) {
                    return Err(Failure::new(format!(
                        "access key {key} is not a key of '{user}'; nothing was changed: check the key id and the user"
                    )));
                }
                vec![key]
            }
            None => keys
                .iter()
                .filter(|k| k.status == AccessKeyStatus::Active)
                .map(|k| k.access_key_id.as_str())
                .collect(),
        };
        if targets.is_empty() {
            return Ok(Outcome::new(format!(
                "'{user}' has no active access key; nothing changed"
            ))
            .next_step("if a key leaked, check which user it belongs to"));
        }

        // 2-3. Evidence first, then contain.
        let mut outcome = Outcome::default();
        let mut planned = false;
        for key in &targets {
            let used = iam::get_access_key_last_used(key)?;
            let when = used.last_used_date.as_deref().unwrap_or("never");
            log::info(format!(
                "{key} was last used {when}, with {} in {}",
                used.service_name.as_deref().unwrap_or("no service"),
                used.region.as_deref().unwrap_or("no region")
            ));
            outcome = outcome.next_step(format!(
                "search CloudTrail for accessKeyId {key} from {when} on: what did it do?"
            ));
            let active = keys
                .iter()
                .any(|k| k.access_key_id == *key && k.status == AccessKeyStatus::Active);
            if !active {
                log::info(format!("{key} is inactive already"));
                continue;
            }
            let applied = iam::update_access_key(user, key, AccessKeyStatus::Inactive)?;
            planned |= applied == Applied::Planned;
            let verb = applied.said("made inactive", "would make inactive");
            log::info(format!("{verb} {key}"));
            outcome = outcome.changed(format!("{verb} access key {key} of {user}"));
        }

        // 4. The quarantine policy.
        let applied = iam::attach_user_policy(user, QUARANTINE)?;
        planned |= applied == Applied::Planned;
        let verb = applied.said("attached", "would attach");
        outcome = outcome.changed(format!("{verb} {QUARANTINE} to {user}"));

        // 5. The mark.
        let now = runbook_sdk::now().to_rfc3339();
        let tag = Tag {
            key: "runbook:quarantined".to_owned(),
            value: now.clone(),
        };
        let applied = iam::tag_user(user, &[tag])?;
        let verb = applied.said("tagged", "would tag");
        outcome = outcome.changed(format!("{verb} {user} runbook:quarantined={now}"));

        // 6. Confirm, unless nothing was sent.
        if !planned {
            let mut waits = WAITS_MS.iter();
            loop {
                let now_keys = iam::list_access_keys(user)?;
                let still: Vec<&str> = targets
                    .iter()
                    .copied()
                    .filter(|t| {
                        now_keys
                            .iter()
                            .any(|k| k.access_key_id == *t && k.status == AccessKeyStatus::Active)
                    })
                    .collect();
                if still.is_empty() {
                    break;
                }
                let Some(&ms) = waits.next() else {
                    return Err(Failure::new(format!(
                        "IAM still lists {} as active after 7 s of re-reads: resume this run",
                        still.join(", ")
                    )));
                };
                log::info(format!(
                    "IAM still lists {} as active; reading again",
                    still.join(", ")
                ));
                runbook_sdk::sleep(Duration::from_millis(ms));
            }
        }

        outcome.summary = if planned {
            format!(
                "dry run: {} key(s) of '{user}' would be quarantined",
                targets.len()
            )
        } else {
            format!("{} key(s) of '{user}' quarantined", targets.len())
        };
        Ok(outcome
            .next_step(format!(
                "rotate: give '{user}' a new key where one is legitimately needed, then update what used the old one"
            ))
            .next_step("keep the inactive key (its id is evidence); delete it only when the investigation is closed")
            .next_step(format!(
                "detach {QUARANTINE} from '{user}' once the user is cleared"
            )))
    }
}

runbook_sdk::runbook!(AccessKeyQuarantine);
