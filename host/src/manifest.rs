//! A runbook's manifest: its name, parameters and the IAM actions it needs.
//!
//! The author writes it as `runbook.toml`; `runbook_sdk::runbook!` embeds it in
//! the component's `runbook-manifest` custom section. The host reads it from the
//! bytes, before compiling or running any of the runbook's code, so what a
//! runbook may do is known (and reviewable) without trusting it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The custom section the sdk writes the manifest into.
pub const SECTION: &str = "runbook-manifest";

/// The custom section the sdk writes its version into.
pub const SDK_SECTION: &str = "runbook-sdk";

/// The sdk version a component was built with, if it says.
pub fn sdk_version(bytes: &[u8]) -> Option<String> {
    wasmparser::Parser::new(0)
        .parse_all(bytes)
        .filter_map(Result::ok)
        .find_map(|payload| match payload {
            wasmparser::Payload::CustomSection(r) if r.name() == SDK_SECTION => {
                std::str::from_utf8(r.data()).ok().map(str::to_owned)
            }
            _ => None,
        })
}

/// The IAM actions the host implements, in the names IAM policies use.
pub const KNOWN_ACTIONS: &[&str] = &[
    "iam:GetUser",
    "iam:ListMFADevices",
    "iam:ListVirtualMFADevices",
    "iam:DeactivateMFADevice",
    "iam:DeleteVirtualMFADevice",
];

/// Flags of `runbook run` that a parameter may not shadow.
const RESERVED: &[&str] = &[
    "yes",
    "dry-run",
    "journal",
    "profile",
    "region",
    "endpoint-url",
    "runbooks",
    "help",
    "replay",
    "policy",
    "deny",
];

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The bytes are not a WebAssembly component or module.
    #[error("not a WebAssembly component: {0}")]
    NotWasm(String),
    /// No `runbook-manifest` section.
    #[error(
        "the component has no `{SECTION}` section: it was not built with runbook_sdk::runbook!, so it declares no parameters or capabilities"
    )]
    Missing,
    /// The section is not valid TOML of the expected shape.
    #[error("the embedded manifest is invalid: {0}")]
    Invalid(String),
}

/// A runbook's declaration of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The runbook's name, as `runbook run NAME` finds it.
    pub name: String,
    /// Its version.
    pub version: String,
    /// One sentence for the operator.
    pub description: String,
    /// The parameters it takes, as `--NAME VALUE` flags.
    #[serde(default)]
    pub params: Vec<Param>,
    /// The IAM actions it needs, each with a resource scope.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

/// One parameter of a runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// The flag's name: `user` is `--user`.
    pub name: String,
    /// The `--help` text.
    pub help: String,
    /// Whether the run refuses to start without it.
    #[serde(default)]
    pub required: bool,
}

/// One IAM action a runbook needs, with the resources it may touch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capability {
    /// An IAM action, e.g. `iam:ListMFADevices`.
    pub action: String,
    /// `*`, or `user/{param}`: only the user named by that parameter. For
    /// `iam:DeleteVirtualMFADevice`, `user/{param}` means only virtual devices
    /// this run observed attached to that user.
    pub resource: String,
}

