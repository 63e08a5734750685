//! Signed runbooks and signed journals, with keys `ssh-keygen` makes in the
//! test, checked both ways against stock `ssh-keygen -Y`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use runbook_host::journal::Journal;
use serde_json::Value;

use crate::support::moto::Moto;
use crate::support::scenarios::seed_world;
use crate::support::{root, run, runbook, text};

/// `ssh-keygen ARGS`; a machine without it fails the test, saying what to
/// install.
fn ssh_keygen(args: &[&str], stdin: Option<&Path>) -> Output {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(args);
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
        None => Stdio::null(),
    });
    cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run ssh-keygen ({e}): install openssh-client (apt-get install -y openssh-client; scripts/test does)"
        )
    })
}

/// A key pair made by ssh-keygen in `dir`: the private key's path and the
/// public key line.
pub(crate) fn keygen(dir: &Path, name: &str, passphrase: &str) -> (PathBuf, String) {
    keygen_typed(dir, name, passphrase, "ed25519")
}

/// As [`keygen`], of key type `ty` (`ssh-keygen -t`).
fn keygen_typed(dir: &Path, name: &str, passphrase: &str, ty: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = ssh_keygen(
        &[
            "-q",
            "-t",
            ty,
            "-N",
            passphrase,
            "-C",
            name,
            "-f",
            key.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "ssh-keygen: {:?}", text(&out));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_owned())
}

/// The fingerprint `ssh-keygen -l` prints for the public key of `key`.
fn fingerprint(key: &Path) -> String {
    let out = ssh_keygen(
        &["-l", "-f", key.with_extension("pub").to_str().unwrap()],
        None,
    );
    let line = String::from_utf8(out.stdout).unwrap();
    line.split_whitespace().nth(1).unwrap().to_owned()
}

