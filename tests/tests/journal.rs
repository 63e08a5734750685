//! Damaged and hostile journals: `verify`, `replay` and `show` each name the
//! file and line and exit 7, without panicking.

use std::path::{Path, PathBuf};

use runbook_host::journal::{GENESIS, line_hash};
use serde_json::Value;

use crate::support::{assert_no_terminal_controls, root, run, run_within, text};

fn seed() -> String {
    std::fs::read_to_string(root().join("tests/fixtures/seed-case/journal.jsonl")).unwrap()
}

/// Write `content` to a temporary journal file.
fn journal(dir: &tempfile::TempDir, content: &str) -> PathBuf {
    let p = dir.path().join("journal.jsonl");
    std::fs::write(&p, content).unwrap();
    p
}

/// Lines of JSON chained afresh: each `prev` is the hash of the line before.
pub(crate) fn chain(lines: impl IntoIterator<Item = Value>) -> String {
    let mut prev = GENESIS.to_owned();
    let mut out = String::new();
    for mut v in lines {
        v["prev"] = Value::String(prev.clone());
        let text = serde_json::to_string(&v).unwrap();
        prev = line_hash(&text);
        out.push_str(&text);
        out.push('\n');
    }
    out
}

/// The seed journal's lines as JSON.
fn seed_lines() -> Vec<Value> {
    seed()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The seed journal with line `n` (1-based) edited by `edit`, and the chain
/// recomputed so that only the edit itself is wrong.
fn rechained(n: usize, edit: impl Fn(&mut Value)) -> String {
    let mut lines = seed_lines();
    edit(&mut lines[n - 1]);
    chain(lines)
}

/// `runbook verify` and `runbook replay` of `path` both exit 7 with `needle`.
fn both_reject(path: &Path, needle: &str) {
    for cmd in ["verify", "replay", "show"] {
        let out = run(&[cmd, path.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(7), "{cmd}: {stdout}{stderr}");
        assert!(stderr.contains(needle), "{cmd}: {stderr}");
        assert!(!stderr.contains("panicked"), "{cmd}: {stderr}");
    }
}

#[test]
fn an_intact_journal_verifies() {
    let out = run(&["verify", "tests/fixtures/seed-case/journal.jsonl"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert!(stdout.contains("15 line(s), 5 call(s)"), "{stdout}");
}

#[test]
fn one_edited_byte_is_detected_and_the_line_named() {
    let dir = tempfile::tempdir().unwrap();
    // Line 5 is the deactivate call: change one letter of its user name.
    let edited: Vec<String> = seed()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 4 {
                l.replacen("mfa-test", "mfa-tesu", 1)
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert_ne!(edited.join("\n"), seed().trim_end());
    let p = journal(&dir, &(edited.join("\n") + "\n"));
    both_reject(&p, "journal.jsonl:6: hash chain broken");
    let out = run(&["verify", p.to_str().unwrap()]);
    assert!(text(&out).1.contains("line 5 or 6 was edited"));
}

#[test]
fn a_removed_line_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed();
    let mut kept: Vec<&str> = seed.lines().collect();
    kept.remove(3);
    let p = journal(&dir, &(kept.join("\n") + "\n"));
    both_reject(&p, "journal.jsonl:4: hash chain broken");
}

#[test]
fn reordered_lines_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = seed().lines().map(str::to_owned).collect();
    lines.swap(5, 6);
    let p = journal(&dir, &(lines.join("\n") + "\n"));
    both_reject(&p, "journal.jsonl:6: hash chain broken");
}

#[test]
fn a_journal_cut_off_by_a_crash_has_no_footer_and_is_named_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed();
    let lines: Vec<&str> = seed.lines().take(9).collect();
    let p = journal(&dir, &(lines.join("\n") + "\n"));
    for cmd in ["verify", "replay"] {
        let out = run(&[cmd, p.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(7), "{cmd}: {stdout}{stderr}");
        assert!(
            stderr.contains("journal.jsonl:9: the journal ends without a footer"),
            "{cmd}: {stderr}"
        );
    }
    // show shows what a crashed run recorded, under a banner, and exits 7.
    let out = run(&["show", p.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}{stderr}");
    assert!(
        stderr.contains("ends without a footer after line 9"),
        "{stderr}"
    );
    assert!(stdout.contains("#2  list-mfa-devices"), "{stdout}");
}

#[test]
fn a_file_that_is_not_a_journal_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let p = journal(&dir, "Dear operator,\nthis is not a journal.\n");
    both_reject(&p, "journal.jsonl:1: not a journal record: invalid JSON");
    let p = journal(&dir, "{\"hello\":\"world\"}\n");
    both_reject(
        &p,
        "journal.jsonl:1: not a journal record: the first line is not a journal header",
    );
}

#[test]
fn an_empty_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let p = journal(&dir, "");
    both_reject(&p, "the journal is empty");
}

#[test]
fn invalid_json_on_one_line_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = seed().lines().map(str::to_owned).collect();
    lines[2] = "{\"kind\": \"result\", oops".to_owned();
    let p = journal(&dir, &(lines.join("\n") + "\n"));
    both_reject(&p, "journal.jsonl:3: not a journal record: invalid JSON");
}

#[test]
fn a_journal_from_a_newer_format_says_to_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let p = journal(&dir, &rechained(1, |v| v["format"] = 99.into()));
    both_reject(
        &p,
        "journal format 99 is newer than this host reads (1); upgrade runbook",
    );
}

