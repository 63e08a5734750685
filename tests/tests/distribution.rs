//! The runbook you reviewed is the runbook that runs: components are
//! reproducible in any checkout directory, and an installed binary carries the
//! shipped runbooks, needing no Rust toolchain and no checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

use runbook_host::journal::Journal;
use runbook_host::project::Found;

use crate::support::moto::{Moto, arn};
use crate::support::scenarios::seed_world;
use crate::support::{isolate, root, text};

/// Copy the parts of the checkout a build and a replay need (the runbooks,
/// the test runbooks, the sdk, the fixtures, the toolchain pin) to `dst`,
/// keeping symlinks as symlinks and leaving build output behind.
fn copy_checkout(dst: &Path) {
    for part in [
        "runbooks",
        "sdk",
        "tests/runbooks",
        "tests/fixtures",
        "rust-toolchain.toml",
    ] {
        copy_tree(&root().join(part), &dst.join(part));
    }
}

fn copy_tree(src: &Path, dst: &Path) {
    let meta = std::fs::symlink_metadata(src).unwrap();
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src).unwrap(), dst).unwrap();
    } else if meta.is_dir() {
        std::fs::create_dir_all(dst).unwrap();
        for entry in std::fs::read_dir(src).unwrap().flatten() {
            if entry.file_name() != "target" {
                copy_tree(&entry.path(), &dst.join(entry.file_name()));
            }
        }
    } else {
        std::fs::copy(src, dst).unwrap();
    }
}

fn sha256_of(path: &Path) -> String {
    Found::sha(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn fixtures() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("journal.jsonl"))
        .filter(|p| p.is_file())
        .collect();
    all.sort();
    all
}

/// A copy of the checkout in a directory of another name and depth builds
/// every runbook to the sha256 the checkout's build has and the committed
/// fixtures recorded, and replays each fixture with a plain `runbook replay`
/// (the runbook found by the name its journal records).
#[test]
fn a_checkout_elsewhere_builds_the_same_components_and_replays_every_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("a/checkout-under-another-name");
    copy_checkout(&other);
    for fixture in fixtures() {
        let relative = fixture.strip_prefix(root()).unwrap();
        let recorded = Journal::read(&fixture).unwrap();
        let name = recorded.header.runbook.clone();
        // Test runbooks are not found by name unless their directory is named.
        let shipped = root().join("runbooks").join(&name).is_dir();
        let mut cmd = Command::new(crate::support::runbook_bin());
        isolate(&mut cmd);
        cmd.current_dir(&other)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUNBOOK_PROJECT")
            .arg("replay")
            .arg(relative);
        if !shipped {
            cmd.args(["--runbooks", "tests/runbooks"]);
        }
        let out = cmd.output().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {stdout}\n{stderr}",
            relative.display()
        );
        let wasm = format!("{}.wasm", name.replace('-', "_"));
        let built_there = other.join("target/wasm32-wasip2/release").join(&wasm);
        let built_here = if shipped {
            runbook_host::project::Project::find(Some(&root()))
                .unwrap()
                .unwrap()
                .wasm_path(&name)
        } else {
            PathBuf::from(crate::support::runbook_spec(&name))
        };
        assert_eq!(
            sha256_of(&built_there),
            recorded.header.wasm_sha256,
            "{name} built in {} is not the component {} recorded",
            other.display(),
            relative.display()
        );
        assert_eq!(
            sha256_of(&built_there),
            sha256_of(&built_here),
            "{name}: the same source built two components"
        );
    }
}

/// The binary `scripts/test` installs with `cargo install --path host --root
/// target/installed`, as the README tells a newcomer to.
fn installed_binary() -> PathBuf {
    let bin = root().join("target/installed/bin/runbook");
    let installed = std::fs::metadata(&bin).and_then(|m| m.modified());
    let newest_source = ["host/src", "runbooks", "sdk/src", "sdk/wit"]
        .iter()
        .filter_map(|d| crate::support::newest(&root().join(d)))
        .max();
    match installed {
        Ok(i) if newest_source.is_none_or(|s| s <= i) => bin,
        _ => panic!(
            "{} is missing or older than the host's or the runbooks' sources: install it (CARGO_TARGET_DIR=target cargo install --path host --debug --locked --root target/installed; scripts/test does)",
            bin.display()
        ),
    }
}

/// A PATH with the system's tools but no cargo, rustc or rustup.
fn path_without_rust(dir: &Path) -> String {
    let mut dirs = vec![];
    for d in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if ["cargo", "rustc", "rustup"]
            .iter()
            .all(|tool| !Path::new(d).join(tool).exists())
        {
            dirs.push(d.to_owned());
        }
    }
    dirs.push(dir.display().to_string());
    dirs.join(":")
}

