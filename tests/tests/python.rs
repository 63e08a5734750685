//! Python runbooks (componentize-py) under the same contract, sandbox, journal
//! and replay as Rust ones: the Python MFA recovery against every fixture the
//! Rust one recorded and against moto, the hostile suite's attacks written in
//! Python, and the virtual clocks and recorded seed of a Python runbook's WASI.
//!
//! Each Python runbook is built once per run of the tests (the host caches a
//! build by the sha256 of its sources; concurrent tests wait on one build)
//! and compiled once (the component cache).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runbook_host::harness::Harness;
use runbook_host::journal::{CallOutcome, Journal, RunOutcome};

use crate::support::attack::{Attack, USERS, contained, trapped};
use runbook_host::transcript;

use crate::support::moto::{Moto, arn};
use crate::support::scenarios::seed_world;
use crate::support::{root, run, run_against, runbook, text};

/// The shipped Python MFA recovery runbook's directory.
fn py_mfa() -> String {
    root()
        .join("runbooks/python/mfa-recovery")
        .display()
        .to_string()
}

/// A Python test runbook's directory (tests/runbooks/python/NAME).
fn py_test(name: &str) -> String {
    root()
        .join("tests/runbooks/python")
        .join(name)
        .display()
        .to_string()
}

/// Every committed fixture the Rust MFA recovery recorded.
fn mfa_fixtures() -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(root().join("tests/fixtures"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("journal.jsonl"))
        .filter(|p| p.is_file())
        .filter(|p| Journal::read(p).unwrap().header.runbook == "mfa-recovery")
        .map(|p| {
            let name = p.parent().unwrap().file_name().unwrap();
            (name.to_string_lossy().into_owned(), p)
        })
        .collect();
    found.sort();
    found
}

/// A journal's calls as the transcript shows them, without IAM's request ids
/// (a replay sends nothing, so it has none).
fn calls(records: &[runbook_host::journal::Record]) -> Vec<transcript::Line> {
    let mut lines = transcript::lines(records);
    lines.iter_mut().for_each(|l| l.request_ids.clear());
    lines
}

#[test]
fn the_python_mfa_recovery_replays_every_fixture_recorded_from_the_rust_one() {
    let fixtures = mfa_fixtures();
    let names: Vec<&str> = fixtures.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "dry-run",
            "hardware-token",
            "no-mfa",
            "no-such-user",
            "refused-without-consent",
            "seed-case",
            "two-virtual-devices"
        ],
        "every MFA fixture, so a new one cannot be left out"
    );
    for (name, path) in &fixtures {
        let recorded = Journal::read(path).unwrap();
        // In process: the same calls with the same arguments and answers, and
        // the same outcome, word for word.
        let replay = Harness::new(&py_mfa())
            .unwrap()
            .replay(path)
            .unwrap()
            .run()
            .unwrap();
        assert_eq!(replay.outcome, recorded.footer.outcome, "{name}");
        assert_eq!(
            calls(&replay.records),
            calls(&recorded.records),
            "{name}: the Python runbook made the Rust one's calls"
        );
        // And as an operator would check it.
        let out = run(&["replay", path.to_str().unwrap(), "--runbook", &py_mfa()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {stdout}{stderr}");
        assert!(
            stdout.contains("replay matched the recording"),
            "{name}: {stdout}"
        );
    }
}

/// Run `spec` (a runbook name or a Python runbook's directory) against
/// `moto` for mfa-test with `--yes`; the output, the verified journal and its
/// text.
fn recover(moto: &Moto, spec: &str) -> (std::process::Output, Journal, String) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let out = run_against(moto, spec, "mfa-test", &journal, &["--yes"]);
    let j = Journal::read(&journal)
        .unwrap_or_else(|e| panic!("the journal must verify: {e}\n{}", text(&out).1));
    (out, j, std::fs::read_to_string(&journal).unwrap())
}