#[test]
fn a_recorded_answer_that_does_not_fit_its_call_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = journal(&dir, &rechained(3, |v| v["value"] = "not a list".into()));
    // The chain is intact, so verify passes; replay finds the bad answer.
    assert_eq!(run(&["verify", p.to_str().unwrap()]).status.code(), Some(0));
    let out = run(&["replay", p.to_str().unwrap(), "--runbook", "mfa-recovery"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}{stderr}");
    assert!(
        stderr.contains("journal.jsonl:3: the recorded answer to call 0 (list-mfa-devices) does not fit its type"),
        "{stderr}"
    );
}

#[test]
fn a_header_naming_a_missing_runbook_says_to_pass_runbook() {
    let dir = tempfile::tempdir().unwrap();
    let p = journal(
        &dir,
        &rechained(1, |v| v["runbook"] = "no-such-runbook".into()),
    );
    let out = run(&["replay", p.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("journal.jsonl:1: the runbook 'no-such-runbook' the journal names cannot be loaded; pass --runbook NAME|PATH"),
        "{stderr}"
    );
}

#[test]
fn a_changed_component_is_reported_and_replays_only_with_runbook() {
    let dir = tempfile::tempdir().unwrap();
    let p = journal(
        &dir,
        &rechained(1, |v| v["wasm_sha256"] = "0".repeat(64).into()),
    );
    let out = run(&["replay", p.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("is not the component recorded"), "{stderr}");
    assert!(
        stderr.contains("replay it anyway with --runbook mfa-recovery"),
        "{stderr}"
    );
    let out = run(&["replay", p.to_str().unwrap(), "--runbook", "mfa-recovery"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

#[test]
fn show_prints_one_line_per_call_and_json_for_machines() {
    let out = run(&[
        "show",
        "tests/fixtures/seed-case/journal.jsonl",
        "--output",
        "json",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let ops: Vec<&str> = doc["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["op"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "list-mfa-devices",
            "deactivate-mfa-device",
            "list-mfa-devices",
            "list-virtual-mfa-devices",
            "delete-virtual-mfa-device"
        ]
    );
    assert_eq!(doc["outcome"]["status"], "succeeded");
}

#[test]
fn a_call_without_an_outcome_is_named_even_with_a_footer() {
    let dir = tempfile::tempdir().unwrap();
    // Drop lines 13-14 (the result of the last call, a log) and re-chain: a
    // call whose fate is unknown, then a footer.
    let mut lines = seed_lines();
    lines.drain(12..14);
    let text = chain(lines);
    let p = journal(&dir, &text);
    both_reject(
        &p,
        "journal.jsonl:13: call 4 has no recorded outcome: it may or may not have reached AWS",
    );
}

#[test]
fn a_planned_answer_to_a_read_is_a_bad_recording() {
    let dir = tempfile::tempdir().unwrap();
    let p = journal(
        &dir,
        &rechained(3, |v| {
            v["status"] = "planned".into();
            v.as_object_mut().unwrap().remove("value");
        }),
    );
    let out = run(&["replay", p.to_str().unwrap(), "--runbook", "mfa-recovery"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout}{stderr}");
    assert!(
        stderr.contains("the recorded answer to call 0 (list-mfa-devices) is a planned or refused change, but the call is a read"),
        "{stderr}"
    );
}

#[test]
fn fields_a_recording_adds_are_not_copied_into_a_new_journal() {
    let dir = tempfile::tempdir().unwrap();
    // A recording that smuggles a seed into the device list.
    let p = journal(
        &dir,
        &rechained(11, |v| {
            v["value"][0]["base32_string_seed"] = "SEEDSEEDSEEDSEED".into();
        }),
    );
    let new = dir.path().join("new.jsonl");
    let out = run(&[
        "run",
        "mfa-recovery",
        "--user",
        "mfa-test",
        "--replay",
        p.to_str().unwrap(),
        "--journal",
        new.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(
        std::fs::read_to_string(p)
            .unwrap()
            .contains("SEEDSEEDSEEDSEED")
    );
    assert!(
        !std::fs::read_to_string(new)
            .unwrap()
            .contains("SEEDSEEDSEEDSEED")
    );
}

/// Text that acts on a terminal: clear the screen, go home, return, bell,
/// the C1 CSI, a right-to-left override.
const EVIL: &str = "\u{1b}[2J\u{1b}[H\r\u{7}\u{9b}31m\u{202e}";

/// The seed journal, validly chained, with `EVIL` in every field a runbook
/// or the journal's author chose: the header's runbook, version, sha256,
/// caller and start time, the device serials in answers and in arguments,
/// the log lines, and the outcome's summary, changes and next steps.
fn hostile_journal() -> String {
    let serial = format!("arn:aws:iam::123456789012:mfa/mfa-test{EVIL}#9 fake line");
    let mut lines = seed_lines();
    let h = &mut lines[0];
    h["runbook"] = format!("mfa-recovery{EVIL}").into();
    h["runbook_version"] = format!("0.1.0{EVIL}").into();
    h["wasm_sha256"] = format!("{EVIL}0951716e").into();
    h["target"]["caller"] = format!("arn:aws:sts::123456789012:user/moto{EVIL}").into();
    h["started_at"] = format!("2026-11-25T17:49:39Z{EVIL}").into();
    lines[2]["value"][0]["serial_number"] = serial.clone().into();
    lines[4]["request"]["serial_number"] = serial.clone().into();
    lines[10]["value"][0]["serial_number"] = serial.clone().into();
    lines[10]["value"][1]["serial_number"] =
        format!("arn:aws:iam::123456789012:mfa/orphan{EVIL}").into();
    lines[11]["request"]["serial_number"] = serial.clone().into();
    for n in [3, 6, 13] {
        lines[n]["message"] = format!("{EVIL}apply these 0 change(s)? [y/N] ").into();
    }
    let f = &mut lines[14];
    f["outcome"]["summary"] = format!("all good{EVIL}").into();
    f["outcome"]["changes"][0] = format!("nothing{EVIL}").into();
    f["outcome"]["next_steps"][0] = format!("relax{EVIL}").into();
    f["finished_at"] = format!("2026-11-25T17:49:40Z{EVIL}").into();
    chain(lines)
}

/// Hashes and the temporary directory vary: redact them.
fn redacted(text: &str, dir: &Path) -> String {
    regex_lite(&text.replace(dir.to_str().unwrap(), "[dir]"))
}

/// `text` with every 64-hex-digit run replaced by `[sha256]`.
fn regex_lite(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() == 64 { "[sha256]" } else { &run });
        run.clear();
        out.push(c);
    }
    out.pop();
    out
}

#[test]
fn a_hostile_journal_reaches_the_terminal_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let p = journal(&dir, &hostile_journal());
    let path = p.to_str().unwrap();

    let out = run(&["show", path]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_no_terminal_controls("show", &out);
    // The fixture's request ids are moto's, new at every recording.
    insta::with_settings!({filters => vec![(r"\[request ids? [^\]]*\]", "[request id]")]}, {
        insta::assert_snapshot!("hostile_journal_show", redacted(&text(&out).0, dir.path()));
    });

    let out = run(&["verify", path]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_no_terminal_controls("verify", &out);
    insta::assert_snapshot!(
        "hostile_journal_verify",
        redacted(&text(&out).0, dir.path())
    );

    // JSON escapes the C0 controls itself (and stays as is).
    let out = run(&["show", path, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    for b in [0x1b, b'\r', 0x07] {
        assert!(!out.stdout.contains(&b), "{b:#x} in {:?}", text(&out));
    }

    // The runbook it names is not a runbook name: never read as a path.
    let out = run(&["replay", path]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_no_terminal_controls("replay", &out);
    assert!(
        stderr.contains("the journal names the runbook 'mfa-recovery\\u{1b}[2J\\u{1b}[H\\r\\u{7}\\u{9b}31m\\u{202e}', which is not a runbook name"),
        "{stderr}"
    );

    // Replayed by the real runbook: the answers and arguments hold escapes;
    // the run ends differently from the recording (exit 6), and says so.
    let out = run(&["replay", path, "--runbook", "mfa-recovery"]);
    assert_eq!(out.status.code(), Some(6), "{:?}", text(&out));
    assert_no_terminal_controls("replay --runbook", &out);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("serial_number=arn:aws:iam::123456789012:mfa/mfa-test\\u{1b}[2J"),
        "{stdout}"
    );

    let new = dir.path().join("new.jsonl");
    let out = run(&[
        "run",
        "mfa-recovery",
        "--user",
        "mfa-test",
        "--replay",
        path,
        "--journal",
        new.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(6), "{:?}", text(&out));
    assert_no_terminal_controls("run --replay", &out);
}

#[test]
fn a_journal_naming_a_path_as_its_runbook_is_never_read_from_that_path() {
    // A journal is untrusted: a header naming /dev/zero made replay read it.
    let dir = tempfile::tempdir().unwrap();
    for named in [
        "/dev/zero",
        "../../dev/zero",
        "tests/fixtures/seed-case/journal.jsonl",
        "mfa-recovery.wasm",
    ] {
        let p = journal(&dir, &rechained(1, |v| v["runbook"] = named.into()));
        let out = run_within(
            &["replay", p.to_str().unwrap()],
            std::time::Duration::from_secs(30),
        );
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(3), "{named}: {stderr}");
        assert!(
            stderr.contains(&format!("journal.jsonl:1: the journal names the runbook '{named}', which is not a runbook name")),
            "{named}: {stderr}"
        );
        assert!(stderr.contains("pass --runbook NAME|PATH"), "{stderr}");
    }
    // The operator may still choose the component.
    let p = journal(&dir, &rechained(1, |v| v["runbook"] = "/dev/zero".into()));
    let out = run(&["replay", p.to_str().unwrap(), "--runbook", "mfa-recovery"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

/// A fresh live run of mfa-recovery against moto (its footer lists the
/// changes applied): the journal's lines.
fn live_recovery_lines(dir: &tempfile::TempDir) -> Vec<String> {
    let moto = crate::support::moto::Moto::start();
    crate::support::scenarios::seed_world(&moto);
    let path = dir.path().join("live.jsonl");
    let out = crate::support::run_against(&moto, "mfa-recovery", "mfa-test", &path, &["--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).0);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `lines` with the footer (the last line) edited by `edit`: the chain
/// still holds, since no line comes after the footer to pin it.
fn with_footer_edited(mut lines: Vec<String>, edit: impl FnOnce(&mut Value)) -> String {
    let last = lines.last_mut().unwrap();
    let mut footer: Value = serde_json::from_str(last).unwrap();
    assert_eq!(footer["kind"], "footer");
    edit(&mut footer);
    *last = footer.to_string();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn a_footer_that_hides_a_change_fails_verify_naming_the_line_and_both_lists() {
    let dir = tempfile::tempdir().unwrap();
    let lines = live_recovery_lines(&dir);
    let n = lines.len();
    let footer: Value = serde_json::from_str(&lines[n - 1]).unwrap();
    assert_eq!(footer["applied"], serde_json::json!([1, 4]));
    // The untouched journal verifies.
    let p = journal(&dir, &with_footer_edited(lines.clone(), |_| {}));
    let out = run(&["verify", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);

    // Hide the deletion of the virtual device: from the runbook's words and
    // from the host's list of changes.
    let p = journal(
        &dir,
        &with_footer_edited(lines.clone(), |f| {
            f["outcome"]["changes"].as_array_mut().unwrap().pop();
            f["applied"] = serde_json::json!([1]);
        }),
    );
    both_reject(
        &p,
        &format!(
            "journal.jsonl:{n}: the footer lists the changes of calls [1] but the journal's calls applied [1, 4]: the footer was edited"
        ),
    );

    // Drop the host's list altogether: this header's host always writes it.
    let p = journal(
        &dir,
        &with_footer_edited(lines, |f| {
            f.as_object_mut().unwrap().remove("applied");
        }),
    );
    both_reject(
        &p,
        &format!(
            "journal.jsonl:{n}: the footer does not list the changes applied (the journal's calls applied [1, 4])"
        ),
    );
}

/// A footer edit the structure cannot tell (the runbook's own words) passes
/// a plain `verify`, and fails `verify --last-hash` with the hash the run
/// printed and the operator kept.
#[test]
fn a_footer_only_edit_fails_verify_against_the_kept_last_hash() {
    let dir = tempfile::tempdir().unwrap();
    let lines = live_recovery_lines(&dir);
    let kept = runbook_host::journal::Journal::read(&journal(
        &dir,
        &with_footer_edited(lines.clone(), |_| {}),
    ))
    .unwrap()
    .last_hash;
    let p = journal(
        &dir,
        &with_footer_edited(lines, |f| {
            f["outcome"]["summary"] = "nothing to do".into();
        }),
    );
    let plain = run(&["verify", p.to_str().unwrap()]);
    assert_eq!(plain.status.code(), Some(0), "{:?}", text(&plain));
    let pinned = run(&["verify", p.to_str().unwrap(), "--last-hash", &kept]);
    let (_, stderr) = text(&pinned);
    assert_eq!(pinned.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains(&format!("not the pinned {kept}")),
        "{stderr}"
    );
}

/// The runbook's own words in the footer (its summary and list of changes)
/// are not the host's to check, so `verify` cannot tell them edited; a replay
/// can: the runbook, run again on the recorded answers, ends as it really did.
#[test]
fn a_footer_whose_runbook_words_were_edited_fails_replay() {
    let dir = tempfile::tempdir().unwrap();
    let lines = live_recovery_lines(&dir);
    let p = journal(
        &dir,
        &with_footer_edited(lines, |f| {
            f["outcome"]["changes"].as_array_mut().unwrap().pop();
        }),
    );
    let out = run(&["replay", p.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(6), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("every call matched, but the run ended differently"),
        "{stdout}"
    );
}

#[test]
fn a_footer_with_another_call_count_fails_verify_naming_the_line_and_both_counts() {
    let dir = tempfile::tempdir().unwrap();
    let lines = live_recovery_lines(&dir);
    let n = lines.len();
    let p = journal(
        &dir,
        &with_footer_edited(lines, |f| {
            f["calls"] = 4.into();
        }),
    );
    both_reject(
        &p,
        &format!("journal.jsonl:{n}: the footer counts 4 calls but the journal holds 5"),
    );
}

#[test]
fn show_cloudtrail_puts_only_what_an_aws_request_id_can_be_into_a_command() {
    let dir = tempfile::tempdir().unwrap();
    // Line 6 is the deactivation's result: give it a hostile "request id"
    // beside a real-looking one.
    // The seed journal as written before calls carried their time and
    // request ids, at a known time.
    let mut lines = seed_lines();
    for v in &mut lines {
        if let Some(o) = v.as_object_mut() {
            o.remove("sent_at");
            o.remove("request_ids");
        }
    }
    lines[0]["started_at"] = "2026-11-26T00:01:37.123Z".into();
    let last = lines.len() - 1;
    lines[last]["finished_at"] = "2026-11-26T00:01:37.456Z".into();
    lines[5]["request_ids"] = serde_json::json!([
        "'; rm -rf ~; echo '\u{1b}[2J",
        "c1b2a3d4-0000-4000-8000-000000000001"
    ]);
    let p = journal(&dir, &chain(lines));
    let out = run(&["show", p.to_str().unwrap(), "--cloudtrail"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_no_terminal_controls("show --cloudtrail", &out);
    assert!(!stdout.contains("rm -rf"), "{stdout}");
    assert!(
        stdout.contains("1 recorded request id(s) are not AWS request ids"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "--query \"Events[?contains(CloudTrailEvent, 'c1b2a3d4-0000-4000-8000-000000000001')]\""
        ),
        "{stdout}"
    );
    // A journal from before calls carried their time: the run's window.
    assert!(
        stdout.contains("--start-time 2026-11-25T23:56:37Z --end-time 2026-11-26T00:16:37Z"),
        "{stdout}"
    );
    // The deletion has no request id: looked up by event and time only.
    assert!(
        stdout.contains("without a request id, tell the event by its requestParameters"),
        "{stdout}"
    );
}

#[test]
fn a_header_whose_wasi_clock_is_not_a_time_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // Validly chained: only the recorded world is wrong (the nanoseconds of
    // a second, and a start past the year 9999, would overflow the clock).
    for world in [
        serde_json::json!({"random_seed": "0000000000005eed", "clock_start": {"seconds": 1, "nanoseconds": 4_000_000_000u64}}),
        serde_json::json!({"random_seed": "0000000000005eed", "clock_start": {"seconds": u64::MAX, "nanoseconds": 0}}),
    ] {
        let path = journal(&dir, &rechained(1, |h| h["wasi"] = world.clone()));
        both_reject(&path, "is not a time");
    }
    // A seed that is not 16 hex digits is not read at all.
    let path = journal(
        &dir,
        &rechained(
            1,
            |h| h["wasi"] = serde_json::json!({"random_seed": 24301, "clock_start": {"seconds": 1, "nanoseconds": 0}}),
        ),
    );
    for cmd in ["verify", "replay"] {
        let out = run(&[cmd, path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(7), "{cmd}: {:?}", text(&out));
    }
}

#[test]
fn the_caller_is_read_from_the_header_or_one_identity_record_and_never_two() {
    let dir = tempfile::tempdir().unwrap();
    let identity =
        serde_json::json!({"kind": "identity", "caller": "arn:aws:sts::123456789012:user/ops"});
    // STS answered while the run read: the caller is in its own record.
    let mut lines = seed_lines();
    lines[0]["target"].as_object_mut().unwrap().remove("caller");
    lines.insert(3, identity.clone());
    let text = chain(lines.clone());
    let j = runbook_host::journal::Journal::parse("j", &text).unwrap();
    assert_eq!(j.caller(), Some("arn:aws:sts::123456789012:user/ops"));
    // Two, or one beside the header's: refused, naming the line.
    lines.insert(5, identity.clone());
    both_reject(
        &journal(&dir, &chain(lines)),
        "a second record of the caller",
    );
    let mut lines = seed_lines();
    lines.insert(3, identity);
    both_reject(
        &journal(&dir, &chain(lines)),
        "a second record of the caller",
    );
}