/// An allowed_signers file in `dir` holding `lines`.
fn allowed(dir: &Path, lines: &[String]) -> PathBuf {
    let p = dir.join("allowed_signers");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

/// A copy of the MFA recovery component in `dir` (signatures are written
/// beside it, never beside the shared build output).
fn component(dir: &Path) -> PathBuf {
    let built = runbook_host::project::Project::find(Some(&root()))
        .unwrap()
        .unwrap()
        .wasm_path("mfa-recovery");
    assert!(
        built.is_file(),
        "{} is missing: build the runbooks (scripts/build-runbooks; scripts/test does)",
        built.display()
    );
    let copy = dir.join("mfa-recovery.wasm");
    std::fs::copy(&built, &copy).unwrap();
    copy
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `runbook sign FILE --key KEY`, which must succeed.
fn sign(file: &Path, key: &Path, extra: &[&str]) {
    let mut args = vec!["sign", s(file), "--key", s(key)];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

/// A run of `component` that the signature check must refuse: exit 8, a
/// message with `needle`, and no journal (nothing of the runbook ran; no
/// AWS endpoint is even reachable).
fn refused(component: &str, extra: &[&str], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.jsonl");
    let mut args = vec![
        "run",
        component,
        "--user",
        "mfa-test",
        "--dry-run",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--journal",
        s(&journal),
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(8), "{stdout}{stderr}");
    assert!(stderr.contains("error: refused to run"), "{stderr}");
    assert!(stderr.contains(needle), "wanted {needle:?} in: {stderr}");
    assert!(
        !journal.exists(),
        "a refused run writes no journal: {stderr}"
    );
}

#[test]
fn runbook_sign_writes_a_signature_ssh_keygen_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = keygen(d, "alice", "");
    let wasm = component(d);
    let out = run(&["sign", s(&wasm), "--key", s(&key)]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("with key {}", fingerprint(&key))),
        "{stdout}"
    );
    let sig = d.join("mfa-recovery.wasm.sig");
    let armored = std::fs::read_to_string(&sig).unwrap();
    assert!(
        armored.starts_with("-----BEGIN SSH SIGNATURE-----\n"),
        "{armored}"
    );

    let signers = allowed(d, &[format!("alice@example.com {public}")]);
    let verify = |identity: &str| {
        ssh_keygen(
            &[
                "-Y",
                "verify",
                "-n",
                "runbook",
                "-f",
                s(&signers),
                "-I",
                identity,
                "-s",
                s(&sig),
            ],
            Some(&wasm),
        )
    };
    let ok = verify("alice@example.com");
    assert!(ok.status.success(), "ssh-keygen refused: {:?}", text(&ok));
    assert!(
        text(&ok)
            .0
            .contains("Good \"runbook\" signature for alice@example.com"),
        "{:?}",
        text(&ok)
    );
    // ssh-keygen's own checks still hold: another identity is refused.
    assert!(!verify("mallory@example.com").status.success());
}

#[test]
fn ed25519_ecdsa_and_rsa_keys_sign_and_verify_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wasm = component(d);
    let sig = d.join("mfa-recovery.wasm.sig");
    for ty in ["ed25519", "ecdsa", "rsa"] {
        let (key, public) = keygen_typed(d, ty, "", ty);
        let signers = allowed(d, &[format!("{ty}@example.com {public}")]);
        sign(&wasm, &key, &[]);
        let out = ssh_keygen(
            &[
                "-Y",
                "verify",
                "-n",
                "runbook",
                "-f",
                s(&signers),
                "-I",
                &format!("{ty}@example.com"),
                "-s",
                s(&sig),
            ],
            Some(&wasm),
        );
        assert!(out.status.success(), "{ty}: {:?}", text(&out));

        std::fs::remove_file(&sig).unwrap();
        let out = ssh_keygen(
            &["-Y", "sign", "-n", "runbook", "-f", s(&key), s(&wasm)],
            None,
        );
        assert!(out.status.success(), "{ty}: {:?}", text(&out));
        // Accepted: the run goes on to fail at the unreachable endpoint.
        let out = run(&[
            "run",
            s(&wasm),
            "--user",
            "mfa-test",
            "--dry-run",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--journal",
            s(&d.join(format!("{ty}.jsonl"))),
            "--trusted-signers",
            s(&signers),
        ]);
        assert_ne!(out.status.code(), Some(8), "{ty}: {:?}", text(&out));
        let j = Journal::read(&d.join(format!("{ty}.jsonl"))).unwrap();
        let signer = j.header.signed_by.expect("the signer is in the header");
        assert_eq!(signer.principal, format!("{ty}@example.com"));
        assert_eq!(signer.fingerprint, fingerprint(&key));
    }
}

