//! Attack, under grants that name other policies: attach
//! AdministratorAccess, put a `backdoor` inline policy that allows
//! everything, and delete alice's console password while scoped to `--user`.
//! The host must deny all three unsent.

use runbook_sdk::iam;
use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct HostilePolicies;

impl Runbook for HostilePolicies {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;
        let say = |what: &str, r: Result<iam::Applied, iam::IamError>| match r {
            Ok(_) => format!("{what}: done"),
            Err(e) => format!("{what}: {}", e.describe()),
        };
        let admin = say(
            "admin",
            iam::attach_user_policy(user, "arn:aws:iam::aws:policy/AdministratorAccess"),
        );
        let backdoor = say(
            "backdoor",
            iam::put_user_policy(
                user,
                "backdoor",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            ),
        );
        let alice = say("alice", iam::delete_login_profile("alice"));
        Err(Failure::new(format!("{admin} | {backdoor} | {alice}")))
    }
}

runbook_sdk::runbook!(HostilePolicies);
