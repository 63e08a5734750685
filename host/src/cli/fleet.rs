//! Fleet runs: one runbook across many targets (users, AWS accounts), on one
//! machine. IAM's API rate, not CPU, is the limit: targets run `--concurrency`
//! at a time, each in its own component instance with its own journal, and
//! every IAM request of an account waits for that account's `--max-rate`.
//!
//! Consent is given once for the whole fleet: every target is planned (a dry
//! run), the plan of all their changes is shown, one question is asked, and
//! each target's run may then make exactly its approved changes, as a single
//! run does. One target failing does not stop the others; `--max-failures`
//! stops starting new ones.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use runbook_host::backend::{
    AssumeRole, Backend, DryRun, Live, LiveOptions, RateLimiter, Service, SharedCredentials,
    endpoint,
};
use runbook_host::exit;
use runbook_host::fleet::{self as record, FleetHeader, FleetWriter, TargetDone};
use runbook_host::grant::{Grant, OperatorPolicy};
use runbook_host::journal::{JournalWriter, Mode, Resumes, RunOutcome};
use runbook_host::manifest::Manifest;
use runbook_host::replay::Replayer;
use runbook_host::report::{RunReport, TargetId, TargetReport};
use runbook_host::request::Request;
use runbook_host::sandbox::{self, Consent, Limits, Loaded, RunSpec, Runtime};
use runbook_host::signing::Signer;
use runbook_host::transcript::{self, printable, printable_path};

use super::run::RunArgs;

/// The flags of a fleet run.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Run once per target listed in FILE: CSV with a header row, or TOML
    /// (`[[target]]` tables) if it ends in .toml. Columns: the runbook's
    /// parameters by name, and optionally `account` (12 digits; empty: the
    /// caller's own) and `role` (a role name or ARN to assume there).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["replay", "accounts"])]
    pub(super) targets: Option<PathBuf>,

    /// Run once per AWS account, with the same parameters: a comma-separated
    /// list of 12-digit ids, or `org` for every active account of the
    /// caller's AWS Organization (organizations:ListAccounts). Needs
    /// --role-name.
    #[arg(
        long,
        value_name = "ID,ID,...|org",
        conflicts_with = "replay",
        requires = "role_name"
    )]
    pub(super) accounts: Option<String>,

    /// The role to assume in each account of --accounts (and in targets
    /// whose `role` is empty), as `arn:aws:iam::ACCOUNT:role/NAME`. The STS
    /// session is named `runbook-<runbook>-<caller>`, as CloudTrail shows it.
    #[arg(long, value_name = "NAME")]
    pub(super) role_name: Option<String>,

    /// The external id the roles' trust policies ask for.
    #[arg(long, value_name = "ID")]
    pub(super) external_id: Option<String>,

    /// Targets run at once, each in its own component instance.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(super) concurrency: u32,

    /// IAM requests per second per account, shared by the targets running in
    /// it (every page and every retry counts). IAM throttles above a few
    /// tens; a throttled call is retried with backoff and journaled.
    #[arg(long, value_name = "R", default_value_t = 10)]
    pub(super) max_rate: u32,

    /// Stop starting new targets after this many failed.
    #[arg(long, value_name = "N")]
    pub(super) max_failures: Option<u32>,

    /// Where a fleet run writes each target's journal and fleet.jsonl
    /// (default: a new directory in the journal directory).
    #[arg(long, value_name = "DIR")]
    pub(super) journal_dir: Option<PathBuf>,
}

impl FleetArgs {
    /// Whether these flags ask for a fleet run.
    pub fn is_fleet(&self) -> bool {
        self.targets.is_some() || self.accounts.is_some()
    }
}

/// One run of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its place in the fleet, from 0.
    pub index: usize,
    /// The AWS account (`None`: the caller's own).
    pub account: Option<String>,
    /// The role assumed to reach it (a name or an ARN).
    pub role: Option<String>,
    /// The runbook's parameters.
    pub params: BTreeMap<String, String>,
}

impl Target {
    /// How the operator tells this target apart: account and parameters.
    pub fn label(&self) -> String {
        let params = self
            .params
            .iter()
            .map(|(k, v)| format!("--{} {}", printable(k), printable(v)))
            .collect::<Vec<_>>()
            .join(" ");
        format!(
            "#{} {} {}",
            self.index,
            self.account.as_deref().unwrap_or("(own account)"),
            params
        )
    }

