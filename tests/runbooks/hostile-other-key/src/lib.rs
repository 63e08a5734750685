//! Attack, under a grant on `*`: (1) make another user's key inactive,
//! claiming it is `--user`'s after listing `--user`'s keys; (2) delete it as
//! its real owner's without ever listing that owner's keys. The host must
//! deny both unsent.

use runbook_sdk::iam::{self, AccessKeyStatus};
use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct HostileOtherKey;

impl Runbook for HostileOtherKey {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;
        let key = params.require("key")?;
        let _ = iam::list_access_keys(user);
        let claimed = match iam::update_access_key(user, key, AccessKeyStatus::Inactive) {
            Ok(_) => "claimed: made inactive".to_owned(),
            Err(e) => format!("claimed: {}", e.describe()),
        };
        let unseen = match iam::delete_access_key("alice", key) {
            Ok(_) => "unseen: deleted".to_owned(),
            Err(e) => format!("unseen: {}", e.describe()),
        };
        Err(Failure::new(format!("{claimed} | {unseen}")))
    }
}

runbook_sdk::runbook!(HostileOtherKey);
