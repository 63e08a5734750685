//! `runbook new`: a runbook anywhere, in Rust or Python, that builds and runs
//! as written.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use runbook_host::exit;
use runbook_host::manifest::is_runbook_name;
use runbook_host::transcript::{printable, printable_path};

/// Write a new runbook: its manifest (runbook.toml) and a read-only example
/// (a Rust crate with src/lib.rs and a harness test, or a Python app.py).
/// `runbook run DIR/NAME --user U` builds and runs it.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The runbook's name: lowercase letters, digits and '-'.
    name: String,

    /// Where to create the runbook's directory (default: here).
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,

    /// The language to write it in. A Python runbook needs only python3
    /// (componentize-py is installed on its first build); a Rust one, this
    /// checkout and the Rust toolchain.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Lang {
    Rust,
    Python,
}

/// The checkout this binary was built from: the sdk and the host crates a new
/// runbook depends on live there (they are not on crates.io).
const CHECKOUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

pub fn main(args: NewArgs) -> anyhow::Result<u8> {
    if !is_runbook_name(&args.name) {
        super::out::error(format_args!(
            "'{}' is not a runbook name: use lowercase letters, digits and '-', starting with a letter",
            printable(&args.name)
        ));
        return Ok(exit::USAGE);
    }
    let dir = args.dir.join(&args.name);
    if dir.exists() {
        super::out::error(format_args!(
            "{} exists already: choose another name or --dir",
            printable_path(&dir)
        ));
        return Ok(exit::USAGE);
    }
    if args.lang == Lang::Python {
        return python(&args, &dir);
    }
    let checkout = std::fs::canonicalize(CHECKOUT)
        .ok()
        .filter(|c| c.join("sdk/wit/runbook.wit").is_file());
    let Some(checkout) = checkout else {
        bail!(
            "this runbook binary was built from {CHECKOUT}, which no longer holds sdk/: build runbook from a checkout of the project to create runbooks"
        );
    };
    let name = &args.name;
    let sdk = checkout.join("sdk");
    let host = checkout.join("host");
    let files = [
        (
            "Cargo.toml",
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

# A runbook is a WebAssembly component: `runbook run .` builds it for
# wasm32-wasip2 and runs it sandboxed.
[lib]
crate-type = ["cdylib"]

[dependencies]
runbook-sdk = {{ path = {sdk:?} }}

# The harness test runs the component in process, as `runbook` would.
[target.'cfg(not(target_family = "wasm"))'.dev-dependencies]
runbook-host = {{ path = {host:?} }}

# Small components compile and instantiate fast.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"

# Its own workspace, wherever it is created.
[workspace]
"#
            ),
        ),
        ("runbook.toml", manifest(name)),
        (
            "src/lib.rs",
            r#"//! A runbook: a reviewed procedure, run sandboxed with only the IAM actions
//! its runbook.toml declares, every call journaled.

use runbook_sdk::iam::{self, IamError};
use runbook_sdk::{Failure, Outcome, Params, Runbook, log};

struct Example;

impl Runbook for Example {
    fn run(params: &Params) -> Result<Outcome, Failure> {
        let user = params.require("user")?;
        let devices = iam::list_mfa_devices(user).map_err(|e| match e {
            IamError::NoSuchEntity(_) => Failure::new(format!("IAM user '{user}' does not exist")),
            other => Failure::from(other),
        })?;
        log::info(format!("'{user}' has {} MFA device(s)", devices.len()));
        Ok(Outcome::new(format!("'{user}' has {} MFA device(s)", devices.len())))
    }
}

runbook_sdk::runbook!(Example);
"#
            .to_owned(),
        ),
        (
            "tests/harness.rs",
            r#"//! The runbook in process, with scripted IAM answers: `cargo test`.

use runbook_host::bindings::MfaDevice;
use runbook_host::harness::Harness;
use runbook_host::project::build_crate;
use runbook_host::request::{Request, Response};

#[test]
fn it_counts_the_users_mfa_devices() {
    let wasm = build_crate(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), &mut |m| {
        eprintln!("{m}")
    })
    .unwrap();
    let run = Harness::new(wasm.to_str().unwrap())
        .unwrap()
        .param("user", "alice")
        .answer_with(|request| match request {
            Request::ListMfaDevices { user_name } => Ok(Response::MfaDevices(vec![MfaDevice {
                user_name: user_name.clone(),
                serial_number: "arn:aws:iam::123456789012:mfa/alice".to_owned(),
                enable_date: "2026-01-01T00:00:00Z".to_owned(),
            }])),
            other => panic!("unexpected call {other:?}"),
        })
        .run()
        .unwrap();
    assert_eq!(run.exit_code, 0, "{:?}", run.outcome);
}
"#
            .to_owned(),
        ),
    ];
    for (file, content) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("files are inside the crate"))
            .with_context(|| format!("cannot create {}", printable_path(&dir)))?;
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write {}", printable_path(&path)))?;
    }
    outln!(
        "created runbook crate {}: edit runbook.toml and src/lib.rs, then `runbook run {} --user U --dry-run`; `cargo test` there runs its harness test",
        printable_path(&dir),
        printable_path(&dir)
    );
    Ok(exit::SUCCESS)
}

/// The manifest of a new runbook: a read-only example to start from.
fn manifest(name: &str) -> String {
    format!(
        r#"# What the runbook is and may do: read by the host before any of its code runs.
name = "{name}"
version = "0.1.0"
description = "Lists the MFA devices of a user (a read-only example to start from)."

[[params]]
name = "user"
help = "The IAM user to look at"
required = true

# Deny by default: every IAM action the runbook calls, with its scope.
[[capabilities]]
action = "iam:ListMFADevices"
resource = "user/{{user}}"
"#
    )
}

/// A Python runbook: runbook.toml and app.py. The sdk comes with the
/// binary (staged into each build), so it needs no checkout.
fn python(args: &NewArgs, dir: &std::path::Path) -> anyhow::Result<u8> {
    let files = [
        ("runbook.toml", manifest(&args.name)),
        (
            "app.py",
            r#""""A runbook: a reviewed procedure, run sandboxed with only the IAM actions
its runbook.toml declares, every call journaled."""

from runbook_sdk import Failure, Outcome, Params, iam, log


def run(params: Params) -> Outcome:
    user = params.require("user")
    try:
        devices = iam.list_mfa_devices(user)
    except iam.NoSuchEntity:
        raise Failure(f"IAM user '{user}' does not exist") from None
    log.info(f"'{user}' has {len(devices)} MFA device(s)")
    return Outcome(f"'{user}' has {len(devices)} MFA device(s)")
"#
            .to_owned(),
        ),
        (
            ".gitignore",
            "# Builds and componentize-py's venv (runbook run builds here).\ntarget/\n".to_owned(),
        ),
    ];
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", printable_path(&args.dir)))?;
    // Not create_dir_all: a directory made meanwhile is not written into.
    std::fs::create_dir(dir).with_context(|| format!("cannot create {}", printable_path(dir)))?;
    for (file, content) in files {
        let path = dir.join(file);
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write {}", printable_path(&path)))?;
    }
    outln!(
        "created Python runbook {}: edit runbook.toml and app.py, then `runbook run {} --user U --dry-run` (the first build installs componentize-py {} into its target/)",
        printable_path(dir),
        printable_path(dir),
        runbook_host::python::COMPONENTIZE_PY
    );
    Ok(exit::SUCCESS)
}
