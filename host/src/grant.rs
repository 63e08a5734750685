//! The grant in force for one run, and the check every call passes first.
//!
//! Deny by default: the grant is the manifest's declared capabilities with their
//! scopes bound to this run's parameters. Scope is the host's to enforce: a run
//! started with `--user mfa-test` cannot touch `alice`, whatever the runbook
//! asks, and a virtual device may be deleted only if this run saw it attached to
//! an in-scope user.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::bindings::IamError;
use crate::manifest::{Manifest, Scope, is_iam_user_name};
use crate::request::{Request, Resource, Response, Scoped};

/// One bound capability: an action and the resource it covers in this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The IAM action.
    pub action: String,
    /// `*` or `user/NAME`.
    pub resource: String,
    /// For an action on a user's managed policies: the policy ARNs it may
    /// name (from the manifest); no other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
}

/// What this run may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The rules, in manifest order.
    pub rules: Vec<Rule>,
}

/// The error a runbook gets for a call outside its grant: the same words
/// whether or not the resource exists.
pub fn access_denied(request: &Request) -> IamError {
    IamError::AccessDenied(format!(
        "the runbook's grant does not allow {} on the requested resource",
        request.action().unwrap_or("this call")
    ))
}

/// An operator's narrowing of what runbooks may do (`--policy FILE`, TOML or
/// JSON; `--deny ACTION` adds to `deny`). It never widens a grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorPolicy {
    /// If set, only these actions (of those the runbook declared).
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Never these actions.
    #[serde(default)]
    pub deny: Vec<String>,
    /// If set, user-scoped actions only for these users.
    #[serde(default)]
    pub users: Option<Vec<String>>,
}

impl OperatorPolicy {
    /// Read a policy file: JSON if it ends in `.json`, else TOML. Unknown
    /// action names are refused, so a typo cannot silently allow.
    pub fn read(path: &std::path::Path) -> Result<OperatorPolicy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read policy {}: {e}", path.display()))?;
        let policy: OperatorPolicy = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| format!("policy {}: {e}", path.display()))?
        } else {
            toml::from_str(&text)
                .map_err(|e| format!("policy {}: {}", path.display(), e.message()))?
        };
        policy
            .check()
            .map_err(|e| format!("policy {}: {e}", path.display()))?;
        Ok(policy)
    }

    /// Refuse action names the host does not know.
    pub fn check(&self) -> Result<(), String> {
        for a in self.allow.iter().flatten().chain(&self.deny) {
            if crate::request::operation(a).is_none() {
                return Err(format!(
                    "'{a}' is not an IAM action runbooks can use (one of {})",
                    crate::manifest::known_actions()
                ));
            }
        }
        Ok(())
    }
}

/// What the host has seen so far: which user each MFA serial and access key
/// belongs to (one owner each: the latest listing wins), and which groups
/// each user is in.
#[derive(Debug, Default)]
pub struct Observed {
    owners: HashMap<String, String>,
    /// (group, user in lowercase).
    members: std::collections::HashSet<(String, String)>,
}

impl Observed {
    /// Whether this run saw `id` (a serial, a key id, a group) belong to
    /// `user`. Group names cannot hold `:`, so they never pass for a serial
    /// ARN; IAM checks a key id against its user itself.
    pub fn owned_by(&self, id: &str, user: &str) -> bool {
        self.owners
            .get(id)
            .is_some_and(|owner| owner.eq_ignore_ascii_case(user))
            || self
                .members
                .contains(&(id.to_owned(), user.to_ascii_lowercase()))
    }

    /// Learn from a successful answer.
    pub fn learn(&mut self, request: &Request, response: &Response) {
        match (request, response) {
            // Only what the listing is about: a device listed under another
            // user's name is not learned as that user's.
            (Request::ListMfaDevices { user_name }, Response::MfaDevices(devices)) => {
                for d in devices
                    .iter()
                    .filter(|d| d.user_name.eq_ignore_ascii_case(user_name))
                {
                    self.owners
                        .insert(d.serial_number.clone(), d.user_name.clone());
                }
            }
            (Request::ListAccessKeys { user_name }, Response::AccessKeys(keys)) => {
                for k in keys
                    .iter()
                    .filter(|k| k.user_name.eq_ignore_ascii_case(user_name))
                {
                    self.owners
                        .insert(k.access_key_id.clone(), k.user_name.clone());
                }
            }
            (Request::ListGroupsForUser { user_name }, Response::Groups(groups)) => {
                for g in groups {
                    self.members
                        .insert((g.group_name.clone(), user_name.to_ascii_lowercase()));
                }
            }
            (Request::ListVirtualMfaDevices { .. }, Response::VirtualMfaDevices(devices)) => {
                for d in devices {
                    if let Some(u) = &d.user_name {
                        self.owners.insert(d.serial_number.clone(), u.clone());
                    }
                }
            }
            _ => {}
        }
    }
}