impl Manifest {
    /// Read the manifest embedded in a component's bytes, without compiling it.
    pub fn from_wasm(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if !wasmparser::Parser::is_component(bytes) && !wasmparser::Parser::is_core_wasm(bytes) {
            return Err(ManifestError::NotWasm(
                "the file does not start with the WebAssembly magic number".into(),
            ));
        }
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|e| ManifestError::NotWasm(e.to_string()))?;
            if let wasmparser::Payload::CustomSection(reader) = payload
                && reader.name() == SECTION
            {
                let text = std::str::from_utf8(reader.data())
                    .map_err(|e| ManifestError::Invalid(format!("not UTF-8: {e}")))?;
                return Manifest::from_toml(text);
            }
        }
        Err(ManifestError::Missing)
    }

    /// Parse and validate a manifest's TOML text.
    pub fn from_toml(text: &str) -> Result<Manifest, ManifestError> {
        let m: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Invalid(e.message().to_owned()))?;
        m.validate().map_err(ManifestError::Invalid)?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), String> {
        let is_name = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        if !is_name(&self.name) {
            return Err(format!(
                "name '{}' must be lowercase letters, digits and '-'",
                self.name
            ));
        }
        for p in &self.params {
            if !is_name(&p.name) {
                return Err(format!(
                    "parameter '{}' must be lowercase letters, digits and '-'",
                    p.name
                ));
            }
            if RESERVED.contains(&p.name.as_str()) {
                return Err(format!(
                    "parameter '{}' shadows the host's --{} flag; rename it",
                    p.name, p.name
                ));
            }
            if self.params.iter().filter(|q| q.name == p.name).count() > 1 {
                return Err(format!("parameter '{}' is declared twice", p.name));
            }
        }
        for c in &self.capabilities {
            if !KNOWN_ACTIONS.contains(&c.action.as_str()) {
                return Err(format!(
                    "capability '{}' is not an action the host implements (one of {})",
                    c.action,
                    KNOWN_ACTIONS.join(", ")
                ));
            }
            match Scope::parse(&c.resource)? {
                Scope::Any => {}
                Scope::UserParam(p) => {
                    if !self.params.iter().any(|q| q.name == p) {
                        return Err(format!(
                            "capability {} refers to parameter '{p}', which is not declared",
                            c.action
                        ));
                    }
                    if c.action == "iam:ListVirtualMFADevices" {
                        return Err(
                            "iam:ListVirtualMFADevices lists the whole account: its resource must be \"*\""
                                .to_owned(),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// The declared parameter `name`, if any.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Check the operator's parameters against the declaration: every one
    /// declared, every required one given.
    pub fn check_params(&self, given: &BTreeMap<String, String>) -> Result<(), String> {
        for name in given.keys() {
            if self.param(name).is_none() {
                return Err(format!(
                    "runbook '{}' takes no parameter --{name}; it takes: {}",
                    self.name,
                    self.params
                        .iter()
                        .map(|p| format!("--{}", p.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        // A value that scopes IAM users must be a user name: `*` or `a?`
        // would be wildcards in the IAM policy printed for it.
        for c in &self.capabilities {
            if let Ok(Scope::UserParam(p)) = Scope::parse(&c.resource)
                && let Some(v) = given.get(&p)
                && !is_iam_user_name(v)
            {
                return Err(format!(
                    "--{p} '{v}' is not an IAM user name (1 to 64 letters, digits and +=,.@_-)"
                ));
            }
        }
        for p in self.params.iter().filter(|p| p.required) {
            if !given.contains_key(&p.name) {
                return Err(format!(
                    "runbook '{}' needs --{} ({}); pass it",
                    self.name, p.name, p.help
                ));
            }
        }
        Ok(())
    }
}

/// Whether `s` is a valid IAM user name.
pub fn is_iam_user_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// A parsed resource scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Any resource.
    Any,
    /// The user named by this parameter.
    UserParam(String),
}

impl Scope {
    /// Parse `*` or `user/{param}`.
    pub fn parse(resource: &str) -> Result<Scope, String> {
        if resource == "*" {
            return Ok(Scope::Any);
        }
        if let Some(param) = resource
            .strip_prefix("user/{")
            .and_then(|r| r.strip_suffix('}'))
        {
            return Ok(Scope::UserParam(param.to_owned()));
        }
        Err(format!(
            "resource '{resource}' must be \"*\" or \"user/{{PARAM}}\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "x"
version = "1"
description = "d"
[[params]]
name = "user"
help = "h"
required = true
[[capabilities]]
action = "iam:ListMFADevices"
resource = "user/{user}"
"#;

    #[test]
    fn a_valid_manifest_parses() {
        let m = Manifest::from_toml(GOOD).unwrap();
        assert_eq!(m.params[0].name, "user");
        assert_eq!(
            Scope::parse(&m.capabilities[0].resource).unwrap(),
            Scope::UserParam("user".into())
        );
    }

    #[test]
    fn unknown_actions_and_undeclared_parameters_are_rejected() {
        let e = Manifest::from_toml(&GOOD.replace("iam:ListMFADevices", "iam:CreateUser"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'iam:CreateUser' is not an action"), "{e}");
        let e = Manifest::from_toml(&GOOD.replace("user/{user}", "user/{role}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("parameter 'role', which is not declared"), "{e}");
    }

    #[test]
    fn a_parameter_may_not_shadow_a_host_flag() {
        let e = Manifest::from_toml(&GOOD.replace("name = \"user\"", "name = \"yes\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("shadows the host's --yes flag"), "{e}");
    }

    #[test]
    fn parameters_are_checked_against_the_declaration() {
        let m = Manifest::from_toml(GOOD).unwrap();
        let mut given = BTreeMap::new();
        assert!(m.check_params(&given).unwrap_err().contains("needs --user"));
        given.insert("user".into(), "*".into());
        assert!(
            m.check_params(&given)
                .unwrap_err()
                .contains("--user '*' is not an IAM user name")
        );
        given.insert("user".into(), "mfa-test".into());
        given.insert("role".into(), "x".into());
        assert!(
            m.check_params(&given)
                .unwrap_err()
                .contains("takes no parameter --role")
        );
    }

    #[test]
    fn bytes_that_are_not_wasm_are_named_as_such() {
        let e = Manifest::from_wasm(b"#!/bin/sh\n").unwrap_err();
        assert!(matches!(e, ManifestError::NotWasm(_)), "{e}");
    }
}
