//! Fleet runs end to end: one moto holding an Organization of three member
//! accounts, 40 targets of `mfa-recovery` spread over them with a bystander in
//! each, one target whose role cannot be assumed (the fault proxy denies it)
//! and one user that does not exist.

use std::path::Path;

use crate::support::moto::Moto;
use crate::support::proxy::{Fault, Proxy, Rule};
use crate::support::{run, text};

const ROLE: &str = "FleetRole";

#[test]
fn forty_targets_over_three_accounts_recover_and_the_failures_are_their_own() {
    let moto = Moto::start();
    let ids = moto.organization(3);
    let proxy = Proxy::start(&moto);
    let denied = proxy.add(
        Rule::on("AssumeRole", Fault::access_denied())
            .role("Broken")
            .always(),
    );
    let mut rows = vec!["user,account,role".to_owned()];
    let mut victims = vec![];
    for (a, id) in ids.iter().enumerate() {
        let account = moto.in_account(id, ROLE);
        account.user_with_virtual("bystander", "bystander");
        for u in 0..13 {
            let user = format!("user{a}-{u}");
            account.user_with_virtual(&user, &user);
            rows.push(format!("{user},{id},{ROLE}"));
            victims.push((id.clone(), user));
        }
    }
    // 39 victims, a user that does not exist, and a role that cannot be
    // assumed: 41 targets.
    rows.push(format!("ghost,{},{ROLE}", ids[0]));
    rows.push(format!("user0-0,{},Broken", ids[1]));
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.csv");
    std::fs::write(&targets, rows.join("\n") + "\n").unwrap();
    let journals = dir.path().join("journals");

    let out = run(&[
        "run",
        "mfa-recovery",
        "--targets",
        targets.to_str().unwrap(),
        "--endpoint-url",
        &proxy.url,
        "--yes",
        "--concurrency",
        "4",
        "--journal-dir",
        journals.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(9), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("39 of 41 target(s) succeeded, 2 did not"),
        "{stdout}"
    );
    assert!(
        proxy.fired(denied) >= 1,
        "the Broken role was asked for and denied"
    );
    // The denied target failed with STS's reason and ran nothing.
    let broken = stdout
        .lines()
        .find(|l| l.starts_with("#40 "))
        .unwrap_or_default();
    assert!(
        broken.contains("cannot assume role arn:aws:iam::") && broken.contains("AccessDenied"),
        "{stdout}"
    );
    assert!(
        !journals
            .join(format!("040-{}-user0-0.jsonl", ids[1]))
            .exists()
    );
    // The missing user: the runbook's own failure, journaled.
    let ghost = stdout
        .lines()
        .find(|l| l.starts_with("#39 "))
        .unwrap_or_default();
    assert!(
        ghost.contains(" 1 "),
        "exit 1 for the missing user: {ghost}"
    );

    // Every victim recovered, in its own account; every bystander untouched.
    for (id, user) in &victims {
        assert_eq!(
            moto.in_account(id, ROLE).devices_of(user),
            Vec::<String>::new(),
            "{user} in {id}"
        );
    }
    for id in &ids {
        assert_eq!(
            moto.in_account(id, ROLE).devices_of("bystander").len(),
            1,
            "{id}"
        );
    }
    // Each target's journal verifies, and records the account and the role.
    let mut count = 0;
    for entry in std::fs::read_dir(&journals).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "jsonl")
            || path.file_name().is_some_and(|n| n == "fleet.jsonl")
        {
            continue;
        }
        verify(&path);
        let j = runbook_host::journal::Journal::read(&path).unwrap();
        let account = &j.header.target["account"];
        assert!(ids.contains(account), "{}", path.display());
        assert!(
            j.header.target["caller"].starts_with(&format!(
                "arn:aws:sts::{account}:assumed-role/{ROLE}/runbook-mfa-recovery-"
            )),
            "{:?}",
            j.header.target
        );
        count += 1;
    }
    assert_eq!(count, 40, "a journal per target that ran");

    // The fleet journal verifies, with every target journal it names.
    let fleet = journals.join("fleet.jsonl");
    verify(&fleet);
    // The whole fleet replays offline, with IAM gone.
    drop(proxy);
    drop(moto);
    let out = run(&["replay", fleet.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    // One byte of one target journal changed: the fleet fails verify,
    // naming that target and its journal.
    let victim = journals.join(format!("005-{}-user0-5.jsonl", ids[0]));
    let body = std::fs::read_to_string(&victim).unwrap();
    std::fs::write(&victim, body.replacen("user0-5", "user0-6", 1)).unwrap();
    let out = run(&["verify", fleet.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}{stderr}");
    assert!(
        stderr.contains("target 5") && stderr.contains(&format!("005-{}-user0-5.jsonl", ids[0])),
        "{stderr}"
    );
}

/// A fleet killed mid-way (SIGKILL) is finished by `--resume fleet.jsonl`:
/// the targets done are not run again, none is done twice, and the fleet
/// journal then verifies whole.
#[test]
fn a_fleet_killed_mid_way_resumes_without_redoing_a_target() {
    let moto = Moto::start();
    let ids = moto.organization(1);
    let account = moto.in_account(&ids[0], ROLE);
    let mut rows = vec!["user,account,role".to_owned()];
    for u in 0..12 {
        let user = format!("k{u}");
        account.user_with_virtual(&user, &user);
        rows.push(format!("{user},{},{ROLE}", ids[0]));
    }
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.csv");
    std::fs::write(&targets, rows.join("\n") + "\n").unwrap();
    let journals = dir.path().join("journals");
    let fleet = journals.join("fleet.jsonl");
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "run",
            "mfa-recovery",
            "--targets",
            targets.to_str().unwrap(),
            "--endpoint-url",
            &moto.url,
            "--yes",
            "--concurrency",
            "1",
            // Slow enough to be killed part-way: 2 IAM requests a second.
            "--max-rate",
            "2",
            "--journal-dir",
            journals.to_str().unwrap(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let mut child = crate::support::runbook()
        .args(args(&[]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once three targets are done (bounded: 60 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let done = std::fs::read_to_string(&fleet)
            .unwrap_or_default()
            .matches("\"kind\":\"target-done\"")
            .count();
        if done >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the fleet never got going"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = std::fs::read_to_string(&fleet).unwrap();
    let done_before = before.matches("\"kind\":\"target-done\"").count();
    assert!(done_before < 12, "killed before the end: {done_before}");

    let out = run(&args(&["--resume", fleet.to_str().unwrap()])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "{done_before} target(s) done before are not run again"
        )),
        "{stderr}"
    );
    let after = std::fs::read_to_string(&fleet).unwrap();
    assert!(
        after.starts_with(before.trim_end_matches(|c| c != '\n')),
        "appended to"
    );
    assert_eq!(
        after.matches("\"kind\":\"target-done\"").count(),
        12,
        "each target done once"
    );
    verify(&fleet);
    for u in 0..12 {
        assert_eq!(
            account.devices_of(&format!("k{u}")),
            Vec::<String>::new(),
            "k{u}"
        );
    }
    // No change was sent twice: across every journal, each device was
    // deactivated once.
    let mut deactivations = 0;
    for entry in std::fs::read_dir(&journals).unwrap().flatten() {
        let j = runbook_host::journal::Partial::read(&entry.path());
        if let Ok(j) = j {
            for (c, e) in j.records.iter().zip(j.records.iter().skip(1)) {
                if let (
                    runbook_host::journal::Record::Call(c),
                    runbook_host::journal::Record::Result(e),
                ) = (c, e)
                    && c.request.op() == "deactivate-mfa-device"
                    && !e.resumed
                    && matches!(e.outcome, runbook_host::journal::CallOutcome::Ok { .. })
                {
                    deactivations += 1;
                }
            }
        }
    }
    assert_eq!(deactivations, 12, "one deactivation sent per user");
}

fn verify(path: &Path) {
    let out = run(&["verify", path.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {:?}",
        path.display(),
        text(&out)
    );
}

/// `--accounts org`: the read-only audit in every active account of the
/// Organization (the three members and the management account), each through
/// the role, each account's findings its own.
#[test]
fn the_audit_runs_in_every_account_of_the_organization() {
    let moto = Moto::start();
    let ids = moto.organization(3);
    for (a, id) in ids.iter().enumerate() {
        let account = moto.in_account(id, ROLE);
        account.user(&format!("nomfa{a}"));
        account.login_profile(&format!("nomfa{a}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "run",
        "mfa-audit",
        "--accounts",
        "org",
        "--role-name",
        ROLE,
        "--endpoint-url",
        &moto.url,
        "--journal-dir",
        dir.path().to_str().unwrap(),
        "--output",
        "json",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 4, "three members and the management account");
    for (a, id) in ids.iter().enumerate() {
        let t = targets
            .iter()
            .find(|t| t["target"]["account"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} in {stdout}"));
        assert_eq!(t["exit_code"], 0);
        assert_eq!(
            t["target"]["role"],
            format!("arn:aws:iam::{id}:role/{ROLE}").as_str()
        );
        let text = t.to_string();
        assert!(text.contains(&format!("nomfa{a}")), "{text}");
        for other in (0..3).filter(|o| *o != a) {
            assert!(!text.contains(&format!("nomfa{other}")), "{text}");
        }
    }
    verify(&dir.path().join("fleet.jsonl"));
}

/// On a terminal, a fleet run plans every target, shows all their changes,
/// and asks once; "n" changes nothing anywhere.
#[test]
fn a_fleet_asks_once_for_all_its_targets_and_no_changes_nothing() {
    let moto = Moto::start();
    let ids = moto.organization(2);
    let mut rows = vec!["user,account,role".to_owned()];
    for id in &ids {
        moto.in_account(id, ROLE).user_with_virtual("pat", "pat");
        rows.push(format!("pat,{id},{ROLE}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.csv");
    std::fs::write(&targets, rows.join("\n") + "\n").unwrap();
    let line = format!(
        "{} run mfa-recovery --targets {} --endpoint-url {} --journal-dir {}",
        crate::support::runbook_bin().display(),
        targets.display(),
        moto.url,
        dir.path().join("journals").display()
    );
    let (code, screen) = crate::support::on_a_terminal(&line, "n");
    assert_eq!(code, Some(5), "{screen}");
    assert_eq!(
        screen.matches("apply these 4 change(s)? [y/N]").count(),
        1,
        "{screen}"
    );
    for id in &ids {
        assert!(
            screen.contains(&format!(
                "deactivate MFA device arn:aws:iam::{id}:mfa/pat of user pat"
            )),
            "{screen}"
        );
        assert_eq!(moto.in_account(id, ROLE).devices_of("pat").len(), 1, "{id}");
    }
    assert!(
        screen.contains("not applied: nothing was changed"),
        "{screen}"
    );
}

/// `--max-failures N`: after N failed targets no new one starts; the ones
/// not run are reported and left untouched.
#[test]
fn max_failures_stops_starting_new_targets() {
    let moto = Moto::start();
    moto.user_with_virtual("later", "later");
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.csv");
    std::fs::write(&targets, "user\nghost1\nghost2\nlater\n").unwrap();
    let out = run(&[
        "run",
        "mfa-recovery",
        "--targets",
        targets.to_str().unwrap(),
        "--endpoint-url",
        &moto.url,
        "--yes",
        "--concurrency",
        "1",
        "--max-failures",
        "2",
        "--journal-dir",
        dir.path().join("journals").to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(9), "{stdout}\n{stderr}");
    let later = stdout
        .lines()
        .find(|l| l.starts_with("#2 "))
        .unwrap_or_default();
    assert!(
        later.contains("not run: --max-failures 2 reached"),
        "{stdout}"
    );
    assert_eq!(
        moto.devices_of("later").len(),
        1,
        "the target not run changed nothing"
    );
    assert!(
        stdout.contains("0 of 3 target(s) succeeded, 3 did not"),
        "{stdout}"
    );
    verify(&dir.path().join("journals/fleet.jsonl"));
}

#[test]
fn a_credential_helper_runs_once_for_the_whole_fleet() {
    // A credential_process (an SSO login, a hardware token) asks once per
    // fleet, not once per target: the base's credentials are resolved once,
    // and each target assumes its role with them.
    let moto = Moto::start();
    let ids = moto.organization(1);
    let account = moto.in_account(&ids[0], ROLE);
    let mut rows = vec!["user,account,role".to_owned()];
    for u in 0..3 {
        let user = format!("member{u}");
        account.user_with_virtual(&user, &user);
        rows.push(format!("{user},{},{ROLE}", ids[0]));
    }
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.csv");
    std::fs::write(&targets, rows.join("\n") + "\n").unwrap();
    let (config, count) = crate::support::counting_credential_helper(dir.path());
    let out = crate::support::runbook()
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", &config)
        .env("RUNBOOK_STATE_DIR", dir.path())
        .args(["run", "mfa-recovery", "--targets"])
        .arg(&targets)
        .args(["--profile", "helper", "--endpoint-url", &moto.url, "--yes"])
        .args(["--concurrency", "2", "--journal-dir"])
        .arg(dir.path().join("journals"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for u in 0..3 {
        assert!(account.devices_of(&format!("member{u}")).is_empty());
    }
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "x\n");
    verify(&dir.path().join("journals/fleet.jsonl"));
}