impl Grant {
    /// Bind the manifest's capabilities to this run's parameters.
    pub fn bind(manifest: &Manifest, params: &BTreeMap<String, String>) -> Grant {
        let rules = manifest
            .capabilities
            .iter()
            .filter_map(|c| {
                let resource = match Scope::parse(&c.resource).ok()? {
                    Scope::Any => "*".to_owned(),
                    // An optional parameter that was not given grants nothing.
                    Scope::UserParam(p) => format!("user/{}", params.get(&p)?),
                };
                Some(Rule {
                    action: c.action.clone(),
                    resource,
                    policies: c.policies.clone(),
                })
            })
            .collect();
        Grant { rules }
    }

    /// Narrow the grant by an operator policy. A policy can only remove: an
    /// action it allows that the runbook did not declare grants nothing.
    pub fn narrow(mut self, policy: &OperatorPolicy) -> Grant {
        self.rules.retain(|r| {
            let allowed = policy
                .allow
                .as_ref()
                .is_none_or(|allow| allow.iter().any(|a| a == &r.action));
            allowed && !policy.deny.iter().any(|d| d == &r.action)
        });
        if let Some(users) = &policy.users {
            // A user-scoped action on `*` becomes one rule per listed user;
            // a rule for an unlisted user goes.
            self.rules = self
                .rules
                .into_iter()
                .flat_map(|r| match r.resource.strip_prefix("user/") {
                    Some(u) if users.iter().any(|x| x.eq_ignore_ascii_case(u)) => vec![r],
                    Some(_) => vec![],
                    // An account-wide operation has no user to narrow to.
                    None if crate::request::operation(&r.action)
                        .is_some_and(|o| o.resource == Resource::Account) =>
                    {
                        vec![r]
                    }
                    None => users
                        .iter()
                        .map(|u| Rule {
                            action: r.action.clone(),
                            resource: format!("user/{u}"),
                            policies: r.policies.clone(),
                        })
                        .collect(),
                })
                .collect();
        }
        self
    }