#[test]
fn the_python_mfa_recovery_recovers_the_seed_case_as_the_rust_one_does() {
    let rust_moto = Moto::start();
    seed_world(&rust_moto);
    let (rust_out, rust, _) = recover(&rust_moto, "mfa-recovery");
    assert_eq!(rust_out.status.code(), Some(0), "{:?}", text(&rust_out));

    let moto = Moto::start();
    seed_world(&moto);
    let (out, python, journal) = recover(&moto, &py_mfa());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new());
    assert_eq!(moto.devices_of("alice"), vec![arn("alice")]);
    assert_eq!(
        moto.virtual_devices(),
        vec![
            (arn("alice"), Some("alice".to_owned())),
            (arn("orphan"), None)
        ],
        "mfa-test's device is deleted; the bystander's and the orphan survive"
    );
    assert!(
        stdout.contains("succeeded: 'mfa-test' has no MFA device now"),
        "{stdout}"
    );

    // The same requests, in the same order, and the same outcome.
    let requests = |j: &Journal| {
        j.calls()
            .map(|(c, _)| c.request.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(requests(&python), requests(&rust));
    assert_eq!(python.footer.outcome, rust.footer.outcome);
    assert!(
        python
            .calls()
            .all(|(_, e)| matches!(e.outcome, CallOutcome::Ok { .. })),
        "every call answered"
    );
    let sdk = python.header.sdk_version.as_deref().unwrap_or_default();
    assert!(sdk.ends_with("+python"), "the header says Python: {sdk}");
    // Seeds and QR codes never reach a journal, from either language.
    assert!(!journal.contains("Base32StringSeed") && !journal.contains("QRCode"));
}

#[test]
fn a_python_runbook_has_the_same_policy_and_manifest_as_its_rust_twin() {
    let policy = |spec: &str| {
        let out = run(&["policy", spec, "--user", "mfa-test"]);
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        text(&out).0
    };
    assert_eq!(policy(&py_mfa()), policy("mfa-recovery"));
    let out = run(&["inspect", &py_mfa()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("mfa-recovery 0.1.0"), "{stdout}");
}

/// Run Python test runbook `name` for mfa-test with `--yes` and `extra`
/// flags against a moto with the seed world (mfa-test, bystander alice, an
/// orphan device). It is built and compiled first (once per test run,
/// cached), so the time measured is the run's.
fn attack(moto: &Moto, name: &str, extra: &[&str]) -> Attack {
    let prepared = run(&["inspect", &py_test(name)]);
    assert_eq!(
        prepared.status.code(),
        Some(0),
        "{name}: {:?}",
        text(&prepared)
    );
    crate::support::attack::attack(moto, &py_test(name), extra)
}

#[test]
fn python_an_undeclared_action_is_denied_and_journaled() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "py-hostile-undeclared", &[]);
    contained::undeclared_action(&a);
}

#[test]
fn python_another_users_device_stays_active_and_the_denial_reveals_nothing() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(USERS);
    let a = attack(&moto, "py-hostile-other-user", &[]);
    contained::other_user(&moto, &before, &a);
}

#[test]
fn python_an_unrelated_unassigned_device_cannot_be_deleted() {
    let moto = Moto::start();
    seed_world(&moto);
    let before = moto.state(USERS);
    let a = attack(&moto, "py-hostile-delete-orphan", &[]);
    contained::orphan(&moto, &before, &a);
}

#[test]
fn python_an_endless_loop_stops_at_the_deadline_and_at_the_fuel_budget() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(
        &moto,
        "py-hostile-loop",
        &["--deadline", "1", "--max-fuel", "100000000000000"],
    );
    trapped(&a, "ran past its 1s deadline");
    assert!(a.elapsed < Duration::from_secs(30), "took {:?}", a.elapsed);

    let a = attack(&moto, "py-hostile-loop", &["--max-fuel", "1000000000"]);
    trapped(
        &a,
        "used up its fuel, 1000000000 units of work (--max-fuel)",
    );
    assert_eq!(a.journal().footer.fuel_used, Some(1_000_000_000));
}