#[test]
fn an_ssh_keygen_signature_lets_the_run_go_and_the_signer_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = keygen(d, "alice", "");
    let wasm = component(d);
    let out = ssh_keygen(
        &["-Y", "sign", "-n", "runbook", "-f", s(&key), s(&wasm)],
        None,
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let signers = allowed(
        d,
        &[
            "# the team's keys".to_owned(),
            format!("alice@example.com namespaces=\"git,runbook\" {public}"),
        ],
    );
    let moto = Moto::start();
    seed_world(&moto);
    let journal = d.join("run.jsonl");
    let out = run(&[
        "run",
        s(&wasm),
        "--user",
        "mfa-test",
        "--dry-run",
        "--endpoint-url",
        &moto.url,
        "--journal",
        s(&journal),
        "--trusted-signers",
        s(&signers),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let j = Journal::read(&journal).unwrap();
    let signer = j
        .header
        .signed_by
        .clone()
        .expect("the signer is in the header");
    assert_eq!(signer.principal, "alice@example.com");
    assert_eq!(signer.fingerprint, fingerprint(&key));
    assert!(j.calls().count() > 0, "the runbook ran");

    let out = run(&["show", s(&journal)]);
    assert!(
        text(&out).0.contains(&format!(
            "component signed by alice@example.com (key {})",
            fingerprint(&key)
        )),
        "{:?}",
        text(&out)
    );
}

#[test]
fn a_component_without_a_valid_trusted_signature_is_refused_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (alice, alice_pub) = keygen(d, "alice", "");
    let (mallory, _) = keygen(d, "mallory", "");
    let signers = allowed(d, &[format!("alice@example.com {alice_pub}")]);
    let trusted = ["--trusted-signers", s(&signers)];
    let wasm = component(d);
    let sig = d.join("mfa-recovery.wasm.sig");

    // No signature at all.
    refused(s(&wasm), &trusted, "has no signature");

    // One byte of the component flipped after signing.
    sign(&wasm, &alice, &[]);
    let mut bytes = std::fs::read(&wasm).unwrap();
    let original = bytes.clone();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(&wasm, &bytes).unwrap();
    refused(
        s(&wasm),
        &trusted,
        "mfa-recovery.wasm changed after it was signed",
    );
    std::fs::write(&wasm, &original).unwrap();

    // A signer the file does not list.
    sign(&wasm, &mallory, &[]);
    refused(
        s(&wasm),
        &trusted,
        &format!(
            "signed by key {}, which {} does not list",
            fingerprint(&mallory),
            signers.display()
        ),
    );

    // A listed key past its valid-before.
    sign(&wasm, &alice, &[]);
    let expired = d.join("expired_signers");
    std::fs::write(
        &expired,
        format!("alice@example.com valid-before=\"20200101Z\" {alice_pub}\n"),
    )
    .unwrap();
    refused(
        s(&wasm),
        &["--trusted-signers", s(&expired)],
        "valid only before 20200101Z (valid-before): it expired",
    );

    // A signature for another namespace (ssh-keygen's `file`).
    std::fs::remove_file(&sig).unwrap();
    let out = ssh_keygen(
        &["-Y", "sign", "-n", "file", "-f", s(&alice), s(&wasm)],
        None,
    );
    assert!(out.status.success(), "{:?}", text(&out));
    refused(
        s(&wasm),
        &trusted,
        "signed for namespace 'file', not 'runbook'",
    );

    // A runbook given by name has no file beside it: --signature only.
    refused(
        "mfa-recovery",
        &trusted,
        "a runbook given by name has no signature file beside it: pass --signature FILE",
    );

    // The valid signature, given with --signature, is accepted (the run goes
    // on to fail at the unreachable endpoint, not at the check).
    sign(&wasm, &alice, &["--output", s(&d.join("elsewhere.sig"))]);
    let out = run(&[
        "run",
        s(&wasm),
        "--user",
        "mfa-test",
        "--dry-run",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--journal",
        s(&d.join("ok.jsonl")),
        "--trusted-signers",
        s(&signers),
        "--signature",
        s(&d.join("elsewhere.sig")),
    ]);
    assert_ne!(out.status.code(), Some(8), "{:?}", text(&out));
    assert!(!text(&out).1.contains("refused to run"), "{:?}", text(&out));
}

#[test]
fn a_bad_allowed_signers_file_is_a_usage_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wasm = component(d);
    let signers = allowed(d, &["# keys".to_owned(), "alice@example.com".to_owned()]);
    let out = run(&[
        "run",
        s(&wasm),
        "--user",
        "mfa-test",
        "--trusted-signers",
        s(&signers),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("{}:2: ", signers.display())),
        "{stderr}"
    );
}

#[test]
fn replay_with_trusted_signers_checks_the_component_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (alice, alice_pub) = keygen(d, "alice", "");
    let signers = allowed(d, &[format!("alice@example.com {alice_pub}")]);
    let wasm = component(d);
    let fixture = root().join("tests/fixtures/seed-case/journal.jsonl");
    let replay = || {
        run(&[
            "replay",
            s(&fixture),
            "--runbook",
            s(&wasm),
            "--trusted-signers",
            s(&signers),
        ])
    };
    let out = replay();
    assert_eq!(out.status.code(), Some(8), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("has no signature"),
        "{:?}",
        text(&out)
    );
    sign(&wasm, &alice, &[]);
    let out = replay();
    assert_ne!(out.status.code(), Some(8), "{:?}", text(&out));
}

