//! A runbook's manifest: its name, parameters and the IAM actions it needs.
//!
//! The author writes it as `runbook.toml`; `runbook_sdk::runbook!` embeds it in
//! the component's `runbook-manifest` custom section. The host reads it from the
//! bytes, before compiling or running any of the runbook's code, so what a
//! runbook may do is known (and reviewable) without trusting it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::transcript::{is_printable_char, printable};

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

/// The IAM actions the host implements, in the names IAM policies use, as
/// declared with their operations (`crate::request::OPERATIONS`).
pub fn known_actions() -> String {
    crate::request::OPERATIONS
        .iter()
        .map(|o| o.action)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The longest runbook or parameter name: it names a directory, a flag and
/// journal files, and heads every run; real names are a few words.
pub const MAX_NAME_CHARS: usize = 64;

/// The longest version: a semantic version with a modest pre-release or build
/// suffix fits; it is printed in the header line above the consent prompt.
pub const MAX_VERSION_CHARS: usize = 64;

/// The longest description: "one sentence for the operator", shown by
/// `inspect` and `--help`; 300 characters is two or three lines of a terminal,
/// enough to say what a runbook does and too little to bury anything.
pub const MAX_DESCRIPTION_CHARS: usize = 300;

/// The longest help text of a parameter: one line of `--help` (wrapped at
/// most twice).
pub const MAX_HELP_CHARS: usize = 200;

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
    /// For `iam:AttachUserPolicy` (and any action on a user's managed
    /// policies): the policy ARNs it may name, and no other. Required there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
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
        // The parser's message may quote the bad text: escape it.
        let m: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Invalid(printable(e.message())))?;
        m.validate().map_err(ManifestError::Invalid)?;
        Ok(m)
    }

    /// Check every field before any of it is printed: the name, version,
    /// description and help texts are shown to the operator (in the header
    /// right above the consent prompt, in `inspect`, in `--help`), so a
    /// manifest whose text could move the cursor, forge lines or flood the
    /// screen is refused at load. Messages quote bad values escaped.
    fn validate(&self) -> Result<(), String> {
        if !is_runbook_name(&self.name) {
            return Err(format!(
                "name '{}' must be 1 to {MAX_NAME_CHARS} lowercase letters, digits and '-', starting with a letter",
                printable(&self.name)
            ));
        }
        if let Err(e) = semver::Version::parse(&self.version) {
            return Err(format!(
                "version '{}' is not a semantic version such as 1.2.3 ({})",
                printable(&self.version),
                printable(&e.to_string())
            ));
        }
        if self.version.len() > MAX_VERSION_CHARS {
            return Err(format!(
                "version '{}' is longer than {MAX_VERSION_CHARS} characters",
                printable(&self.version)
            ));
        }
        check_text("description", &self.description, MAX_DESCRIPTION_CHARS)?;
        for p in &self.params {
            if !is_runbook_name(&p.name) {
                return Err(format!(
                    "parameter '{}' must be 1 to {MAX_NAME_CHARS} lowercase letters, digits and '-', starting with a letter",
                    printable(&p.name)
                ));
            }
            if self.params.iter().filter(|q| q.name == p.name).count() > 1 {
                return Err(format!("parameter '{}' is declared twice", p.name));
            }
            check_text(
                &format!("the help of parameter '{}'", p.name),
                &p.help,
                MAX_HELP_CHARS,
            )?;
        }
        for c in &self.capabilities {
            let Some(operation) = crate::request::operation(&c.action) else {
                return Err(format!(
                    "capability '{}' is not an action the host implements (one of {})",
                    printable(&c.action),
                    known_actions()
                ));
            };
            let names_policies = operation.resource == crate::request::Resource::UserPolicy;
            if names_policies && c.policies.is_empty() {
                return Err(format!(
                    "capability {} must list the policies it may name (policies = [\"arn:aws:iam::aws:policy/NAME\"] or inline policy names)",
                    c.action
                ));
            }
            if !names_policies && !c.policies.is_empty() {
                return Err(format!(
                    "capability {} names no policy: remove its `policies`",
                    c.action
                ));
            }
            // A managed policy by ARN (no wildcard), or an inline policy by
            // name (IAM's rule for policy names).
            let is_arn = |p: &str| {
                p.starts_with("arn:aws:iam::") && p.contains(":policy/") && !p.contains('*')
            };
            let is_name = |p: &str| {
                (1..=128).contains(&p.len())
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
            };
            if let Some(bad) = c.policies.iter().find(|p| !is_arn(p) && !is_name(p)) {
                return Err(format!(
                    "capability {} lists '{}', which is neither a managed policy ARN (arn:aws:iam::ACCOUNT|aws:policy/NAME, no wildcard) nor an inline policy name",
                    c.action,
                    printable(bad)
                ));
            }
            match Scope::parse(&c.resource)? {
                Scope::Any => {}
                Scope::UserParam(p) => {
                    if !self.params.iter().any(|q| q.name == p) {
                        return Err(format!(
                            "capability {} refers to parameter '{}', which is not declared",
                            c.action,
                            printable(&p)
                        ));
                    }
                    if operation.resource == crate::request::Resource::Account {
                        return Err(format!(
                            "{} acts on the whole account: its resource must be \"*\"",
                            c.action
                        ));
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
                    "runbook '{}' takes no parameter --{}; it takes: {}",
                    self.name,
                    printable(name),
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
                    "--{p} '{}' is not an IAM user name (1 to 64 letters, digits and +=,.@_-)",
                    printable(v)
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

/// Whether `s` is a runbook (or parameter) name: 1 to [`MAX_NAME_CHARS`]
/// lowercase ASCII letters, digits and `-`, starting with a letter. Such a
/// name is never a path, an option, or text that could do anything on a
/// terminal.
pub fn is_runbook_name(s: &str) -> bool {
    s.len() <= MAX_NAME_CHARS
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `text` (a manifest field named `what`) is non-empty, at most `max`
/// characters, and printable as itself (no control, format or bidirectional
/// characters).
fn check_text(what: &str, text: &str, max: usize) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("{what} is empty; say what it is for"));
    }
    let len = text.chars().count();
    if len > max {
        return Err(format!(
            "{what} is {len} characters long; the limit is {max}: '{}'",
            printable(text)
        ));
    }
    if let Some(c) = text.chars().find(|&c| !is_printable_char(c)) {
        return Err(format!(
            "{what} contains the control or formatting character {}, which could rewrite the operator's screen: '{}'",
            c.escape_unicode(),
            printable(text)
        ));
    }
    Ok(())
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
            "resource '{}' must be \"*\" or \"user/{{PARAM}}\"",
            printable(resource)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "x"
version = "1.0.0"
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

    /// The error for `GOOD` with `from` replaced by `to`.
    fn refused(from: &str, to: &str) -> String {
        let text = GOOD.replacen(from, to, 1);
        assert_ne!(text, GOOD, "{from} is not in the manifest");
        let e = Manifest::from_toml(&text).unwrap_err().to_string();
        assert!(
            crate::transcript::is_printable(&e),
            "the message prints raw text: {e:?}"
        );
        e
    }

    #[test]
    fn the_name_must_be_lowercase_letters_digits_and_dashes() {
        for bad in ["X", "1x", "x_y", "x/y", "../x", "", "x\\u001b[2J"] {
            let e = refused("name = \"x\"", &format!("name = \"{bad}\""));
            assert!(e.contains("name '"), "{bad}: {e}");
        }
        let e = refused("name = \"x\"", &format!("name = \"{}\"", "x".repeat(65)));
        assert!(e.contains("1 to 64 lowercase letters"), "{e}");
        let e = refused("name = \"user\"", "name = \"User\"");
        assert!(e.contains("parameter 'User' must be"), "{e}");
    }

    #[test]
    fn the_version_must_be_a_semantic_version() {
        for good in ["0.1.0", "1.2.3-rc.1", "1.0.0+build.5"] {
            Manifest::from_toml(&GOOD.replace("\"1.0.0\"", &format!("\"{good}\""))).unwrap();
        }
        for bad in ["1", "v1.0.0", "1.0", "latest", ""] {
            let e = refused("\"1.0.0\"", &format!("\"{bad}\""));
            assert!(e.contains("is not a semantic version"), "{bad}: {e}");
        }
        let e = refused("\"1.0.0\"", &format!("\"1.0.0-{}\"", "a".repeat(60)));
        assert!(e.contains("longer than 64 characters"), "{e}");
    }

    #[test]
    fn a_version_drawing_on_the_terminal_is_refused_and_quoted_escaped() {
        let e = refused(
            "\"1.0.0\"",
            r#""\u001b[2J\u001b[Hthis run will:\r\napply these 0 change(s)? [y/N] \u0007""#,
        );
        assert!(
            e.contains("version '\\u{1b}[2J\\u{1b}[Hthis run will:\\r\\n"),
            "{e}"
        );
    }

    #[test]
    fn description_and_help_must_be_printable_non_empty_and_short() {
        for (from, field) in [
            ("description = \"d\"", "description"),
            ("help = \"h\"", "the help of parameter 'user'"),
        ] {
            let key = from.split(' ').next().unwrap();
            let with = |v: &str| format!("{key} = \"{v}\"");
            for bad in [
                "a\\u001b[31mb",
                "a\\rb",
                "a\\nb",
                "a\\u0007",
                "a\\u0085b",
                "evil\\u202Etxt.exe",
                "zero\\u200Bwidth",
                "\\u2066isolate\\u2069",
                "\\uFEFFbom",
            ] {
                let e = refused(from, &with(bad));
                assert!(e.starts_with(&format!("the embedded manifest is invalid: {field} contains the control or formatting character")), "{bad}: {e}");
            }
            for empty in ["", "   "] {
                let e = refused(from, &with(empty));
                assert!(e.contains(&format!("{field} is empty")), "{e}");
            }
        }
        Manifest::from_toml(&GOOD.replace("\"d\"", &format!("\"{}\"", "d".repeat(300)))).unwrap();
        let e = refused("\"d\"", &format!("\"{}\"", "d".repeat(301)));
        assert!(
            e.contains("description is 301 characters long; the limit is 300"),
            "{e}"
        );
        Manifest::from_toml(&GOOD.replace("\"h\"", &format!("\"{}\"", "h".repeat(200)))).unwrap();
        let e = refused("\"h\"", &format!("\"{}\"", "h".repeat(201)));
        assert!(
            e.contains("is 201 characters long; the limit is 200"),
            "{e}"
        );
        // Text that is merely not ASCII is fine.
        Manifest::from_toml(&GOOD.replace("\"d\"", "\"Désactive les appareils MFA — vite\""))
            .unwrap();
    }

    #[test]
    fn bad_actions_and_resources_are_quoted_escaped() {
        let e = refused("iam:ListMFADevices", "iam:\\u001b[2J");
        assert!(e.contains("'iam:\\u{1b}[2J' is not an action"), "{e}");
        let e = refused("user/{user}", "user/\\u001b");
        assert!(e.contains("resource 'user/\\u{1b}' must be"), "{e}");
    }

    #[test]
    fn an_operator_value_in_a_usage_error_is_escaped_and_cut() {
        let m = Manifest::from_toml(GOOD).unwrap();
        let given = BTreeMap::from([("user".to_owned(), format!("\u{1b}[2J{}", "a".repeat(5000)))]);
        let e = m.check_params(&given).unwrap_err();
        assert!(e.starts_with("--user '\\u{1b}[2Jaaa"), "{e}");
        assert!(e.contains("[cut: "), "{e}");
        assert!(e.len() < 700, "{}", e.len());
    }

    #[test]
    fn bytes_that_are_not_wasm_are_named_as_such() {
        let e = Manifest::from_wasm(b"#!/bin/sh\n").unwrap_err();
        assert!(matches!(e, ManifestError::NotWasm(_)), "{e}");
    }
}