    /// The file name of this target's journal in the fleet's directory.
    pub fn journal_name(&self) -> String {
        let mut name = format!(
            "{:03}-{}",
            self.index,
            self.account.as_deref().unwrap_or("self")
        );
        for v in self.params.values() {
            name.push('-');
            // Parameter values are IAM names: keep what is safe in a file
            // name, never a separator.
            name.extend(
                v.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    })
                    .take(64),
            );
        }
        name + ".jsonl"
    }

    /// The role ARN to assume, if any.
    fn role_arn(&self) -> Option<String> {
        let role = self.role.as_ref()?;
        if role.starts_with("arn:") {
            return Some(role.clone());
        }
        let account = self.account.as_deref().unwrap_or_default();
        Some(format!("arn:aws:iam::{account}:role/{role}"))
    }
}

/// The targets of `--targets FILE`: one per row, parameters by column, the
/// command line's parameters as defaults.
pub fn read_targets(
    path: &Path,
    manifest: &Manifest,
    defaults: &BTreeMap<String, String>,
    role_name: Option<&str>,
) -> Result<Vec<Target>, String> {
    let shown = printable_path(path);
    let text = std::fs::read_to_string(path).map_err(|e| format!("--targets {shown}: {e}"))?;
    let rows: Vec<(usize, BTreeMap<String, String>)> =
        if path.extension().is_some_and(|e| e == "toml") {
            #[derive(serde::Deserialize)]
            struct File {
                target: Vec<BTreeMap<String, toml::Value>>,
            }
            let file: File = toml::from_str(&text).map_err(|e| {
                format!(
                    "{shown}: {}; write one [[target]] table per target",
                    printable(e.message())
                )
            })?;
            file.target
                .into_iter()
                .enumerate()
                .map(|(i, row)| {
                    let row = row
                        .into_iter()
                        .map(|(k, v)| match v {
                            toml::Value::String(s) => Ok((k, s)),
                            toml::Value::Integer(n) => Ok((k, n.to_string())),
                            other => Err(format!(
                                "{shown}: target {}: `{}` is a {}, not a string",
                                i + 1,
                                printable(&k),
                                other.type_str()
                            )),
                        })
                        .collect::<Result<BTreeMap<_, _>, _>>()?;
                    Ok((i + 1, row))
                })
                .collect::<Result<_, String>>()?
        } else {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(text.as_bytes());
            let headers = reader
                .headers()
                .map_err(|e| format!("{shown}:1: {e}"))?
                .clone();
            let mut rows = vec![];
            for record in reader.records() {
                let record = record.map_err(|e| format!("{shown}: {e}"))?;
                let line = record.position().map_or(0, |p| p.line() as usize);
                let row = headers
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.to_owned(), v.to_owned()))
                    .collect();
                rows.push((line, row));
            }
            rows
        };
    if rows.is_empty() {
        return Err(format!("--targets {shown}: no targets in it"));
    }
    let known: Vec<&str> = manifest.params.iter().map(|p| p.name.as_str()).collect();
    let mut targets = vec![];
    for (line, mut row) in rows {
        let at = format!("{shown}:{line}");
        let account = row.remove("account").filter(|a| !a.is_empty());
        let role = row
            .remove("role")
            .filter(|r| !r.is_empty())
            .or_else(|| account.as_ref().and(role_name.map(str::to_owned)));
        if let Some(a) = &account {
            check_account(a).map_err(|e| format!("{at}: {e}"))?;
        }
        if account.is_some() && role.is_none() {
            return Err(format!(
                "{at}: account {} needs a role to assume: fill the `role` column or pass --role-name",
                printable(account.as_deref().unwrap_or_default())
            ));
        }
        let mut params = defaults.clone();
        for (k, v) in row {
            if !known.contains(&k.as_str()) {
                return Err(format!(
                    "{at}: `{}` is not a parameter of {} (its parameters: {}; and `account`, `role`)",
                    printable(&k),
                    manifest.name,
                    known.join(", ")
                ));
            }
            if !v.is_empty() {
                params.insert(k, v);
            }
        }
        manifest
            .check_params(&params)
            .map_err(|e| format!("{at}: {e}"))?;
        targets.push(Target {
            index: targets.len(),
            account,
            role,
            params,
        });
    }
    Ok(targets)
}

/// An AWS account id: twelve digits.
fn check_account(account: &str) -> Result<(), String> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not an AWS account id (12 digits)",
            printable(account)
        ))
    }
}