/// An installed binary, run from `/` with no Rust toolchain on PATH and no
/// checkout around, recovers the seed case with the embedded mfa-recovery:
/// the component the checkout builds, and the journal says so.
#[test]
fn an_installed_binary_runs_the_embedded_runbook_from_anywhere_without_a_toolchain() {
    let bin = installed_binary();
    let moto = Moto::start();
    seed_world(&moto);
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal.jsonl");
    let mut cmd = Command::new(&bin);
    isolate(&mut cmd);
    let out = cmd
        .current_dir("/")
        .env_clear()
        .env("PATH", path_without_rust(tmp.path()))
        .env("HOME", tmp.path())
        .env("RUNBOOK_STATE_DIR", tmp.path().join("state"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["run", "mfa-recovery", "--user", "mfa-test", "--yes"])
        .args(["--endpoint-url", &moto.url])
        .arg("--journal")
        .arg(&journal)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stderr.contains("building"), "nothing is built: {stderr}");
    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new());
    assert_eq!(moto.devices_of("alice"), vec![arn("alice")]);
    let recorded = Journal::read(&journal).unwrap();
    let checkout = runbook_host::project::Project::find(Some(&root()))
        .unwrap()
        .unwrap()
        .wasm_path("mfa-recovery");
    assert_eq!(recorded.header.wasm_sha256, sha256_of(&checkout));
    // The first run of a fresh install compiled nothing: the runbook's
    // machine code came with the binary, so the (empty) cache got nothing.
    let compiled: Vec<_> = std::fs::read_dir(tmp.path().join(".cache/runbook/components"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(compiled.is_empty(), "nothing compiled: {compiled:?}");

    // `runbook list` there: the embedded runbooks only, each marked as the
    // one that runs.
    let mut cmd = Command::new(&bin);
    isolate(&mut cmd);
    let out = cmd
        .current_dir("/")
        .env("PATH", path_without_rust(tmp.path()))
        .arg("list")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let mfa = stdout
        .lines()
        .skip_while(|l| !l.starts_with("mfa-recovery "))
        .nth(1)
        .unwrap_or_default();
    assert_eq!(
        mfa,
        format!(
            "  * 0.1.0    sha256 {}  embedded in this binary",
            sha256_of(&checkout)
        )
    );
}

/// In a checkout, `runbook list` shows the checkout's runbook first (it runs)
/// and the binary's after it.
#[test]
fn in_a_checkout_list_shows_that_its_runbooks_come_before_the_embedded_ones() {
    let out = crate::support::run(&["list"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let sha = sha256_of(
        &runbook_host::project::Project::find(Some(&root()))
            .unwrap()
            .unwrap()
            .wasm_path("mfa-recovery"),
    );
    let block: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("mfa-recovery "))
        .skip(1)
        .take(2)
        .collect();
    assert_eq!(
        block,
        [
            format!(
                "  * 0.1.0    sha256 {sha}  {}",
                root().join("runbooks").display()
            ),
            format!("    0.1.0    sha256 {sha}  embedded in this binary"),
        ]
    );
}

/// The runbooks embedded in the binary are trusted as the binary is: with
/// trusted signers required (here by the configuration file), an installed
/// binary still runs them, while a component given by path needs its
/// signature.
#[test]
fn with_trusted_signers_an_embedded_runbook_runs_and_a_path_needs_a_signature() {
    let bin = installed_binary();
    let moto = Moto::start();
    seed_world(&moto);
    let tmp = tempfile::tempdir().unwrap();
    let signers = tmp.path().join("allowed_signers");
    let (_, public) = crate::signing::keygen(tmp.path(), "alice", "");
    std::fs::write(&signers, format!("alice@example.com {public}\n")).unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!("trusted-signers = {:?}\n", signers.display().to_string()),
    )
    .unwrap();
    let copy = tmp.path().join("mfa-recovery.wasm");
    std::fs::copy(
        runbook_host::project::Project::find(Some(&root()))
            .unwrap()
            .unwrap()
            .wasm_path("mfa-recovery"),
        &copy,
    )
    .unwrap();
    for (runbook, code) in [("mfa-recovery", 0), (copy.to_str().unwrap(), 8)] {
        let mut cmd = Command::new(&bin);
        isolate(&mut cmd);
        let out = cmd
            .current_dir("/")
            .env("RUNBOOK_CONFIG", &config)
            .env("RUNBOOK_STATE_DIR", tmp.path().join("state"))
            .args(["run", runbook, "--user", "mfa-test", "--dry-run"])
            .args(["--endpoint-url", &moto.url])
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{runbook}: {stdout}\n{stderr}"
        );
    }
}
