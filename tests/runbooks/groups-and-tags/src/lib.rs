//! The group, tag, user and policy-removal operations end to end, then the
//! same on alice, which the host must deny: her tags (scoped to `--user`),
//! her group membership (never seen listed, although removal is granted on
//! `*`).

use runbook_sdk::iam::{self, Tag};
use runbook_sdk::{Failure, Outcome, Params, Runbook};

struct GroupsAndTags;

impl Runbook for GroupsAndTags {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;
        let group = params.require("group")?;
        let users = iam::list_users()?;
        let tags = iam::list_user_tags(user)?;
        let tag = Tag {
            key: "runbook:reviewed".to_owned(),
            value: "yes".to_owned(),
        };
        let tagged = iam::tag_user(user, std::slice::from_ref(&tag))?;
        let groups = iam::list_groups_for_user(user)?;
        if !groups.iter().any(|g| g.group_name == group) {
            return Err(Failure::new(format!("'{user}' is not in group {group}")));
        }
        iam::remove_user_from_group(user, group)?;
        iam::detach_user_policy(user, "arn:aws:iam::aws:policy/AWSDenyAll")?;
        iam::delete_user_policy(user, "runbook-deny-sessions-before")?;
        let denied = |r: Result<iam::Applied, iam::IamError>| match r {
            Ok(_) => "done".to_owned(),
            Err(e) => e.describe(),
        };
        let alice_tag = denied(iam::tag_user("alice", &[tag]));
        let alice_group = denied(iam::remove_user_from_group("alice", group));
        Ok(Outcome::new(format!(
            "{} user(s); {user} had {} tag(s); {} | alice tag: {alice_tag} | alice group: {alice_group}",
            users.len(),
            tags.len(),
            tagged.said("tagged", "would tag")
        )))
    }
}

runbook_sdk::runbook!(GroupsAndTags);