/// The targets of `--accounts`: the same parameters in each account.
fn account_targets(
    accounts: &str,
    role_name: &str,
    params: &BTreeMap<String, String>,
    base: &Live,
) -> Result<Vec<Target>, String> {
    let ids: Vec<String> = if accounts == "org" {
        base.organization_accounts()
            .map_err(|e| format!("--accounts org: {e}"))?
    } else {
        accounts.split(',').map(|a| a.trim().to_owned()).collect()
    };
    if ids.is_empty() {
        return Err("--accounts: no accounts to run in".to_owned());
    }
    let mut targets = vec![];
    for id in ids {
        check_account(&id).map_err(|e| format!("--accounts: {e}"))?;
        if targets
            .iter()
            .any(|t: &Target| t.account.as_deref() == Some(id.as_str()))
        {
            return Err(format!("--accounts: {id} is listed twice"));
        }
        targets.push(Target {
            index: targets.len(),
            account: Some(id),
            role: Some(role_name.to_owned()),
            params: params.clone(),
        });
    }
    Ok(targets)
}

/// The STS session name for a fleet run: `runbook-<runbook>-<caller>`, in
/// the characters STS allows, at most 64.
pub fn session_name(runbook: &str, caller_arn: &str) -> String {
    let caller = caller_arn.rsplit(['/', ':']).next().unwrap_or("unknown");
    let name: String = format!("runbook-{runbook}-{caller}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    name
}

/// How one target ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The target.
    pub target: Target,
    /// Its exit code, as a single run's.
    pub exit_code: u8,
    /// One line: how it ended.
    pub outcome: String,
    /// The changes it made (planned, in a dry run).
    pub changes: usize,
    /// Its journal and the sha256 of its last line (none if it never
    /// started: its role could not be assumed).
    pub journal: Option<(PathBuf, String)>,
    /// What `--output json` prints of it.
    pub report: TargetReport,
}

impl Target {
    fn id(&self) -> TargetId {
        TargetId {
            account: self.account.clone(),
            role: self.role_arn(),
            parameters: self.params.clone(),
        }
    }
}

/// What every target shares.
struct Fleet<'a> {
    rt: &'a Runtime,
    loaded: &'a Loaded,
    args: &'a RunArgs,
    limits: Limits,
    policy: OperatorPolicy,
    signed_by: Option<Signer>,
    caller: String,
    /// The base's credentials, resolved once for every target.
    credentials: Option<SharedCredentials>,
    session: String,
    rates: Mutex<BTreeMap<String, Arc<RateLimiter>>>,
    /// The fleet journal, shared by the workers.
    record: Mutex<FleetWriter>,
}