    /// Whether `request` is allowed. The reason for a denial is for the journal
    /// and the operator; the runbook gets a message that does not say whether
    /// the resource exists.
    pub fn check(&self, request: &Request, observed: &Observed) -> Result<(), String> {
        let Some(action) = request.action() else {
            return Ok(());
        };
        // Whatever the scope (`*` too): IAM takes a missing user name as the
        // caller, and a malformed one is never a user this run may touch.
        if let Some(user) = request.user_name()
            && !is_iam_user_name(user)
        {
            return Err(format!(
                "{action} with a user-name argument that is not an IAM user name (1 to 64 letters, digits and +=,.@_-; IAM would act on the caller if it were missing)"
            ));
        }
        let mut rules = self.rules.iter().filter(|r| r.action == action).peekable();
        if rules.peek().is_none() {
            return Err(format!("{action} is not in the runbook's grant"));
        }
        let scoped = request.scoped();
        let allowed = rules.any(|r| {
            // A policy action names only the policies the manifest lists,
            // whatever its user scope.
            if let Scoped::UserPolicy { policy, .. } = scoped
                && !r.policies.iter().any(|p| p == policy)
            {
                return false;
            }
            if r.resource == "*" {
                return true;
            }
            let Some(user) = r.resource.strip_prefix("user/") else {
                return false;
            };
            // IAM user names are unique without regard to case.
            match scoped {
                Scoped::User(name) | Scoped::UserOwned { user: name, .. } => {
                    name.eq_ignore_ascii_case(user)
                }
                Scoped::UserPolicy { user: name, policy } => {
                    name.eq_ignore_ascii_case(user) && r.policies.iter().any(|p| p == policy)
                }
                Scoped::Owned(id) => observed.owned_by(id, user),
                Scoped::Account | Scoped::Host => false,
            }
        });
        if !allowed {
            return Err(format!(
                "{action} on this resource is outside the grant ({})",
                self.rules
                    .iter()
                    .filter(|r| r.action == action)
                    .map(|r| r.resource.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // Whatever the scope: a device is detached, or a key changed, only
        // for the user this run saw it belong to (a user-scoped `Owned`
        // operation likewise needs it seen; on `*` it is any).
        if let Scoped::UserOwned { user, id } = scoped
            && !observed.owned_by(id, user)
        {
            return Err(format!(
                "{action} of a device or key this run has not seen attached to that user (list the user's MFA devices or access keys first)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::MfaDevice;

    fn grant() -> Grant {
        let m = Manifest::from_toml(
            r#"
name = "x"
version = "1.0.0"
description = "d"
[[params]]
name = "user"
help = "h"
required = true
[[capabilities]]
action = "iam:DeactivateMFADevice"
resource = "user/{user}"
[[capabilities]]
action = "iam:DeleteVirtualMFADevice"
resource = "user/{user}"
"#,
        )
        .unwrap();
        Grant::bind(
            &m,
            &BTreeMap::from([("user".to_owned(), "mfa-test".to_owned())]),
        )
    }

    #[test]
    fn another_user_is_outside_the_scope() {
        let g = grant();
        let alice = Request::DeactivateMfaDevice {
            user_name: "alice".into(),
            serial_number: "arn:aws:iam::123456789012:mfa/alice".into(),
        };
        let err = g.check(&alice, &Observed::default()).unwrap_err();
        assert!(err.contains("outside the grant (user/mfa-test)"), "{err}");
        let own = Request::DeactivateMfaDevice {
            user_name: "mfa-test".into(),
            serial_number: "x".into(),
        };
        assert!(g.check(&own, &seen("mfa-test", "x")).is_ok());
    }

    /// What a run knows after listing `user`'s devices and finding `serial`.
    fn seen(user: &str, serial: &str) -> Observed {
        let mut o = Observed::default();
        o.learn(
            &Request::ListMfaDevices {
                user_name: user.into(),
            },
            &Response::MfaDevices(vec![MfaDevice {
                user_name: user.into(),
                serial_number: serial.into(),
                enable_date: "2026-01-01T00:00:00Z".into(),
            }]),
        );
        o
    }

    #[test]
    fn a_device_is_deactivated_only_once_seen_attached_to_that_user() {
        let star = Grant {
            rules: vec![Rule {
                action: "iam:DeactivateMFADevice".into(),
                resource: "*".into(),
                policies: vec![],
            }],
        };
        let deactivate = |user: &str| Request::DeactivateMfaDevice {
            user_name: user.into(),
            serial_number: "GAHT12345678".into(),
        };
        let err = star
            .check(&deactivate("mfa-test"), &Observed::default())
            .unwrap_err();
        assert!(err.contains("has not seen attached to that user"), "{err}");
        let seen = seen("alice", "GAHT12345678");
        assert!(star.check(&deactivate("alice"), &seen).is_ok());
        assert!(
            star.check(&deactivate("mfa-test"), &seen).is_err(),
            "alice's device, claimed for another user"
        );
    }

    #[test]
    fn a_user_name_that_is_not_one_is_denied_whatever_the_scope() {
        let star = Grant {
            rules: vec![Rule {
                action: "iam:ListMFADevices".into(),
                resource: "*".into(),
                policies: vec![],
            }],
        };
        for bad in ["", "a b", "x/y", &"a".repeat(65)] {
            let err = star
                .check(
                    &Request::ListMfaDevices {
                        user_name: bad.into(),
                    },
                    &Observed::default(),
                )
                .unwrap_err();
            assert!(err.contains("not an IAM user name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn an_operator_policy_narrows_and_never_widens() {
        let narrowed = grant().narrow(&OperatorPolicy {
            allow: Some(vec!["iam:DeactivateMFADevice".into(), "iam:GetUser".into()]),
            ..OperatorPolicy::default()
        });
        let actions: Vec<&str> = narrowed.rules.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(
            actions,
            ["iam:DeactivateMFADevice"],
            "GetUser was never declared"
        );
        let denied = grant().narrow(&OperatorPolicy {
            deny: vec!["iam:DeleteVirtualMFADevice".into()],
            users: Some(vec!["alice".into()]),
            ..OperatorPolicy::default()
        });
        assert!(denied.rules.is_empty(), "{denied:?}");
    }

    #[test]
    fn a_users_list_turns_a_star_scope_into_those_users() {
        let star = Grant {
            rules: vec![
                Rule {
                    action: "iam:DeactivateMFADevice".into(),
                    resource: "*".into(),
                    policies: vec![],
                },
                Rule {
                    action: "iam:ListVirtualMFADevices".into(),
                    resource: "*".into(),
                    policies: vec![],
                },
            ],
        };
        let narrowed = star.narrow(&OperatorPolicy {
            users: Some(vec!["mfa-test".into()]),
            ..OperatorPolicy::default()
        });
        let alice = Request::DeactivateMfaDevice {
            user_name: "alice".into(),
            serial_number: "x".into(),
        };
        assert!(narrowed.check(&alice, &Observed::default()).is_err());
        let resources: Vec<&str> = narrowed.rules.iter().map(|r| r.resource.as_str()).collect();
        assert_eq!(resources, ["user/mfa-test", "*"]);
    }

    #[test]
    fn undeclared_actions_are_denied() {
        let err = grant()
            .check(
                &Request::GetUser {
                    user_name: "mfa-test".into(),
                },
                &Observed::default(),
            )
            .unwrap_err();
        assert_eq!(err, "iam:GetUser is not in the runbook's grant");
    }

    #[test]
    fn a_virtual_device_is_deletable_only_once_seen_attached_to_the_user() {
        let g = grant();
        let serial = "arn:aws:iam::123456789012:mfa/mfa-test";
        let delete = Request::DeleteVirtualMfaDevice {
            serial_number: serial.into(),
        };
        let mut seen = Observed::default();
        assert!(g.check(&delete, &seen).is_err());
        seen.learn(
            &Request::ListMfaDevices {
                user_name: "mfa-test".into(),
            },
            &Response::MfaDevices(vec![MfaDevice {
                user_name: "mfa-test".into(),
                serial_number: serial.into(),
                enable_date: "2026-01-01T00:00:00Z".into(),
            }]),
        );
        assert!(g.check(&delete, &seen).is_ok());
    }
}