#[test]
fn an_encrypted_key_needs_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = keygen(d, "alice", "correct horse");
    let wasm = component(d);
    let out = run(&["sign", s(&wasm), "--key", s(&key)]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("{} is encrypted with a passphrase", key.display())),
        "{stderr}"
    );
    assert!(stderr.contains("ssh-keygen -p"), "{stderr}");

    let out = runbook()
        .args(["sign", s(&wasm), "--key", s(&key)])
        .env("RUNBOOK_KEY_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out).1.contains("passphrase is wrong"),
        "{:?}",
        text(&out)
    );

    let out = runbook()
        .args(["sign", s(&wasm), "--key", s(&key)])
        .env("RUNBOOK_KEY_PASSPHRASE", "correct horse")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let signers = allowed(d, &[format!("alice {public}")]);
    let out = ssh_keygen(
        &[
            "-Y",
            "verify",
            "-n",
            "runbook",
            "-f",
            s(&signers),
            "-I",
            "alice",
            "-s",
            s(&d.join("mfa-recovery.wasm.sig")),
        ],
        Some(&wasm),
    );
    assert!(out.status.success(), "{:?}", text(&out));
}

/// A dry run against moto that signs its journal; returns the journal, the
/// allowed_signers file and the signing key.
fn signed_journal(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (key, public) = keygen(d, "operator", "");
    let signers = allowed(d, &[format!("oncall@example.com {public}")]);
    let moto = Moto::start();
    seed_world(&moto);
    let journal = d.join("run.jsonl");
    let out = run(&[
        "run",
        "mfa-recovery",
        "--user",
        "mfa-test",
        "--dry-run",
        "--endpoint-url",
        &moto.url,
        "--journal",
        s(&journal),
        "--sign-journal",
        s(&key),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let last = Journal::read(&journal).unwrap().last_hash;
    assert!(
        stdout.contains(&format!(
            "journal signed with key {} (last line sha256 {last}): {}.sig",
            fingerprint(&key),
            journal.display()
        )),
        "{stdout}"
    );
    (journal, signers, key)
}

/// `runbook verify JOURNAL [--trusted-signers FILE]`.
fn verify(journal: &Path, signers: Option<&Path>) -> Output {
    let mut args = vec!["verify", s(journal)];
    if let Some(f) = signers {
        args.extend(["--trusted-signers", s(f)]);
    }
    run(&args)
}

#[test]
fn a_signed_journal_verifies_with_its_signer_and_ssh_keygen_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (journal, signers, key) = signed_journal(d);
    let out = verify(&journal, Some(&signers));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "signed by oncall@example.com (key {})",
            fingerprint(&key)
        )),
        "{stdout}"
    );
    // The signature is over the last line's sha256 as the run printed it,
    // namespace runbook-journal: ssh-keygen checks it too.
    let hash = d.join("last-hash");
    std::fs::write(&hash, Journal::read(&journal).unwrap().last_hash).unwrap();
    let out = ssh_keygen(
        &[
            "-Y",
            "verify",
            "-n",
            "runbook-journal",
            "-f",
            s(&signers),
            "-I",
            "oncall@example.com",
            "-s",
            s(&d.join("run.jsonl.sig")),
        ],
        Some(&hash),
    );
    assert!(out.status.success(), "{:?}", text(&out));
}