impl Fleet<'_> {
    fn options(&self, t: &Target) -> LiveOptions {
        LiveOptions {
            profile: self.args.profile.clone(),
            region: self.args.region.clone(),
            endpoint_url: self.args.endpoint_url.clone(),
            assume_role: t.role_arn().map(|role_arn| AssumeRole {
                role_arn,
                session_name: self.session.clone(),
                external_id: self.args.fleet.external_id.clone(),
            }),
        }
    }

    /// The rate limiter of `t`'s account.
    fn rate(&self, t: &Target) -> Arc<RateLimiter> {
        let key = t.account.clone().unwrap_or_default();
        let per_second = NonZeroU32::new(self.args.fleet.max_rate).unwrap_or(NonZeroU32::MIN);
        self.rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert_with(|| {
                Arc::new(RateLimiter::direct(governor::Quota::per_second(per_second)))
            })
            .clone()
    }

    /// IAM reached for `t`, as the role it assumes: the backend and whom
    /// the calls are made as, or why not.
    fn connect(&self, t: &Target) -> Result<(Live, String), String> {
        let live = Live::connect_limited(
            &self.options(t),
            Some(self.rate(t)),
            self.credentials.as_ref(),
        )
        .map_err(|e| e.to_string())?;
        let caller = if t.role.is_some() {
            live.caller()
        } else {
            self.caller.clone()
        };
        Ok((live, caller))
    }

    /// Where and as whom `t`'s IAM is reached, for its journal's header.
    fn target_map(&self, t: &Target, caller: String) -> BTreeMap<String, String> {
        let endpoint = endpoint(Service::Iam, self.args.endpoint_url.as_deref());
        let mut target = BTreeMap::new();
        for (k, v) in [
            ("endpoint", endpoint),
            ("region", self.args.region.clone()),
            ("profile", self.args.profile.clone()),
            ("account", t.account.clone()),
            ("role", t.role_arn()),
            ("caller", Some(caller)),
        ] {
            if let Some(v) = v {
                target.insert(k.to_owned(), v);
            }
        }
        target
    }

    fn spec(
        &self,
        t: &Target,
        mode: Mode,
        backend: Box<dyn Backend>,
        consent: Consent,
        caller: String,
        journal: JournalWriter,
    ) -> RunSpec {
        let grant = Grant::bind(&self.loaded.manifest, &t.params).narrow(&self.policy);
        let target = self.target_map(t, caller);
        RunSpec {
            params: t.params.clone(),
            mode,
            target,
            backend,
            consent,
            limits: self.limits.clone(),
            journal,
            echo: false,
            replay: None,
            grant: Some(grant),
            resumes: None,
            signed_by: self.signed_by.clone(),
            world: runbook_host::sandbox::WasiWorld::fresh(),
            caller: None,
        }
    }

    /// The changes `t` would make: a dry run, journaled in memory.
    fn plan(&self, t: &Target) -> Result<Vec<Request>, String> {
        let (live, caller) = self.connect(t)?;
        let spec = self.spec(
            t,
            Mode::DryRun,
            Box::new(DryRun::new(live)),
            Consent::Given,
            caller,
            JournalWriter::in_memory(),
        );
        let report = sandbox::run(self.rt, self.loaded, spec).map_err(|e| format!("{e:#}"))?;
        match report.outcome {
            RunOutcome::Succeeded { .. } => Ok(report.changes),
            other => Err(format!(
                "its plan did not succeed: {}",
                transcript::outcome_line(&other)
            )),
        }
    }

    /// Run `t` to the end with `consent`, journaled in `dir` and recorded
    /// in the fleet journal. `unfinished`: the journal of its run a killed
    /// fleet left part-way, to resume as a single run resumes.
    fn run(
        &self,
        t: &Target,
        mode: Mode,
        consent: Consent,
        dir: &Path,
        unfinished: Option<&Path>,
    ) -> Finished {
        let failed = |exit_code: u8, outcome: String| Finished {
            target: t.clone(),
            exit_code,
            report: TargetReport::unfinished(t.id(), exit_code, outcome.clone(), None),
            outcome,
            changes: 0,
            journal: None,
        };
        // A role that cannot be assumed: the target fails here, with STS's
        // reason, and nothing of it runs (nor is it recorded as started).
        let (live, caller) = match self.connect(t) {
            Ok(x) => x,
            Err(e) => return failed(exit::HOST_ERROR, e),
        };
        // Killed between its journal's last line and the fleet's record of
        // it: the run is whole; record it as it ended, run nothing again.
        if let Some(path) = unfinished
            && let Ok(j) = runbook_host::journal::Journal::read(path)
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            let code = match &j.footer.outcome {
                RunOutcome::Succeeded { .. } => exit::SUCCESS,
                RunOutcome::Failed { .. } => exit::RUNBOOK_FAILED,
                _ => exit::TRAPPED,
            };
            let changes = j
                .calls()
                .filter(|(c, e)| {
                    c.request.is_mutation()
                        && matches!(e.outcome, runbook_host::journal::CallOutcome::Ok { .. })
                })
                .count();
            let outcome = transcript::outcome_line(&j.footer.outcome);
            let mut record = self.lock();
            let recorded = record.target_started(t.index as u32, name).and_then(|()| {
                record.target_done(TargetDone {
                    index: t.index as u32,
                    journal: name.to_owned(),
                    last_hash: j.last_hash.clone(),
                    exit_code: code,
                    outcome: outcome.clone(),
                    changes: changes as u32,
                })
            });
            drop(record);
            if let Err(e) = recorded {
                return failed(
                    exit::HOST_ERROR,
                    format!("cannot write the fleet journal: {e}"),
                );
            }
            return Finished {
                target: t.clone(),
                exit_code: code,
                report: TargetReport::unfinished(t.id(), code, outcome.clone(), Some(path)),
                outcome,
                changes,
                journal: Some((path.to_owned(), j.last_hash)),
            };
        }
        let resume = match unfinished {
            None => None,
            Some(path) => {
                let map = self.target_map(t, caller.clone());
                match super::run::resumable(path, None, self.loaded, &t.params, &map) {
                    Ok(r) => Some(r),
                    Err((code, why)) => {
                        return failed(
                            code,
                            format!("cannot resume {}: {why}", printable_path(path)),
                        );
                    }
                }
            }
        };
        let name = match &resume {
            None => t.journal_name(),
            Some(_) => {
                let base = t.journal_name();
                let stem = base.trim_end_matches(".jsonl").to_owned();
                (1..100)
                    .map(|k| format!("{stem}.resumed-{k}.jsonl"))
                    .find(|n| !dir.join(n).exists())
                    .unwrap_or(base)
            }
        };
        let path = dir.join(&name);
        let journal = match JournalWriter::create(&path) {
            Ok(j) => j,
            Err(e) => {
                return failed(
                    exit::HOST_ERROR,
                    format!("cannot create journal {}: {e}", printable_path(&path)),
                );
            }
        };
        if let Some(r) = &resume
            && let Err(by) = runbook_host::pins::claim_resume(&r.claim, &path)
        {
            return failed(
                exit::USAGE,
                format!("{} was resumed already, by {by}", printable_path(&r.claim)),
            );
        }
        if let Err(e) = self.lock().target_started(t.index as u32, &name) {
            return failed(
                exit::HOST_ERROR,
                format!("cannot write the fleet journal: {e}"),
            );
        }
        let backend: Box<dyn Backend> = match mode {
            Mode::DryRun => Box::new(DryRun::new(live)),
            _ => Box::new(live),
        };
        let mut spec = self.spec(t, mode, backend, consent, caller, journal);
        if let Some(r) = &resume {
            let from = r.from.display().to_string();
            let replayer = Replayer::resuming(&from, &r.journal);
            spec.resumes = Some(Resumes {
                journal: from.clone(),
                last_hash: r.journal.last_hash.clone(),
                calls_reused: replayer.resume_point().unwrap_or_default(),
            });
            spec.replay = Some(Box::new(replayer));
        }
        let finished = match sandbox::run(self.rt, self.loaded, spec) {
            Ok(report) => Finished {
                target: t.clone(),
                exit_code: report.exit_code,
                outcome: transcript::outcome_line(&report.outcome),
                changes: report.changes.len(),
                journal: Some((path, report.journal.last_hash().to_owned())),
                report: TargetReport::from_run(t.id(), &report),
            },
            Err(e) => failed(exit::HOST_ERROR, format!("{e:#}")),
        };
        // The fleet records how the target ended, against the last line of
        // its journal.
        let done = TargetDone {
            index: t.index as u32,
            journal: name,
            last_hash: finished
                .journal
                .as_ref()
                .map(|(_, h)| h.clone())
                .unwrap_or_default(),
            exit_code: finished.exit_code,
            outcome: finished.outcome.clone(),
            changes: finished.changes as u32,
        };
        if let Err(e) = self.lock().target_done(done) {
            return failed(
                exit::HOST_ERROR,
                format!("cannot write the fleet journal: {e}"),
            );
        }
        finished
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FleetWriter> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Run the fleet `args` describe. Returns the exit code.
pub fn main(
    rt: &Runtime,
    loaded: &Loaded,
    args: &RunArgs,
    cli_params: BTreeMap<String, String>,
    signed_by: Option<Signer>,
) -> anyhow::Result<u8> {
    let f = &args.fleet;
    if args.journal.is_some() {
        super::out::error(
            "a fleet run writes one journal per target in --journal-dir (not --journal), and fleet.jsonl beside them",
        );
        return Ok(exit::USAGE);
    }
    let Some(policy) = super::run::operator_policy(args) else {
        return Ok(exit::USAGE);
    };
    let base_options = LiveOptions {
        profile: args.profile.clone(),
        region: args.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        assume_role: None,
    };
    let base = Live::connect(&base_options).context("cannot set up the AWS client")?;
    let caller = base.caller();
    let credentials = base.credentials();
    let targets = match (&f.targets, &f.accounts) {
        (Some(file), _) => {
            read_targets(file, &loaded.manifest, &cli_params, f.role_name.as_deref())
        }
        (None, Some(accounts)) => match loaded.manifest.check_params(&cli_params) {
            Err(e) => Err(e),
            Ok(()) => account_targets(
                accounts,
                f.role_name.as_deref().unwrap_or_default(),
                &cli_params,
                &base,
            ),
        },
        (None, None) => unreachable!("a fleet run has --targets or --accounts"),
    };
    let targets = match targets {
        Ok(t) => t,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::USAGE);
        }
    };
    // A resumed fleet: its own record says what it is and what is left.
    let resumed = match &args.resume {
        None => None,
        Some(path) => match FleetWriter::resume(path) {
            Ok((writer, state)) => Some((path.clone(), writer, state)),
            Err(e) => {
                super::out::error(format_args!("--resume {}: {e}", printable_path(path)));
                return Ok(exit::JOURNAL_INVALID);
            }
        },
    };
    let targets = match &resumed {
        None => targets,
        Some((path, _, state)) => {
            if state.header.wasm_sha256 != loaded.sha256 {
                super::out::error(format_args!(
                    "--resume {}: the fleet ran component sha256 {}, not this one ({}): resume with the build that made it",
                    printable_path(path),
                    state.header.wasm_sha256,
                    loaded.sha256
                ));
                return Ok(exit::USAGE);
            }
            state
                .header
                .targets
                .iter()
                .map(|t| Target {
                    index: t.index as usize,
                    account: t.account.clone(),
                    role: t.role.clone(),
                    params: t.parameters.clone(),
                })
                .collect()
        }
    };
    let dir = match &resumed {
        Some((path, _, _)) => record::Fleet::dir_of(path).to_owned(),
        None => f.journal_dir.clone().unwrap_or_else(|| {
            let stamp = time::OffsetDateTime::now_utc()
                .format(time::macros::format_description!(
                    "[year][month][day]T[hour][minute][second]Z"
                ))
                .unwrap_or_default();
            args.journal_dir.join(format!(
                "{}-fleet-{stamp}-{}",
                loaded.manifest.name,
                std::process::id()
            ))
        }),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create --journal-dir {}", dir.display()))?;
    let (writer, done_before, unfinished) = match resumed {
        Some((_, writer, state)) => (writer, state.done, state.unfinished),
        None => {
            let header = FleetHeader {
                format: 0,
                runbook: loaded.manifest.name.clone(),
                runbook_version: loaded.manifest.version.clone(),
                wasm_sha256: loaded.sha256.clone(),
                host_version: env!("CARGO_PKG_VERSION").to_owned(),
                caller: caller.clone(),
                started_at: time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                concurrency: f.concurrency,
                max_rate: Some(f64::from(f.max_rate)),
                max_failures: f.max_failures,
                targets: targets
                    .iter()
                    .map(|t| record::Target {
                        index: t.index as u32,
                        account: t.account.clone(),
                        role: t.role.clone(),
                        parameters: t.params.clone(),
                    })
                    .collect(),
            };
            let path = dir.join(record::FILE_NAME);
            let writer = FleetWriter::create(&path, header).with_context(|| {
                format!(
                    "cannot create the fleet journal {} (a fleet's --journal-dir is used once; resume a killed fleet with --resume {})",
                    path.display(),
                    path.display()
                )
            })?;
            (writer, BTreeMap::new(), BTreeMap::new())
        }
    };
    if !done_before.is_empty() {
        errln!(
            "resuming: {} target(s) done before are not run again",
            done_before.len()
        );
    }
    let targets: Vec<Target> = targets
        .into_iter()
        .filter(|t| !done_before.contains_key(&(t.index as u32)))
        .collect();
    let fleet = Fleet {
        rt,
        loaded,
        args,
        limits: super::run::limits(args),
        policy,
        signed_by,
        session: session_name(&loaded.manifest.name, &caller),
        caller,
        credentials,
        rates: Mutex::new(BTreeMap::new()),
        record: Mutex::new(writer),
    };
    errln!(
        "runbook {} {} (sha256 {}) across {} target(s), {} at a time, at most {} IAM request(s)/s per account; journals in {}",
        printable(&loaded.manifest.name),
        printable(&loaded.manifest.version),
        &loaded.sha256[..12],
        targets.len(),
        f.concurrency,
        f.max_rate,
        printable_path(&dir)
    );

    // Consent, once for the fleet.
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Live
    };
    let mut consents: Vec<Consent> = vec![];
    if args.dry_run || args.yes {
        consents.resize_with(targets.len(), || Consent::Given);
    } else if std::io::stdin().is_terminal() {
        let plans = each_with(&targets, f.concurrency, |t| fleet.plan(t));
        let mut total = 0;
        errln!("this fleet run will:");
        for (t, plan) in targets.iter().zip(&plans) {
            match plan {
                Ok(changes) if changes.is_empty() => errln!("  {}: nothing", t.label()),
                Ok(changes) => {
                    errln!("  {}:", t.label());
                    for c in changes {
                        errln!("    - {}", printable(&c.describe()));
                    }
                    total += changes.len();
                }
                Err(e) => errln!("  {}: not run ({})", t.label(), printable(e)),
            }
        }
        if total > 0 {
            err!("apply these {total} change(s)? [y/N] ");
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
                errln!("not applied: nothing was changed");
                // The fleet journal ends with every target not run.
                fleet
                    .lock()
                    .finish()
                    .context("cannot finish the fleet journal")?;
                return Ok(exit::CONSENT_REFUSED);
            }
        }
        consents = plans
            .into_iter()
            .map(|p| match p {
                Ok(changes) => Consent::Approved(changes.into_iter().collect()),
                Err(_) => Consent::Refused,
            })
            .collect();
    } else {
        consents.resize_with(targets.len(), || Consent::Refused);
    }

    // The runs.
    let failures = AtomicU32::new(0);
    let progress = Progress::new(targets.len());
    let results = each_with(&targets, f.concurrency, |t| {
        if f.max_failures
            .is_some_and(|max| failures.load(Ordering::SeqCst) >= max)
        {
            let why = format!(
                "not run: --max-failures {} reached",
                f.max_failures.unwrap_or_default()
            );
            let skipped = Finished {
                target: t.clone(),
                exit_code: exit::SOME_TARGETS_FAILED,
                report: TargetReport::unfinished(
                    t.id(),
                    exit::SOME_TARGETS_FAILED,
                    why.clone(),
                    None,
                ),
                outcome: why,
                changes: 0,
                journal: None,
            };
            progress.finished(&skipped, false);
            return skipped;
        }
        progress.started();
        let at = targets
            .iter()
            .position(|x| x.index == t.index)
            .unwrap_or_default();
        let left = unfinished.get(&(t.index as u32)).map(PathBuf::as_path);
        let done = fleet.run(t, mode, consents[at].clone(), &dir, left);
        if done.exit_code != exit::SUCCESS {
            failures.fetch_add(1, Ordering::SeqCst);
        }
        progress.finished(&done, true);
        done
    });
    progress.end();
    let (_, last_hash) = fleet
        .lock()
        .finish()
        .context("cannot finish the fleet journal")?;
    print_table(&results, &dir);
    let failed = results
        .iter()
        .filter(|r| r.exit_code != exit::SUCCESS)
        .count()
        + done_before
            .values()
            .filter(|d| d.exit_code != exit::SUCCESS)
            .count();
    let total = results.len() + done_before.len();
    outln!(
        "fleet journal: {} (last line sha256 {last_hash})",
        printable_path(&dir.join(record::FILE_NAME))
    );
    outln!(
        "{} of {} target(s) succeeded{}",
        total - failed,
        total,
        if failed > 0 {
            format!(", {failed} did not")
        } else {
            String::new()
        }
    );
    let code = if failed == 0 {
        exit::SUCCESS
    } else {
        exit::SOME_TARGETS_FAILED
    };
    if args.output == super::run::Output::Json {
        let report = RunReport {
            runbook: loaded.manifest.name.clone(),
            version: loaded.manifest.version.clone(),
            sha256: loaded.sha256.clone(),
            mode,
            exit_code: code,
            targets: results.into_iter().map(|r| r.report).collect(),
        };
        super::out::machine(&report.to_json());
    }
    Ok(code)
}