#[test]
fn python_unbounded_allocation_stops_at_the_memory_cap() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "py-hostile-alloc", &["--max-memory-mib", "32"]);
    trapped(
        &a,
        "the runbook went over its 32 MiB memory limit (--max-memory-mib)",
    );
}

#[test]
fn python_a_log_flood_stops_at_the_log_cap() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "py-hostile-log-flood", &["--max-log-bytes", "65536"]);
    trapped(&a, "logged more than 65536 bytes");
    assert!(
        a.raw.len() < 200_000,
        "the journal stays small: {} bytes",
        a.raw.len()
    );
}

#[test]
fn python_the_host_filesystem_is_out_of_reach() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "py-hostile-files", &[]);
    assert_eq!(a.code, Some(1), "{}{}", a.stdout, a.stderr);
    // Each attempt finds no filesystem at all (WASI's ENOENT, errno 44).
    for attempt in [
        "open /etc/passwd: FileNotFoundError: [Errno 44]",
        "listdir /: FileNotFoundError: [Errno 44]",
        "write /tmp/x: FileNotFoundError: [Errno 44]",
    ] {
        assert!(a.stdout.contains(attempt), "{attempt}: {}", a.stdout);
    }
    assert!(!a.stdout.contains("succeeded"), "{}", a.stdout);
    assert!(!a.raw.contains("root:"), "nothing of /etc/passwd");
}

#[test]
fn python_the_environment_is_empty_at_build_time_and_at_run_time() {
    let moto = Moto::start();
    seed_world(&moto);
    // isolate() gives the host AWS_SECRET_ACCESS_KEY=testing: the runbook
    // must see none of it.
    let a = attack(&moto, "py-hostile-env", &[]);
    assert_eq!(a.code, Some(0), "{}{}", a.stdout, a.stderr);
    assert!(
        a.stdout
            .contains("env: 0 variables; AWS_SECRET_ACCESS_KEY=None; HOME=None; at build: AWS_SECRET_ACCESS_KEY=None"),
        "{}",
        a.stdout
    );
    assert!(!a.raw.contains("testing"), "no credential in the journal");
}

#[test]
fn python_sockets_are_refused_before_they_reach_the_network() {
    let moto = Moto::start();
    seed_world(&moto);
    let a = attack(&moto, "py-hostile-socket", &[]);
    assert_eq!(a.code, Some(1), "{}{}", a.stdout, a.stderr);
    // Refused by the sandbox before the network: name lookups fail
    // (WASI's permanent resolver failure, EAI_FAIL), a bare socket's connect
    // is not permitted; never a closed port's "Connection refused".
    for attempt in [
        "connect 127.0.0.1:1: gaierror: [Errno -4]",
        "socket.connect 127.0.0.1:1: PermissionError: [Errno 2]",
        "getaddrinfo example.com: gaierror: [Errno -4]",
        "urlopen http://127.0.0.1:1/: URLError: <urlopen error [Errno -4]",
    ] {
        assert!(a.stdout.contains(attempt), "{attempt}: {}", a.stdout);
    }
    assert!(!a.stdout.contains("succeeded"), "{}", a.stdout);
    assert!(!a.stdout.contains("Connection refused"), "{}", a.stdout);
}

