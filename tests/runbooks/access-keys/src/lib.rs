//! The access-key operations end to end: list the user's keys, refuse a key
//! that is not the user's before any change, record when the key was last
//! used, make it inactive (never delete: the key id is evidence), confirm.

use runbook_sdk::iam::{self, AccessKeyStatus};
use runbook_sdk::{Failure, Outcome, Params, Runbook, log};

struct AccessKeys;

impl Runbook for AccessKeys {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;
        let key = params.require("key")?;
        let keys = iam::list_access_keys(user)?;
        if !keys.iter().any(|k| k.access_key_id == key) {
            return Err(Failure::new(format!(
                "access key {key} is not one of '{user}''s keys; nothing was changed"
            )));
        }
        let used = iam::get_access_key_last_used(key)?;
        log::info(format!(
            "{key} was last used {} with {} in {}",
            used.last_used_date.as_deref().unwrap_or("never"),
            used.service_name.as_deref().unwrap_or("no service"),
            used.region.as_deref().unwrap_or("no region")
        ));
        let applied = iam::update_access_key(user, key, AccessKeyStatus::Inactive)?;
        let verb = applied.said("made inactive", "would make inactive");
        let after = iam::list_access_keys(user)?;
        let inactive = after
            .iter()
            .any(|k| k.access_key_id == key && k.status == AccessKeyStatus::Inactive);
        if !inactive {
            return Err(Failure::new(format!("{key} is still active")));
        }
        Ok(Outcome::new(format!("{verb} access key {key} of '{user}'"))
            .changed(format!("{verb} {key}"))
            .next_step(format!("search CloudTrail for {key}")))
    }
}

runbook_sdk::runbook!(AccessKeys);
