//! `runbook policy`: the least-privilege IAM policy for running a runbook.

use std::ffi::OsString;

use clap::{Args, CommandFactory, FromArgMatches};
use runbook_host::exit;
use runbook_host::grant::Grant;
use runbook_host::project;
use runbook_host::request::Resource;
use runbook_host::sandbox::shared_runtime;
use runbook_host::transcript::printable;
use serde_json::json;

use super::params;

/// Print the IAM policy document to attach to the role that runs this
/// runbook with these parameters: exactly the actions it declares, user
/// actions scoped to the user's ARN.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// A runbook name from the project's runbooks/, or a path to a .wasm.
    runbook: String,

    /// The AWS account id for the ARNs (default: any account, `*`).
    #[arg(long, value_name = "ID", default_value = "*")]
    account: String,

    /// The project checkout holding runbooks/.
    #[arg(long, value_name = "DIR")]
    runbooks: Option<std::path::PathBuf>,
}

pub fn main(argv: Vec<OsString>, spec: &str) -> anyhow::Result<u8> {
    let dir = params::find_value(&argv, "--runbooks").map(std::path::PathBuf::from);
    let (what, bytes) = project::read_runbook(spec, dir.as_deref(), &mut super::out::say)?;
    let loaded = shared_runtime()?.load(&what, &bytes)?;
    let cmd = super::out::command(
        super::Cli::command()
            .find_subcommand("policy")
            .expect("policy is a subcommand")
            .clone()
            .bin_name("runbook policy"),
    );
    let cmd = match params::declare(cmd, &loaded.manifest, "The IAM policy for") {
        Ok(cmd) => cmd,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::HOST_ERROR);
        }
    };
    let matches = cmd
        .try_get_matches_from(argv.into_iter().skip(1))
        .unwrap_or_else(|e| super::out::clap_exit(e));
    let args = PolicyArgs::from_arg_matches(&matches).unwrap_or_else(|e| super::out::clap_exit(e));
    let given = params::given(&matches, &loaded.manifest);
    if let Err(e) = loaded.manifest.check_params(&given) {
        super::out::error(e);
        return Ok(exit::USAGE);
    }
    if args.account != "*"
        && !(args.account.len() == 12 && args.account.bytes().all(|b| b.is_ascii_digit()))
    {
        super::out::error(format_args!(
            "--account '{}' is not a 12-digit AWS account id",
            printable(&args.account)
        ));
        return Ok(exit::USAGE);
    }
    let grant = Grant::bind(&loaded.manifest, &given);
    outln!(
        "{}",
        serde_json::to_string_pretty(&document(&grant, &args.account))?
    );
    // On stderr: stdout stays a document IAM accepts as is (a policy has no
    // room for comments).
    let mut users: Vec<&str> = grant
        .rules
        .iter()
        .filter(|r| {
            runbook_host::request::operation(&r.action)
                .is_some_and(|o| !matches!(o.resource, Resource::Owned { .. }))
        })
        .filter_map(|r| r.resource.strip_prefix("user/"))
        .collect();
    users.sort_unstable();
    users.dedup();
    for user in users {
        errln!(
            "note: IAM matches the user name in a resource ARN case-sensitively, while IAM user names are unique regardless of case: the user/{0} resources above match only the user spelled exactly '{0}'; give the name exactly as IAM spells it (as `aws iam list-users` shows it)",
            printable(user)
        );
    }
    Ok(exit::SUCCESS)
}

/// The policy document: one statement per resource (and per list of policy
/// ARNs an action may attach, as an `iam:PolicyARN` condition), actions
/// sorted.
fn document(grant: &Grant, account: &str) -> serde_json::Value {
    type Key = (Vec<String>, Vec<String>);
    let mut by_resource: std::collections::BTreeMap<Key, Vec<&str>> = Default::default();
    for r in &grant.rules {
        let kind = runbook_host::request::operation(&r.action).map(|o| o.resource);
        let arns = match (kind, r.resource.strip_prefix("user/")) {
            // IAM cannot scope these by their owner (`mfa/*`): the host
            // does. Those IAM checks against their owner (`user/{user}`) are
            // scoped like the user.
            (Some(Resource::Owned { arn }), _) if !arn.contains("{user}") => {
                vec![format!("arn:aws:iam::{account}:{arn}")]
            }
            // A user's ARN includes its path, if it has one.
            (_, Some(user)) => vec![
                format!("arn:aws:iam::{account}:user/{user}"),
                format!("arn:aws:iam::{account}:user/*/{user}"),
            ],
            (_, None) => vec!["*".to_owned()],
        };
        let mut policies = r.policies.clone();
        policies.sort();
        let actions = by_resource.entry((arns, policies)).or_default();
        actions.push(&r.action);
        // The other IAM actions its live call needs (generating the
        // credential report before getting it).
        actions.extend(
            runbook_host::request::operation(&r.action)
                .map_or(&[][..], |o| o.also)
                .iter()
                .copied(),
        );
    }
    let statements: Vec<_> = by_resource
        .into_iter()
        .enumerate()
        .map(|(i, ((resource, policies), mut actions))| {
            actions.sort_unstable();
            actions.dedup();
            let mut statement = json!({
                "Sid": format!("Runbook{i}"),
                "Effect": "Allow",
                "Action": actions,
                "Resource": if resource.len() == 1 { json!(resource[0]) } else { json!(resource) },
            });
            // Managed policies can be pinned by IAM itself; inline policy
            // names have no condition key: the host alone holds those.
            if !policies.is_empty() && policies.iter().all(|p| p.starts_with("arn:")) {
                statement["Condition"] = json!({ "ArnEquals": { "iam:PolicyARN": policies } });
            }
            statement
        })
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements })
}