/// The numbers `py-clock-random` reports, by name.
fn reported(outcome: &RunOutcome) -> std::collections::BTreeMap<String, String> {
    let RunOutcome::Succeeded { summary, .. } = outcome else {
        panic!("{outcome:?}");
    };
    summary
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn python_clocks_are_virtual_randomness_is_seeded_and_both_replay_exactly() {
    let moto = Moto::start();
    seed_world(&moto);
    let first = attack(&moto, "py-clock-random", &[]);
    assert_eq!(first.code, Some(0), "{}{}", first.stdout, first.stderr);
    assert!(
        first.elapsed < Duration::from_secs(60),
        "an hour's WASI wait did not block: {:?}",
        first.elapsed
    );
    let seen = reported(&first.journal().footer.outcome);
    let world = first
        .journal()
        .header
        .wasi
        .expect("the header records the world");
    let start_ns = u128::from(world.clock_start.seconds) * 1_000_000_000
        + u128::from(world.clock_start.nanoseconds);
    assert_eq!(
        seen["wall_start"],
        start_ns.to_string(),
        "the wall clock starts at the recorded instant"
    );
    assert_eq!(seen["mono_start"], "0");
    assert_eq!(
        seen["after_recorded_wait"], "50000000",
        "a recorded 50 ms wait moves it 50 ms"
    );
    assert!(
        seen["after_wasi_wait"].parse::<u64>().unwrap() >= 3_600_000_000_000,
        "a WASI wait of an hour moves virtual time an hour: {seen:?}"
    );
    assert_eq!(seen["devices"], "1");

    // Another run has another seed, and so other random numbers.
    let second = attack(&moto, "py-clock-random", &[]);
    let again = reported(&second.journal().footer.outcome);
    assert_ne!(
        second.journal().header.wasi.unwrap().random_seed,
        world.random_seed
    );
    assert_ne!(again["urandom"], seen["urandom"]);
    assert_ne!(again["random"], seen["random"]);

    // The replay gets the recorded seed and clock: the same numbers, to the
    // nanosecond (the outcome is compared word for word).
    let out = runbook()
        .args(["replay", first.path.to_str().unwrap()])
        .args(["--runbook", &py_test("py-clock-random")])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("replay matched the recording"), "{stdout}");

    // Without --runbook: a Python runbook is found by its directory, and the
    // message says so.
    let out = run(&["replay", first.path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("was recorded from a Python runbook ('py-clock-random'"),
        "{stderr}"
    );
    assert!(stderr.contains("--runbook PATH"), "{stderr}");
}

/// The checkout's componentize-py, installed by the host's first build of a
/// Python runbook of the checkout (built here if no test has yet): runbooks
/// in temporary directories use it rather than installing their own.
fn checkout_componentize_py() -> PathBuf {
    let out = run(&["inspect", &py_mfa()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = target.join("componentize-py-0.25.1/bin/componentize-py");
    assert!(bin.is_file(), "{}", bin.display());
    bin
}

/// A Python runbook in a temporary directory (outside the checkout: it is
/// built in the user's cache directory, here `cache`), with this `app.py`.
fn scratch_runbook(tmp: &tempfile::TempDir, app: &str) -> PathBuf {
    let rb = tmp.path().join("scratch");
    std::fs::create_dir(&rb).unwrap();
    std::fs::copy(
        root().join("runbooks/python/mfa-recovery/runbook.toml"),
        rb.join("runbook.toml"),
    )
    .unwrap();
    std::fs::write(rb.join("app.py"), app).unwrap();
    rb
}

/// `runbook ARGS` with the checkout's componentize-py and the cache in
/// `tmp/cache`.
fn run_scratch(
    tmp: &tempfile::TempDir,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut cmd = runbook();
    cmd.env("RUNBOOK_COMPONENTIZE_PY", checkout_componentize_py())
        .env("XDG_CACHE_HOME", tmp.path().join("cache"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

/// `runbook run RB --user mfa-test --dry-run` with [`run_scratch`].
fn dry_run_scratch(
    tmp: &tempfile::TempDir,
    env: &[(&str, &str)],
    rb: &std::path::Path,
) -> std::process::Output {
    let rb = rb.to_str().unwrap();
    run_scratch(tmp, env, &["run", rb, "--user", "mfa-test", "--dry-run"])
}

/// The components built in `tmp/cache`.
fn built(tmp: &tempfile::TempDir) -> Vec<PathBuf> {
    std::fs::read_dir(tmp.path().join("cache/runbook/python"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_python_runbook_that_does_not_build_is_refused_with_componentize_pys_words() {
    let tmp = tempfile::tempdir().unwrap();
    let rb = scratch_runbook(&tmp, "def run(params):\n    return (\n");
    let out = dry_run_scratch(&tmp, &[], &rb);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("building Python runbook"), "{stderr}");
    assert!(stderr.contains("app.py"), "names the file: {stderr}");
    assert!(built(&tmp).is_empty(), "no component is kept");
}

#[test]
fn a_python_runbook_that_loops_at_import_is_stopped_at_the_build_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let rb = scratch_runbook(
        &tmp,
        "while True:\n    pass\n\ndef run(params):\n    pass\n",
    );
    let started = Instant::now();
    let out = dry_run_scratch(&tmp, &[("RUNBOOK_PYTHON_BUILD_TIMEOUT", "5")], &rb);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("did not finish within 5 s, and was stopped"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(built(&tmp).is_empty(), "no component is kept");
}

#[test]
fn a_python_runbook_with_a_link_or_a_name_of_the_sdks_is_refused_before_it_is_built() {
    let tmp = tempfile::tempdir().unwrap();
    let rb = scratch_runbook(&tmp, "def run(params):\n    pass\n");
    let spec = rb.to_str().unwrap();
    // A module that would replace the sdk (and its error mapping, its
    // time.sleep) in the component.
    std::fs::write(rb.join("runbook_sdk.py"), "").unwrap();
    let out = run_scratch(&tmp, &[], &["inspect", spec]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("runbook_sdk.py: the name is the sdk's"),
        "{stderr}"
    );
    std::fs::remove_file(rb.join("runbook_sdk.py")).unwrap();
    // A file that is a link to one outside the runbook.
    std::os::unix::fs::symlink("/etc/passwd", rb.join("data.txt")).unwrap();
    let out = run_scratch(&tmp, &[], &["inspect", spec]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("data.txt is a symbolic link"), "{stderr}");
    assert!(built(&tmp).is_empty());
}

#[test]
fn with_trusted_signers_a_python_directory_is_refused_before_it_is_built() {
    let tmp = tempfile::tempdir().unwrap();
    let rb = scratch_runbook(&tmp, "def run(params):\n    pass\n");
    let signers = tmp.path().join("allowed_signers");
    std::fs::write(&signers, "").unwrap();
    let out = run_scratch(
        &tmp,
        &[],
        &[
            "run",
            rb.to_str().unwrap(),
            "--user",
            "mfa-test",
            "--dry-run",
            "--trusted-signers",
            signers.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(8), "{stdout}{stderr}");
    assert!(
        stderr.contains("a Python runbook directory is built on this machine"),
        "{stderr}"
    );
    assert!(!stderr.contains("building"), "{stderr}");
    assert!(built(&tmp).is_empty());
}

#[test]
fn runbook_new_lang_python_writes_a_runbook_that_builds_and_runs() {
    let moto = Moto::start();
    seed_world(&moto);
    let dir = tempfile::tempdir().unwrap();
    let new = |name: &str| {
        run(&[
            "new",
            name,
            "--lang",
            "python",
            "--dir",
            dir.path().to_str().unwrap(),
        ])
    };
    let out = new("look-around");
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let rb = dir.path().join("look-around");
    assert!(rb.join("app.py").is_file() && rb.join("runbook.toml").is_file());
    let out = new("look-around");
    assert_eq!(
        out.status.code(),
        Some(2),
        "not over an existing one: {:?}",
        text(&out)
    );
    // Outside a checkout its first build installs componentize-py into the
    // user's cache directory (not into the runbook's), and says so.
    let journal = dir.path().join("run.jsonl");
    let out = runbook()
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .args(["run", rb.to_str().unwrap(), "--user", "mfa-test", "--yes"])
        .args([
            "--endpoint-url",
            &moto.url,
            "--journal",
            journal.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("componentize-py 0.25.1 is not installed: installing it into"),
        "{stderr}"
    );
    assert!(
        dir.path()
            .join("cache/runbook/componentize-py-0.25.1/bin/componentize-py")
            .is_file()
    );
    assert!(
        !rb.join("target").exists(),
        "nothing is written beside the runbook"
    );
    assert!(
        stdout.contains("'mfa-test' has 1 MFA device(s)"),
        "{stdout}"
    );
    let j = Journal::read(&journal).unwrap();
    assert_eq!(j.header.runbook, "look-around");
}