/// Rewrite `journal` line by line with `edit` (given each line's distance
/// from the end), recomputing the chain only if `rechain`; lines `edit`
/// leaves alone keep their bytes.
fn rewrite(journal: &Path, rechain: bool, edit: impl Fn(usize, &mut Value)) {
    let text = std::fs::read_to_string(journal).unwrap();
    let n = text.lines().count();
    let mut lines = Vec::new();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let original: Value = serde_json::from_str(line).unwrap();
        let mut v = original.clone();
        edit(n - i - 1, &mut v);
        if v == original {
            out.push_str(line);
        } else {
            out.push_str(&serde_json::to_string(&v).unwrap());
        }
        out.push('\n');
        lines.push(v);
    }
    if rechain {
        out = crate::journal::chain(lines);
    }
    std::fs::write(journal, out).unwrap();
}

#[test]
fn a_footer_edit_passes_the_chain_but_fails_a_signed_journal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (journal, signers, _) = signed_journal(d);
    // Only the last line: nothing after it carries its hash.
    rewrite(&journal, false, |from_end, v| {
        if from_end == 0 {
            v["outcome"]["summary"] = "nothing to see here".into();
        }
    });
    assert_eq!(verify(&journal, None).status.code(), Some(0));
    let out = verify(&journal, Some(&signers));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}{stderr}");
    assert!(
        stderr.contains("run.jsonl.sig does not match its last line"),
        "{stderr}"
    );
}

#[test]
fn a_rewrite_with_a_recomputed_chain_fails_a_signed_journal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (journal, signers, _) = signed_journal(d);
    // The run is made to look as if it was for another user, every line
    // chained afresh.
    rewrite(&journal, true, |_, v| {
        if v["kind"] == "header" {
            v["parameters"]["user"] = "alice".into();
        }
    });
    assert_eq!(verify(&journal, None).status.code(), Some(0));
    let out = verify(&journal, Some(&signers));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}{stderr}");
    assert!(stderr.contains("does not match its last line"), "{stderr}");
}

#[test]
fn an_unsigned_journal_fails_verify_with_trusted_signers_and_says_how_to_sign() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (journal, signers, key) = signed_journal(d);
    let sig = d.join("run.jsonl.sig");
    std::fs::remove_file(&sig).unwrap();
    let out = verify(&journal, Some(&signers));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}{stderr}");
    assert!(stderr.contains("it has no signature"), "{stderr}");
    assert!(stderr.contains("--sign-journal KEY"), "{stderr}");

    // Signed afterwards with `runbook sign --journal`; never replaced.
    sign(&journal, &key, &["--journal"]);
    assert_eq!(verify(&journal, Some(&signers)).status.code(), Some(0));
    let out = run(&["sign", s(&journal), "--key", s(&key), "--journal"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("never replaced"), "{:?}", text(&out));

    // A component signature is no journal signature (another namespace).
    std::fs::remove_file(&sig).unwrap();
    let wasm = component(d);
    sign(&wasm, &key, &[]);
    std::fs::copy(d.join("mfa-recovery.wasm.sig"), &sig).unwrap();
    let out = verify(&journal, Some(&signers));
    assert_eq!(out.status.code(), Some(7), "{:?}", text(&out));
    assert!(
        text(&out)
            .1
            .contains("signed for namespace 'runbook', not 'runbook-journal'"),
        "{:?}",
        text(&out)
    );
}

/// An organisation's configuration file sets the trusted signers once: a run
/// without the flag refuses an unsigned component all the same.
#[test]
fn trusted_signers_from_the_configuration_file_refuse_an_unsigned_component() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = keygen(dir.path(), "alice", "");
    let signers = allowed(dir.path(), &[format!("alice@example.com {public}")]);
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("trusted-signers = {:?}\n", s(&signers))).unwrap();
    let wasm = component(dir.path());
    let journal = dir.path().join("run.jsonl");
    let out = crate::support::runbook()
        .env("RUNBOOK_CONFIG", &config)
        .args(["run", s(&wasm), "--user", "mfa-test", "--dry-run"])
        .args([
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--journal",
            s(&journal),
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(8), "{stdout}{stderr}");
    assert!(stderr.contains("it has no signature"), "{stderr}");
    assert!(!journal.exists());
}
