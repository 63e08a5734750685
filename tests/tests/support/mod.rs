//! What the tests share: the project's paths, the built `runbook` binary, a
//! moto IAM server on a free loopback port, started per test and killed after,
//! and a fault-injecting proxy to put in front of it.

pub mod attack;
pub mod moto;
pub mod proxy;
pub mod scenarios;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The checkout's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the checkout")
        .to_owned()
}

/// The `runbook` binary in this test's target directory. `cargo test` does not
/// build another package's binary, so `scripts/test` builds it first; a binary
/// missing or older than the host's sources fails here rather than testing
/// stale code.
pub fn runbook_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/debug/deps/main-HASH -> target/debug/runbook
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/PROFILE/deps")
        .join(format!("runbook{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&bin).and_then(|m| m.modified());
    let newest_source = newest(&root().join("host/src"));
    match built {
        Err(_) => panic!(
            "{} is missing: build it first (cargo build -p runbook-host; scripts/test does)",
            bin.display()
        ),
        Ok(t) if newest_source.is_some_and(|s| s > t) => panic!(
            "{} is older than host/src: rebuild it (cargo build -p runbook-host; scripts/test does)",
            bin.display()
        ),
        Ok(_) => bin,
    }
}

/// The newest modification time of a file under `dir`.
pub fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            if meta.is_dir() {
                newest(&e.path())
            } else {
                meta.modified().ok()
            }
        })
        .max()
}

/// A `runbook` command isolated from the developer's AWS set-up: fake
/// credentials, no config files, no instance metadata, no stdin.
pub fn runbook() -> Command {
    let mut cmd = Command::new(runbook_bin());
    isolate(&mut cmd);
    cmd
}

/// Isolate `cmd` (a `runbook` or something that starts one) from the
/// developer's AWS set-up.
pub fn isolate(cmd: &mut Command) {
    cmd.current_dir(root())
        .stdin(Stdio::null())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_IAM")
        .env_remove("AWS_ENDPOINT_URL_STS")
        .env_remove("AWS_ENDPOINT_URL_ORGANIZATIONS")
        .env_remove("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Nor the developer's runbook configuration.
        .env_remove("RUNBOOK_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent/config");
}

/// Run `runbook ARGS` to the end.
pub fn run(args: &[&str]) -> Output {
    runbook()
        .args(args)
        .output()
        .expect("running the runbook binary")
}

/// Run `runbook run RUNBOOK --user USER --endpoint-url MOTO --journal PATH
/// EXTRA...` to the end.
pub fn run_against(
    moto: &moto::Moto,
    runbook: &str,
    user: &str,
    journal: &Path,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "run",
        runbook,
        "--user",
        user,
        "--endpoint-url",
        &moto.url,
        "--journal",
        journal.to_str().expect("a UTF-8 temporary path"),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// An AWS config file in `dir` whose profile `helper` gets its credentials
/// from a `credential_process` that appends a line to a file each time it
/// runs: the config's path and that file's.
pub fn counting_credential_helper(dir: &Path) -> (PathBuf, PathBuf) {
    let count = dir.join("resolutions");
    let helper = dir.join("helper.sh");
    std::fs::write(
        &helper,
        format!(
            "echo x >> '{}'\necho '{{\"Version\": 1, \"AccessKeyId\": \"testing\", \"SecretAccessKey\": \"testing\"}}'\n",
            count.display()
        ),
    )
    .unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[profile helper]\ncredential_process = sh {}\n",
            helper.display()
        ),
    )
    .unwrap();
    (config, count)
}

/// Stdout and stderr of a run, for messages and snapshots.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How to name a runbook for `runbook run` or the harness: shipped runbooks by
/// name, test runbooks (tests/runbooks/, built by scripts/test) by path.
pub fn runbook_spec(name: &str) -> String {
    if root()
        .join("runbooks")
        .join(name)
        .join("runbook.toml")
        .is_file()
    {
        return name.to_owned();
    }
    let wasm = runbook_host::project::Project::find(Some(&root()))
        .expect("the checkout is a runbook project")
        .expect("--runbooks names it")
        .wasm_path(name);
    assert!(
        wasm.is_file(),
        "{} is missing: build the test runbooks (cd tests/runbooks && cargo build --release; scripts/test does)",
        wasm.display()
    );
    wasm.display().to_string()
}

/// Run `runbook ARGS`, killing it and failing if it takes longer than
/// `limit` (a command that blocks on a FIFO or reads /dev/zero must not
/// hang the tests).
pub fn run_within(args: &[&str], limit: std::time::Duration) -> Output {
    let mut child = runbook()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the runbook binary");
    let started = std::time::Instant::now();
    while child.try_wait().expect("waiting for runbook").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "runbook {args:?} took longer than {limit:?}: {:?}",
                text(&out)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("the runbook's output")
}

/// Bytes that would act on a terminal rather than print: ESC (escape
/// sequences), CR (overwrite a line), BEL, the C1 CSI (U+009B) and the
/// right-to-left override (U+202E), as UTF-8.
pub fn terminal_controls(bytes: &[u8]) -> Vec<&'static str> {
    let mut found = vec![];
    for (needle, name) in [
        (&b"\x1b"[..], "ESC"),
        (b"\r", "CR"),
        (b"\x07", "BEL"),
        ("\u{9b}".as_bytes(), "CSI"),
        ("\u{202e}".as_bytes(), "RLO"),
    ] {
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(name);
        }
    }
    found
}

/// Assert that neither stdout nor stderr of `out` holds a terminal control.
pub fn assert_no_terminal_controls(what: &str, out: &Output) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let found = terminal_controls(bytes);
        assert!(
            found.is_empty(),
            "{what}: raw {found:?} on {stream}: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// Run `command_line` (a shell command) in a pseudo-terminal from util-linux
/// `script`, typing `answer` and a newline into it; returns its exit code and
/// what the terminal showed (CRs removed).
pub fn on_a_terminal(command_line: &str, answer: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let mut cmd = Command::new("script");
    isolate(&mut cmd);
    let mut child = cmd
        .args([
            "--quiet",
            "--return",
            "--command",
            command_line,
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` gives a pseudo-terminal");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{answer}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).replace('\r', ""),
    )
}