/// `work` on every target, `concurrency` at a time, results in target order.
fn each_with<T: Send>(
    targets: &[Target],
    concurrency: u32,
    work: impl Fn(&Target) -> T + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..targets.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..concurrency.min(targets.len() as u32).max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(t) = targets.get(i) else { break };
                    let r = work(t);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every target was worked"))
        .collect()
}

/// What the operator sees while the fleet runs: a bar on a terminal, one
/// line per finished target elsewhere.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: AtomicUsize,
    failed: AtomicUsize,
    running: AtomicUsize,
    started: std::time::Instant,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} targets {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            total,
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            started: std::time::Instant::now(),
        }
    }

    fn started(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
        self.update();
    }

    fn finished(&self, f: &Finished, was_running: bool) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if f.exit_code != exit::SUCCESS {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        if was_running {
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(done as u64);
                self.update();
            }
            None => errln!(
                "[{done}/{}] {} {}: {}",
                self.total,
                if f.exit_code == exit::SUCCESS {
                    "ok  "
                } else {
                    "FAIL"
                },
                f.target.label(),
                printable(&f.outcome)
            ),
        }
    }

    fn update(&self) {
        if let Some(bar) = &self.bar {
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "({} failed, {} running, {:.1} targets/s)",
                self.failed.load(Ordering::SeqCst),
                self.running.load(Ordering::SeqCst),
                self.done.load(Ordering::SeqCst) as f64 / secs
            ));
        }
    }

    fn end(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The closing table: target, account, outcome, changes, journal.
fn print_table(results: &[Finished], dir: &Path) {
    outln!(
        "{:<6} {:<14} {:<9} {:>7}  journal / outcome",
        "target",
        "account",
        "exit",
        "changes"
    );
    for r in results {
        let journal = r.journal.as_ref().map_or_else(
            || printable(&r.outcome),
            |(p, _)| {
                p.strip_prefix(dir)
                    .map(printable_path)
                    .unwrap_or_else(|_| printable_path(p))
            },
        );
        outln!(
            "{:<6} {:<14} {:<9} {:>7}  {journal}",
            format!("#{}", r.target.index),
            r.target.account.as_deref().unwrap_or("(own)"),
            r.exit_code,
            r.changes
        );
    }
    outln!("journals: {}", printable_path(dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::from_toml(include_str!("../../../runbooks/mfa-recovery/runbook.toml"))
            .expect("the shipped manifest parses")
    }

    fn targets(name: &str, text: &str) -> Result<Vec<Target>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        read_targets(&path, &manifest(), &BTreeMap::new(), Some("Ops"))
            .map_err(|e| e.replace(&dir.path().display().to_string(), "DIR"))
    }

    #[test]
    fn a_csv_gives_one_target_per_row_with_its_account_and_role() {
        let t = targets(
            "t.csv",
            "user,account,role\nalice,111111111111,Admin\nbob,222222222222,\ncarol,,\n",
        )
        .unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(
            t[0].role_arn().as_deref(),
            Some("arn:aws:iam::111111111111:role/Admin")
        );
        // An empty role in another account: --role-name.
        assert_eq!(
            t[1].role_arn().as_deref(),
            Some("arn:aws:iam::222222222222:role/Ops")
        );
        // No account: the caller's own, no role.
        assert_eq!((t[2].account.as_deref(), t[2].role_arn()), (None, None));
        assert_eq!(t[2].params["user"], "carol");
        assert_eq!(t[0].journal_name(), "000-111111111111-alice.jsonl");
    }

    #[test]
    fn a_toml_file_gives_the_same_targets() {
        let t = targets(
            "t.toml",
            "[[target]]\nuser = \"alice\"\naccount = \"111111111111\"\n\n[[target]]\nuser = \"bob\"\n",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].account.as_deref(), Some("111111111111"));
        assert_eq!(t[1].params["user"], "bob");
    }

    #[test]
    fn bad_rows_are_refused_naming_the_file_and_line() {
        let e = targets("t.csv", "user,acount\nalice,111111111111\n").unwrap_err();
        assert!(
            e.starts_with("DIR/t.csv:2: `acount` is not a parameter of mfa-recovery"),
            "{e}"
        );
        let e = targets("t.csv", "user,account\nalice,12345\n").unwrap_err();
        assert_eq!(
            e,
            "DIR/t.csv:2: '12345' is not an AWS account id (12 digits)"
        );
        let e = targets("t.csv", "user\nalice\n\"a b\"\n").unwrap_err();
        assert!(e.starts_with("DIR/t.csv:3: "), "{e}");
        let e = targets("t.csv", "user\n").unwrap_err();
        assert!(e.ends_with("no targets in it"), "{e}");
    }

    #[test]
    fn the_session_name_names_the_runbook_and_the_caller_in_stss_characters() {
        assert_eq!(
            session_name("mfa-recovery", "arn:aws:iam::123456789012:user/alice smith"),
            "runbook-mfa-recovery-alice-smith"
        );
        assert!(session_name(&"x".repeat(80), "arn:aws:iam::1:user/a").len() <= 64);
    }
}
