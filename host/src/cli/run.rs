//! `runbook run`: run a runbook live, as a dry run, or against a recording.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::params;
use anyhow::Context;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, ValueEnum};
use runbook_host::backend::{
    Backend, Caller, Connecting, Deferred, DryRun, Live, LiveOptions, Service, endpoint,
};
use runbook_host::config::Config;
use runbook_host::exit;
use runbook_host::grant::{Grant, OperatorPolicy};
use runbook_host::journal::{
    Footer, Journal, JournalWriter, Mode, Partial, Record, Resumes, RunOutcome,
};
use runbook_host::project;
use runbook_host::replay::Replayer;
use runbook_host::report::{self, TargetId, TargetReport};
use runbook_host::request::Request;
use runbook_host::sandbox::{
    self, Consent, Limits, Loaded, RunReport, RunSpec, Runtime, WasiWorld,
};
use runbook_host::signing::{self, AllowedSigners, Signer, SigningKey};
use runbook_host::transcript::{self, MAX_TEXT_CHARS, printable, printable_path, printable_within};

/// Run a runbook. Its own parameters (e.g. --user) are flags too: see
/// `runbook inspect NAME`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runbook: a name from the project's runbooks/ directory (built from
    /// source when needed), or a path to a .wasm component.
    pub(super) runbook: String,

    /// Apply changes without asking. Without it, a terminal asks once; anything
    /// else refuses before the first change.
    #[arg(long)]
    pub(super) yes: bool,

    /// Send reads, plan changes without sending them, and print the plan.
    #[arg(long, conflicts_with = "replay")]
    pub(super) dry_run: bool,

    /// Answer every call from this recorded journal instead of AWS (nothing is
    /// sent; no AWS account needed).
    #[arg(long, value_name = "JOURNAL")]
    pub(super) replay: Option<PathBuf>,

    /// Continue the run recorded in this journal (one that failed, was
    /// stopped or crashed): same runbook build and parameters. Its calls up to
    /// the last change IAM settled are answered from it, never sent again; then
    /// the run goes on live. A change whose outcome is unknown is sent again.
    #[arg(long, value_name = "JOURNAL", conflicts_with = "replay")]
    pub(super) resume: Option<PathBuf>,

    /// With --resume: the sha256 of the resumed journal's last line, as its
    /// run printed it. Vouches for a journal this host did not pin (written
    /// on another machine, or moved); without it such a journal's answers are
    /// not trusted and the run starts over.
    #[arg(long, value_name = "SHA256", requires = "resume")]
    pub(super) last_hash: Option<String>,

    /// Write the journal here (it must not exist). Default: a new file under
    /// the user's state directory, printed at the end.
    #[arg(long, value_name = "PATH")]
    pub(super) journal: Option<PathBuf>,

    /// The AWS profile to use (from ~/.aws/config).
    #[arg(long)]
    pub(super) profile: Option<String>,

    /// The AWS region to sign for (IAM is global; default us-east-1).
    #[arg(long)]
    pub(super) region: Option<String>,

    /// Send IAM's and STS's calls to this endpoint instead of AWS's (without
    /// it: AWS_ENDPOINT_URL_IAM / _STS, else AWS_ENDPOINT_URL; a profile's
    /// endpoint_url is refused, the journal records where calls go).
    #[arg(long, value_name = "URL")]
    pub(super) endpoint_url: Option<String>,

    /// The project checkout holding runbooks/ (default: found from the
    /// current directory).
    #[arg(long, value_name = "DIR")]
    pub(super) runbooks: Option<PathBuf>,

    /// Stop the runbook after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub(super) deadline: u64,

    /// The runbook's memory limit, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub(super) max_memory_mib: usize,

    /// Stop the runbook after this many host calls.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub(super) max_calls: u32,

    /// Stop the runbook if it passes a string longer than this to the host.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub(super) max_arg_bytes: usize,

    /// Stop the runbook if its logs and output exceed this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub(super) max_log_bytes: usize,

    /// Stop the runbook after this much fuel: units of WebAssembly work,
    /// about one instruction each. Deterministic, unlike --deadline: a
    /// replay gets the recorded run's budget and stops at the same call.
    #[arg(long, value_name = "N", default_value_t = runbook_host::sandbox::DEFAULT_FUEL)]
    pub(super) max_fuel: u64,

    /// Narrow the runbook's grant with an operator policy (TOML, or JSON if
    /// the name ends in .json): `allow`, `deny` (lists of IAM actions) and
    /// `users`. It can never grant more than the runbook declares.
    #[arg(long, value_name = "FILE")]
    pub(super) policy: Option<PathBuf>,

    /// Deny this IAM action for this run, e.g. iam:DeleteVirtualMFADevice
    /// (repeatable).
    #[arg(long, value_name = "ACTION")]
    pub(super) deny: Vec<String>,

    /// Refuse the runbook (exit 8) unless its component carries a valid
    /// signature (`runbook sign`, or `ssh-keygen -Y sign -n runbook`) by a
    /// key this file lists: ssh-keygen's and git's allowed_signers format.
    /// Checked before any of the component is read as WebAssembly; the
    /// signer goes into the journal's header.
    #[arg(long, value_name = "FILE")]
    pub(super) trusted_signers: Option<PathBuf>,

    /// The component's signature (default: COMPONENT.sig beside a component
    /// given by path; a runbook given by name needs this flag).
    #[arg(long, value_name = "FILE")]
    pub(super) signature: Option<PathBuf>,

    /// When the run ends, sign its journal's last line sha256 with this SSH
    /// private key (namespace runbook-journal) into JOURNAL.sig, which
    /// `runbook verify --trusted-signers` checks.
    #[arg(long, value_name = "KEY")]
    pub(super) sign_journal: Option<PathBuf>,

    /// `json`: print one JSON document on stdout when the run ends (the
    /// runbook, and per target its exit code, outcome, summary, changes,
    /// next steps, journal and last-line sha256); everything else goes to
    /// stderr then. See the README's "Machine output".
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Output::Text)]
    pub(super) output: Output,

    /// Where the journal goes without --journal (the configuration's
    /// journal-dir, or the state directory's journals/).
    #[arg(skip)]
    pub(super) journal_dir: PathBuf,

    /// Fleet runs: many targets, one plan, one record.
    #[command(flatten)]
    pub(super) fleet: super::fleet::FleetArgs,
}

/// What `runbook run` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The human transcript.
    Text,
    /// One JSON document (`runbook_host::report::RunReport`); the human
    /// transcript goes to stderr.
    Json,
}

/// Who must vouch for the component, and who signs the journal: the flags'
/// values, kept apart so a configuration file can supply them too (flags
/// override it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// The allowed_signers file the component's signature is checked against.
    pub trusted_signers: Option<PathBuf>,
    /// The component's signature, where not beside the component.
    pub signature: Option<PathBuf>,
    /// The private key that signs the journal when the run ends.
    pub sign_journal: Option<PathBuf>,
}

impl Trust {
    /// The values given as flags in `argv`, before clap parses it (the
    /// signature is checked before the component is parsed for its flags).
    fn from_argv(argv: &[OsString]) -> Trust {
        let path = |flag: &str| params::find_value(argv, flag).map(PathBuf::from);
        Trust {
            trusted_signers: path("--trusted-signers"),
            signature: path("--signature"),
            sign_journal: path("--sign-journal"),
        }
    }

    /// What the configuration file sets and the flags left unset.
    pub fn or_config(mut self, config: &Config) -> Trust {
        if self.trusted_signers.is_none() {
            self.trusted_signers.clone_from(&config.trusted_signers);
        }
        if self.sign_journal.is_none() {
            self.sign_journal.clone_from(&config.sign_journal);
        }
        self
    }

    fn from_args(args: &RunArgs) -> Trust {
        Trust {
            trusted_signers: args.trusted_signers.clone(),
            signature: args.signature.clone(),
            sign_journal: args.sign_journal.clone(),
        }
    }

    /// Check the signature of a component (`file` where it was read if
    /// given by path) if trusted signers are set: who signed, or the exit
    /// code and why it is refused.
    pub fn check(
        &self,
        file: Option<&std::path::Path>,
        found: &project::Found,
    ) -> Result<Option<Signer>, (u8, String)> {
        let (what, bytes) = (found.what.as_str(), found.bytes.as_slice());
        let Some(signers_file) = &self.trusted_signers else {
            return match &self.signature {
                Some(_) => Err((
                    exit::USAGE,
                    "--signature needs --trusted-signers FILE: the signers whose signature is accepted".to_owned(),
                )),
                None => Ok(None),
            };
        };
        let refused = |m: String| {
            (
                exit::SIGNATURE_REFUSED,
                format!("refused to run {what}: {m}"),
            )
        };
        // A runbook embedded in the binary is trusted as the binary is: the
        // same build produced both from the reviewed source. A signature
        // given for it is still checked.
        if found.source == project::Source::Embedded && self.signature.is_none() {
            return Ok(None);
        }
        let signers = AllowedSigners::read(signers_file)
            .map_err(|e| (exit::USAGE, format!("--trusted-signers: {e}")))?;
        // Beside a component given by path; a name has no file of its own
        // (built from runbooks/ or kept in the binary).
        let sig_path = match (&self.signature, file) {
            (Some(p), _) => p.clone(),
            (None, Some(component)) => signing::signature_path(component),
            (None, None) => {
                return Err(refused(format!(
                    "--trusted-signers is set and a runbook given by name has no signature file beside it: pass --signature FILE (made by `runbook sign` or `ssh-keygen -Y sign -n {}` over its component, sha256 {})",
                    signing::NAMESPACE,
                    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
                )));
            }
        };
        let shown = printable_path(&sig_path);
        let armored = match signing::read_capped(&sig_path) {
            Ok(a) => a,
            Err(e) if !sig_path.exists() => {
                return Err(refused(format!(
                    "it has no signature ({shown} does not exist: {e}); sign it with `runbook sign COMPONENT --key KEY`, or pass --signature FILE"
                )));
            }
            Err(e) => return Err(refused(e.to_string())),
        };
        signers
            .verify(signing::NAMESPACE, bytes, what, &armored, &shown)
            .map(Some)
            .map_err(|e| refused(e.to_string()))
    }
}

fn is_help(argv: &[OsString]) -> bool {
    argv.iter().any(|a| a == "--help" || a == "-h")
}

/// AWS set up beside reading, checking and loading the runbook (see
/// [`Connecting`]): started first thing for `runbook run`, unless it only
/// asks for help or replays. `execute` uses it if the parsed flags agree.
pub fn early_aws(argv: &[OsString]) -> Option<Connecting> {
    if is_help(argv) || params::find_value(argv, "--replay").is_some() {
        return None;
    }
    let flag = |f: &str| params::find_value(argv, f).and_then(|v| v.into_string().ok());
    Some(Connecting::spawn(LiveOptions {
        profile: flag("--profile"),
        region: flag("--region"),
        endpoint_url: flag("--endpoint-url"),
        assume_role: None,
    }))
}

/// Parse `runbook run` with the runbook's parameters and run it; `early` is
/// AWS being set up already ([`early_aws`]).
pub fn main(argv: Vec<OsString>, spec: &str, early: Option<Connecting>) -> anyhow::Result<u8> {
    let runbooks_dir = params::find_value(&argv, "--runbooks").map(PathBuf::from);
    let mut say = |m: &str| super::out::say(m);
    // `None`: the runbook cannot be read, and only --help is asked for.
    let config = match runbook_host::config::load() {
        Ok(loaded) => loaded.config,
        Err(e) => {
            super::out::error(e);
            return Ok(exit::HOST_ERROR);
        }
    };
    let early_trust = Trust::from_argv(&argv).or_config(&config);
    // A Python runbook's directory is built here, and componentize-py's
    // builds are not reproducible: no signature can name what it would run.
    // Refused before it is built (the build runs its module-level code).
    if early_trust.trusted_signers.is_some()
        && runbook_host::python::is_python_runbook(std::path::Path::new(spec))
        && !is_help(&argv)
    {
        super::out::error(format!(
            "refused to run {}: --trusted-signers is set, and a Python runbook directory is built on this machine, where no signature can vouch for the component it builds (componentize-py's builds differ byte for byte): sign and run its built .wasm instead",
            printable_path(std::path::Path::new(spec))
        ));
        return Ok(exit::SIGNATURE_REFUSED);
    }
    let component = match project::find_runbook(spec, runbooks_dir.as_deref(), &mut say) {
        Ok(x) => Some(x),
        Err(e) if is_help(&argv) => {
            super::out::say(&format!("note: {e:#}"));
            None
        }
        Err(e) => return Err(e),
    };
    // Before any of the component is parsed: its signature, if the operator
    // requires one.
    let mut signed_by = None;
    if let Some(found) = &component
        && !is_help(&argv)
    {
        match early_trust.check(project::component_file(spec), found) {
            Ok(s) => signed_by = s,
            Err((code, message)) => {
                super::out::error(message);
                return Ok(code);
            }
        }
    }
    let rt = Runtime::new()?;
    let loaded = match &component {
        None => None,
        Some(found) => Some(rt.load(&found.what, &found.bytes)?),
    };

    // The `run` subcommand with one flag per declared parameter.
    let mut run_cmd = super::out::command(
        super::Cli::command()
            .find_subcommand("run")
            .expect("run is a subcommand")
            .clone()
            .bin_name("runbook run"),
    );
    if let Some(l) = &loaded {
        run_cmd = match params::declare(run_cmd, &l.manifest, "Run") {
            Ok(cmd) => cmd,
            Err(e) => {
                super::out::error(e);
                return Ok(exit::HOST_ERROR);
            }
        };
    }
    let matches = run_cmd
        .try_get_matches_from(argv.into_iter().skip(1))
        .unwrap_or_else(|e| super::out::clap_exit(e));
    let mut args = RunArgs::from_arg_matches(&matches).unwrap_or_else(|e| super::out::clap_exit(e));
    apply_config(&mut args, &matches, &config);
    if args.output == Output::Json {
        // Stdout is kept for the report from here on.
        super::out::human_to_stderr();
    }
    let Some(loaded) = loaded else {
        // clap exits on --help above; anything else needed the component.
        anyhow::bail!("runbook {spec} cannot be read");
    };
    let params = params::given(&matches, &loaded.manifest);
    if args.fleet.is_fleet() {
        // Each target sets up AWS its own way (a role, an account): the
        // set-up begun for a single run ends here, having asked nothing.
        drop(early);
        return super::fleet::main(&rt, &loaded, &args, params, signed_by);
    }
    if let Err(e) = loaded.manifest.check_params(&params) {
        super::out::error(e);
        return Ok(exit::USAGE);
    }
    let trust = Trust::from_args(&args);
    if trust != early_trust {
        // clap read the flags otherwise than the early look did: check
        // again with its reading (still before anything is instantiated).
        let found = component.as_ref().expect("loaded, so read");
        match trust.check(project::component_file(spec), found) {
            Ok(s) => signed_by = s,
            Err((code, message)) => {
                super::out::error(message);
                return Ok(code);
            }
        }
    }
    execute(&rt, &loaded, &args, &trust, signed_by, params, early)
}

/// Fill what the command line left to its default from the configuration
/// file: a flag given (or set through its environment variable) wins.
fn apply_config(args: &mut RunArgs, matches: &clap::ArgMatches, config: &Config) {
    let defaulted = |id: &str| {
        !matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let l = &config.limits;
    if let Some(v) = l.deadline.filter(|_| defaulted("deadline")) {
        args.deadline = v;
    }
    if let Some(v) = l.max_fuel.filter(|_| defaulted("max_fuel")) {
        args.max_fuel = v;
    }
    if let Some(v) = l.max_memory_mib.filter(|_| defaulted("max_memory_mib")) {
        args.max_memory_mib = v;
    }
    if let Some(v) = l.max_calls.filter(|_| defaulted("max_calls")) {
        args.max_calls = v;
    }
    if let Some(v) = l.max_arg_bytes.filter(|_| defaulted("max_arg_bytes")) {
        args.max_arg_bytes = v;
    }
    if let Some(v) = l.max_log_bytes.filter(|_| defaulted("max_log_bytes")) {
        args.max_log_bytes = v;
    }
    if args.policy.is_none() {
        args.policy.clone_from(&config.policy);
    }
    if args.trusted_signers.is_none() {
        args.trusted_signers.clone_from(&config.trusted_signers);
    }
    if args.sign_journal.is_none() {
        args.sign_journal.clone_from(&config.sign_journal);
    }
    args.journal_dir = super::journal_dir(config);
}

/// The sandbox's limits the flags (and the configuration) set.
pub(super) fn limits(args: &RunArgs) -> Limits {
    Limits {
        deadline: Duration::from_secs(args.deadline),
        memory_bytes: args.max_memory_mib << 20,
        max_calls: args.max_calls,
        max_arg_bytes: args.max_arg_bytes,
        max_log_bytes: args.max_log_bytes,
        max_fuel: args.max_fuel,
    }
}

/// The operator's policy (`--policy`, or the configuration's) narrowed by
/// `--deny`; `None` once the error is printed (a usage error).
pub(super) fn operator_policy(args: &RunArgs) -> Option<OperatorPolicy> {
    let mut policy = match args.policy.as_deref().map(OperatorPolicy::read) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            super::out::error(e);
            return None;
        }
        None => OperatorPolicy::default(),
    };
    policy.deny.extend(args.deny.iter().cloned());
    if let Err(e) = policy.check() {
        super::out::error(format_args!("--deny: {e}"));
        return None;
    }
    Some(policy)
}

/// Run, then sign the journal if asked: the key is read (and its
/// passphrase asked for) before anything runs.
fn execute(
    rt: &Runtime,
    loaded: &Loaded,
    args: &RunArgs,
    trust: &Trust,
    signed_by: Option<Signer>,
    params: BTreeMap<String, String>,
    early: Option<Connecting>,
) -> anyhow::Result<u8> {
    let journal_path = args
        .journal
        .clone()
        .unwrap_or_else(|| super::default_journal_path(&args.journal_dir, &loaded.manifest.name));
    let sign_with = match &trust.sign_journal {
        None => None,
        Some(key) => {
            let sig = signing::signature_path(&journal_path);
            if sig.exists() {
                super::out::error(format!(
                    "{} already exists: a journal's signature is never replaced; choose another --journal path",
                    printable_path(&sig)
                ));
                return Ok(exit::USAGE);
            }
            match super::sign::load_key(key) {
                Ok(k) => Some((k, sig)),
                Err(e) => {
                    super::out::error(format_args!("--sign-journal: {e}"));
                    return Ok(exit::USAGE);
                }
            }
        }
    };
    let existed = journal_path.exists();
    let target = TargetId {
        parameters: params.clone(),
        ..TargetId::default()
    };
    let mut finished = None;
    let code = run_to_journal(
        rt,
        loaded,
        args,
        &journal_path,
        signed_by,
        params,
        early,
        &mut finished,
    );
    let code = match sign_with {
        None => code,
        Some((key, sig)) => sign_journal(&key, &sig, &journal_path, code),
    };
    if args.output == Output::Json {
        // The journal this run created, if it got that far.
        let journal = (!existed && journal_path.exists()).then_some(journal_path.as_path());
        return Ok(print_json(loaded, args, target, journal, finished, code));
    }
    code
}

/// Sign the journal's last line sha256 with `key` into `sig`, whatever the
/// run's `code`; a signature that cannot be made makes a successful run's
/// exit code a host error.
fn sign_journal(
    key: &SigningKey,
    sig: &std::path::Path,
    journal_path: &std::path::Path,
    code: anyhow::Result<u8>,
) -> anyhow::Result<u8> {
    // The journal as it ends, even if the run failed: read back (and so
    // verified) before its last line is signed.
    let signed = Partial::read(journal_path)
        .map_err(anyhow::Error::from)
        .and_then(|j| {
            let armored = key.sign(signing::JOURNAL_NAMESPACE, j.last_hash.as_bytes())?;
            super::sign::write_signature(sig, &armored, true)?;
            Ok(j.last_hash)
        });
    match signed {
        Ok(hash) => outln!(
            "journal signed with key {} (last line sha256 {hash}): {}",
            key.fingerprint(),
            printable_path(sig)
        ),
        Err(e) if journal_path.exists() => {
            super::out::error(e.context(format!(
                "cannot sign journal {}; sign it with `runbook sign --journal {} --key KEY`",
                printable_path(journal_path),
                printable_path(journal_path)
            )));
            // The run's own failure, if any, says more than the signature's.
            return Ok(match code? {
                exit::SUCCESS => exit::HOST_ERROR,
                c => c,
            });
        }
        Err(_) => {}
    }
    code
}

/// `--output json`: print the run's report on stdout; returns the exit code.
/// `finished` is the report of a run that ended (see [`print_report`]);
/// without one, the run stopped on `code` (an error, already printed): a
/// usage error (exit 2) prints no report, anything else a report of that
/// error, with the journal if the run created one.
fn print_json(
    loaded: &Loaded,
    args: &RunArgs,
    target: TargetId,
    journal: Option<&std::path::Path>,
    finished: Option<TargetReport>,
    code: anyhow::Result<u8>,
) -> u8 {
    let last_error = super::out::take_last_error;
    let target_report = match (code, finished) {
        (Ok(exit::USAGE), None) => return exit::USAGE,
        (Ok(code), Some(r)) if code == r.exit_code => r,
        // The run ended, then signing its journal failed.
        (Ok(code), Some(r)) => TargetReport {
            exit_code: code,
            outcome: report::Outcome::without_run(code),
            summary: last_error().unwrap_or(r.summary),
            ..r
        },
        (Ok(code), None) => {
            TargetReport::unfinished(target, code, last_error().unwrap_or_default(), journal)
        }
        (Err(e), _) => {
            super::out::error(&e);
            let message = last_error().unwrap_or_default();
            TargetReport::unfinished(target, exit::HOST_ERROR, message, journal)
        }
    };
    let mode = if args.dry_run {
        Mode::DryRun
    } else if args.replay.is_some() {
        Mode::Replay
    } else {
        Mode::Live
    };
    let document = report::RunReport::single(&loaded.manifest, &loaded.sha256, mode, target_report);
    super::out::machine(&document.to_json());
    document.exit_code
}

/// Run to the end, journaling to `journal_path`; a run that ends leaves its
/// report in `finished`.
#[allow(clippy::too_many_arguments)]
fn run_to_journal(
    rt: &Runtime,
    loaded: &Loaded,
    args: &RunArgs,
    journal_path: &std::path::Path,
    signed_by: Option<Signer>,
    params: BTreeMap<String, String>,
    early: Option<Connecting>,
    finished: &mut Option<TargetReport>,
) -> anyhow::Result<u8> {
    let target_id = TargetId {
        parameters: params.clone(),
        ..TargetId::default()
    };
    let limits = limits(args);
    let Some(policy) = operator_policy(args) else {
        return Ok(exit::USAGE);
    };
    let grant = Grant::bind(&loaded.manifest, &params).narrow(&policy);
    // Shown above the consent prompt: the manifest's name and version (checked
    // at load) and the operator's parameters, each escaped and cut.
    let header_line = format!(
        "runbook {} {} (sha256 {}) for {}",
        printable(&loaded.manifest.name),
        printable(&loaded.manifest.version),
        &loaded.sha256[..12],
        params
            .iter()
            .map(|(k, v)| format!("--{} {}", printable(k), printable(v)))
            .collect::<Vec<_>>()
            .join(" ")
    );

    // Replay: answers from a recording, nothing sent.
    if let Some(recording) = &args.replay {
        let journal = match Journal::read(recording) {
            Ok(j) => j,
            Err(e) => {
                super::out::error(e);
                return Ok(exit::JOURNAL_INVALID);
            }
        };
        let how = runbook_host::offline::Replay {
            params,
            grant: Some(grant.clone()),
            limits,
            journal: create_journal(journal_path)?,
            echo: true,
            signed_by,
        };
        errln!("{header_line}, replaying {}", printable_path(recording));
        let source = recording.display().to_string();
        let report = runbook_host::offline::replay(rt, loaded, &source, &journal, how)?;
        return Ok(print_report(&report, Mode::Replay, &target_id, finished));
    }

    // Where IAM's calls go: the client is built with exactly this.
    let endpoint = endpoint(Service::Iam, args.endpoint_url.as_deref());
    let options = LiveOptions {
        profile: args.profile.clone(),
        region: args.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        assume_role: None,
    };
    let mut target = BTreeMap::new();
    for (k, v) in [
        ("endpoint", &endpoint),
        ("region", &args.region),
        ("profile", &args.profile),
    ] {
        if let Some(v) = v {
            target.insert(k.to_owned(), v.clone());
        }
    }
    let connect = || Live::connect(&options).context("cannot set up the AWS client");
    // AWS is being set up (`early`, if the parsed flags agree). Who the
    // caller is (remembered for the access key, or asked of STS, in the
    // background) is found where the run first needs it: a resume compares
    // callers before anything runs, so it waits for the answer and the
    // header says who; any other run once its journal exists, and records
    // the caller before its first change (it does not wait for it before its
    // first read: see `Caller`).
    let mut early = early.filter(|setup| *setup.options() == options);
    let mut start = || -> anyhow::Result<(Deferred, Caller)> {
        Ok(match early.take() {
            Some(setup) => setup.start(),
            None => {
                let live = connect()?;
                let caller = live.caller_in_background();
                (Deferred::ready(live), caller)
            }
        })
    };
    let mut resumed_live = None;
    if args.resume.is_some() {
        let (live, caller) = start()?;
        // Within the run's deadline: credentials that never come must not
        // hold a resume forever (an unknown caller is then refused below).
        let within = std::time::Instant::now() + limits.deadline;
        target.insert("caller".to_owned(), caller.get_until(Some(within)));
        resumed_live = Some(live);
    }

    // A resumed run: the journal it continues, checked before anything runs.
    let resume = match &args.resume {
        None => None,
        Some(path) => match resumable(path, args.last_hash.as_deref(), loaded, &params, &target) {
            Ok(r) => Some(r),
            Err((code, message)) => {
                super::out::error(message);
                return Ok(code);
            }
        },
    };
    let replayer = || {
        resume
            .as_ref()
            .map(|r| Replayer::resuming(&r.from.display().to_string(), &r.journal))
    };
    let resumer = || replayer().map(|r| Box::new(r) as Box<dyn runbook_host::backend::Recording>);
    // A resumed run's WASI sees what the run it resumes saw, so its replayed
    // part goes as it went; the plan before a prompt and the run after it
    // see the same too.
    let world = resume
        .as_ref()
        .map(|r| WasiWorld::recorded(&r.journal.header))
        .unwrap_or_else(WasiWorld::fresh);
    let resumes = resume.as_ref().map(|r| Resumes {
        journal: r.from.display().to_string(),
        last_hash: r.journal.last_hash.clone(),
        calls_reused: replayer()
            .and_then(|r| r.resume_point())
            .unwrap_or_default(),
    });
    if let Some(r) = &resumes {
        super::out::say(&format!(
            "resuming {} (last line sha256 {}): its first {} call(s) are answered from it, not sent again",
            r.journal, r.last_hash, r.calls_reused
        ));
    }
    // The journal exists before anything is sent: a path that cannot be used
    // fails here, not after the reads.
    let mut journal = create_journal(journal_path)?;
    // A journal is resumed once: a second resume of it would act on answers
    // older than what the first resume did.
    if let Some(Resume { claim: path, .. }) = &resume
        && !args.dry_run
        && let Err(by) = runbook_host::pins::claim_resume(path, journal_path)
    {
        drop(journal);
        let _ = std::fs::remove_file(journal_path);
        super::out::error(format!(
            "--resume {}: it was resumed already, by the run journaled in {by}: resume that journal instead (runbook show it to see where it stands)",
            path.display()
        ));
        return Ok(exit::USAGE);
    }
    let (live, caller) = match resumed_live {
        Some(live) => (live, None),
        None => {
            let (live, caller) = start()?;
            (live, Some(caller))
        }
    };

    let (mode, backend, consent): (Mode, Box<dyn Backend>, Consent) = if args.dry_run {
        (Mode::DryRun, Box::new(DryRun::new(live)), Consent::Given)
    } else if args.yes {
        (Mode::Live, Box::new(live), Consent::Given)
    } else if std::io::stdin().is_terminal() {
        // Plan first (reads only), show the plan, ask once; the live run may
        // then make exactly the approved changes, in order, and no other.
        let mut plan = sandbox::run(
            rt,
            loaded,
            RunSpec {
                params: params.clone(),
                mode: Mode::DryRun,
                target: target.clone(),
                // The plan reads through the client set up early; the run
                // after the prompt gets a client of its own.
                backend: Box::new(DryRun::new(live)),
                consent: Consent::Given,
                limits: limits.clone(),
                journal: JournalWriter::in_memory(),
                echo: false,
                replay: resumer(),
                grant: Some(grant.clone()),
                resumes: resumes.clone(),
                signed_by: signed_by.clone(),
                world,
                caller: caller.clone(),
            },
        )?;
        if !matches!(plan.outcome, RunOutcome::Succeeded { .. }) {
            errln!("{header_line}: the plan did not succeed, so nothing was changed");
            keep_plan(&mut journal, &plan, None)?;
            plan.journal = journal;
            return Ok(print_report(&plan, Mode::DryRun, &target_id, finished));
        }
        if !plan.changes.is_empty() {
            // The prompt is drawn from the host's own plan: after "this run
            // will:" comes nothing a runbook wrote (the planning pass echoes
            // no log lines), only the host's description of each planned
            // change, escaped, then the question.
            errln!("{header_line}\nthis run will:");
            for c in &plan.changes {
                errln!("  - {}", printable(&c.describe()));
            }
            err!("apply these {} change(s)? [y/N] ", plan.changes.len());
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
                let reason = format!(
                    "the operator declined the {} planned change(s) at the prompt",
                    plan.changes.len()
                );
                let refused = RunOutcome::Refused { reason };
                keep_plan(&mut journal, &plan, Some(refused.clone()))?;
                *finished = Some(TargetReport::from_journal(
                    target_id.clone(),
                    &journal,
                    &refused,
                    exit::CONSENT_REFUSED,
                    &[],
                ));
                errln!("not applied: nothing was changed");
                if let Some(path) = journal.path() {
                    errln!(
                        "journal: {} (the plan and the refusal)",
                        printable_path(path)
                    );
                }
                return Ok(exit::CONSENT_REFUSED);
            }
        }
        let approved = plan.changes.into_iter().collect();
        (
            Mode::Live,
            Box::new(connect()?),
            Consent::Approved(approved),
        )
    } else {
        (Mode::Live, Box::new(live), Consent::Refused)
    };

    errln!("{header_line}, {}", mode.name());
    let report = sandbox::run(
        rt,
        loaded,
        RunSpec {
            params: params.clone(),
            mode,
            target,
            backend,
            consent,
            limits,
            journal,
            echo: true,
            replay: resumer(),
            grant: Some(grant.clone()),
            resumes,
            signed_by,
            world,
            caller,
        },
    )?;
    let code = print_report(&report, mode, &target_id, finished);
    if mode == Mode::Live && !matches!(report.outcome, RunOutcome::Succeeded { .. }) {
        print_resume(args, &params, &report);
    }
    Ok(code)
}

/// The journal at `path`, if this run may resume it: the same component and
/// parameters, a live run that did not succeed, the same endpoint and caller.
/// It is trusted as far as this host pinned it, or whole if `last_hash`
/// vouches for it. Otherwise the exit code and why.
pub(super) fn resumable(
    path: &std::path::Path,
    last_hash: Option<&str>,
    loaded: &Loaded,
    params: &BTreeMap<String, String>,
    target: &BTreeMap<String, String>,
) -> Result<Resume, (u8, String)> {
    let mut from = path.to_owned();
    let mut last_hash = last_hash;
    // A resumed run that stopped while still replaying holds less than the
    // journal it resumed: continue from that one's record (a few hops at
    // most; each hop is a run that failed before going live).
    for _ in 0..8 {
        match resumable_one(&from, last_hash, loaded, params, target)? {
            Step::Trusted(journal) => {
                return Ok(Resume {
                    claim: path.to_owned(),
                    from,
                    journal: *journal,
                });
            }
            Step::Earlier {
                journal,
                replayed,
                reused,
            } => {
                errln!(
                    "note: {} stopped after replaying {replayed} of the {reused} calls it took from {}: resuming from that journal's record",
                    printable_path(&from),
                    printable_path(&journal)
                );
                from = journal;
                last_hash = None;
            }
        }
    }
    Err((
        exit::USAGE,
        format!(
            "--resume {}: eight resumed runs in a row stopped while replaying; resume the first journal of the chain",
            path.display()
        ),
    ))
}

/// A journal to resume: the one the operator named (claimed, so it is not
/// resumed twice), and the one whose record is replayed (the same, unless the
/// named one stopped while replaying its own).
pub(super) struct Resume {
    pub(super) claim: PathBuf,
    pub(super) from: PathBuf,
    pub(super) journal: Partial,
}

/// What one journal in a resume chain gives.
enum Step {
    /// Its record, trusted as far as it is pinned or vouched for.
    Trusted(Box<Partial>),
    /// It stopped while replaying `journal`: resume from that one.
    Earlier {
        journal: PathBuf,
        replayed: usize,
        reused: u32,
    },
}

fn resumable_one(
    path: &std::path::Path,
    last_hash: Option<&str>,
    loaded: &Loaded,
    params: &BTreeMap<String, String>,
    target: &BTreeMap<String, String>,
) -> Result<Step, (u8, String)> {
    let shown = path.display();
    let journal = Partial::read(path).map_err(|e| (exit::JOURNAL_INVALID, e.to_string()))?;
    let h = &journal.header;
    let usage = |m: String| (exit::USAGE, format!("--resume {shown}: {m}"));
    if h.wasm_sha256 != loaded.sha256 {
        return Err(usage(format!(
            "the journal was recorded by component sha256 {}, not this one ({}): resume with the build that made it",
            h.wasm_sha256, loaded.sha256
        )));
    }
    if &h.parameters != params {
        let given = |p: &BTreeMap<String, String>| {
            p.iter()
                .map(|(k, v)| format!("--{k} {v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        return Err(usage(format!(
            "the journal's run had parameters `{}`, not `{}`: a resume continues the same run",
            given(&h.parameters),
            given(params)
        )));
    }
    if h.mode != Mode::Live {
        return Err(usage(format!(
            "the journal is of a {} run, which changed nothing: run again instead",
            h.mode.name()
        )));
    }
    // The caller is in the header's target, or (when STS answered while the
    // run read) in the journal's identity record, written before the first
    // change: a run stopped before that never learned it, and changed nothing.
    let changed_something = journal
        .records
        .iter()
        .any(|r| matches!(r, Record::Call(c) if c.request.is_mutation()));
    if journal.caller().is_none() && !changed_something {
        return Err(usage(
            "the journal's run stopped before its first change (it changed nothing, and never recorded its caller): there is nothing to resume; run again".to_owned(),
        ));
    }
    for key in ["endpoint", "caller"] {
        let then = match key {
            "caller" => journal.caller(),
            _ => h.target.get(key).map(String::as_str),
        };
        let now = target.get(key).map(String::as_str);
        if then != now {
            let say = |v: Option<&str>| v.map_or("none".to_owned(), str::to_owned);
            return Err(usage(format!(
                "the journal's run reached IAM with {key} {}, this one with {}: resume against the same account as the same caller",
                say(then),
                say(now)
            )));
        }
    }
    if let Some(f) = &journal.footer
        && matches!(f.outcome, RunOutcome::Succeeded { .. })
    {
        return Err(usage(
            "the journal's run succeeded: there is nothing to resume".to_owned(),
        ));
    }
    // A resumed run that stopped before it had replayed what it took from
    // the journal it resumed holds fewer settled changes than that journal.
    if let Some(r) = &h.resumes {
        let replayed = journal
            .records
            .iter()
            .filter(|rec| matches!(rec, Record::Result(e) if e.resumed))
            .count();
        if replayed < r.calls_reused as usize {
            return Ok(Step::Earlier {
                journal: PathBuf::from(&r.journal),
                replayed,
                reused: r.calls_reused,
            });
        }
    }
    // The answers stand in for IAM's: trust them only as far as this host
    // pinned them, or as far as the operator vouches.
    let trusted = match last_hash {
        Some(h) if h.eq_ignore_ascii_case(&journal.last_hash) => journal,
        Some(h) => {
            return Err((
                exit::JOURNAL_INVALID,
                format!(
                    "--resume {shown}: its last line hashes to {}, not {h} (--last-hash): it is not the journal the hash was kept for",
                    journal.last_hash
                ),
            ));
        }
        None => {
            let trusted = journal.up_to_pinned(&runbook_host::pins::pinned(path));
            let calls = |p: &Partial| {
                p.records
                    .iter()
                    .filter(|r| matches!(r, Record::Call(_)))
                    .count()
            };
            if calls(&trusted) == 0 && calls(&journal) > 0 {
                errln!(
                    "note: {} is not pinned by this host (written on another machine or by another user, moved, or edited), so none of its answers is trusted and the run starts from its first call; to vouch for it, pass --last-hash with the sha256 its run printed",
                    printable_path(path)
                );
            }
            trusted
        }
    };
    Ok(Step::Trusted(Box::new(trusted)))
}

/// After a live run that did not succeed: the exact command that finishes it.
fn print_resume(args: &RunArgs, params: &BTreeMap<String, String>, report: &RunReport) {
    let Some(journal) = report.journal.path() else {
        return;
    };
    let mut words = vec!["runbook".to_owned(), "run".to_owned(), args.runbook.clone()];
    for (k, v) in params {
        words.push(format!("--{k}"));
        words.push(v.clone());
    }
    // The same reach and the same narrowing: a resume must not widen what
    // the run was allowed.
    let defaults = Limits::default();
    let limit = |flag: &str, value: String, default: String| {
        (value != default).then(|| (flag.to_owned(), value))
    };
    let flags = [
        ("--endpoint-url", args.endpoint_url.clone()),
        ("--profile", args.profile.clone()),
        ("--region", args.region.clone()),
        (
            "--runbooks",
            args.runbooks.as_ref().map(|p| p.display().to_string()),
        ),
        (
            "--policy",
            args.policy.as_ref().map(|p| p.display().to_string()),
        ),
        // The same trust: the resumed run checks the component's signature
        // again, and signs its own journal.
        (
            "--trusted-signers",
            args.trusted_signers
                .as_ref()
                .map(|p| p.display().to_string()),
        ),
        (
            "--signature",
            args.signature.as_ref().map(|p| p.display().to_string()),
        ),
        (
            "--sign-journal",
            args.sign_journal.as_ref().map(|p| p.display().to_string()),
        ),
    ]
    .into_iter()
    .filter_map(|(f, v)| v.map(|v| (f.to_owned(), v)))
    .chain(args.deny.iter().map(|d| ("--deny".to_owned(), d.clone())))
    .chain(
        [
            limit(
                "--deadline",
                args.deadline.to_string(),
                defaults.deadline.as_secs().to_string(),
            ),
            limit(
                "--max-memory-mib",
                args.max_memory_mib.to_string(),
                (defaults.memory_bytes >> 20).to_string(),
            ),
            limit(
                "--max-calls",
                args.max_calls.to_string(),
                defaults.max_calls.to_string(),
            ),
            limit(
                "--max-arg-bytes",
                args.max_arg_bytes.to_string(),
                defaults.max_arg_bytes.to_string(),
            ),
            limit(
                "--max-log-bytes",
                args.max_log_bytes.to_string(),
                defaults.max_log_bytes.to_string(),
            ),
            limit(
                "--max-fuel",
                args.max_fuel.to_string(),
                defaults.max_fuel.to_string(),
            ),
        ]
        .into_iter()
        .flatten(),
    );
    for (flag, value) in flags {
        words.push(flag);
        words.push(value);
    }
    words.push("--resume".to_owned());
    words.push(journal.display().to_string());
    let command: Vec<String> = words.iter().map(|w| shell_word(w)).collect();
    outln!(
        "to finish this run once the cause is fixed (nothing it completed is sent again):\n  {}",
        printable_within(&command.join(" "), MAX_TEXT_CHARS)
    );
}

/// `word` quoted for a POSIX shell where it needs to be.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Write a planning pass into the run's journal: its records, with its own
/// footer or `outcome` instead.
fn keep_plan(
    journal: &mut JournalWriter,
    plan: &RunReport,
    outcome: Option<RunOutcome>,
) -> anyhow::Result<()> {
    for record in plan.journal.records() {
        let record = match (record, &outcome) {
            (Record::Footer(f), Some(o)) => Record::Footer(Footer {
                outcome: o.clone(),
                ..f.clone()
            }),
            (r, _) => r.clone(),
        };
        journal.append(record).context("cannot write the journal")?;
    }
    Ok(())
}

fn create_journal(path: &std::path::Path) -> anyhow::Result<JournalWriter> {
    JournalWriter::create(path).with_context(|| {
        if path.exists() {
            format!(
                "journal {} already exists: a journal is never overwritten; choose another --journal path",
                path.display()
            )
        } else {
            format!("cannot create journal {}", path.display())
        }
    })
}

/// Print the outcome for the operator and keep the run's report in
/// `finished`; returns the exit code. Text from the runbook is printed with
/// control characters escaped.
fn print_report(
    report: &RunReport,
    mode: Mode,
    target: &TargetId,
    finished: &mut Option<TargetReport>,
) -> u8 {
    *finished = Some(TargetReport::from_run(target.clone(), report));
    let mut out = super::out::human();
    let line = transcript::outcome_line(&report.outcome);
    let _ = writeln!(out, "{line}");
    print_changes(&mut out, &report.changes, mode);
    if let RunOutcome::Succeeded { next_steps, .. } = &report.outcome
        && !next_steps.is_empty()
    {
        let _ = writeln!(out, "next:");
        for s in next_steps {
            let _ = writeln!(out, "  - {}", printable(s));
        }
    }
    if let Some(path) = report.journal.path() {
        let _ = writeln!(
            out,
            "journal: {} (last line sha256 {})",
            printable_path(path),
            report.journal.last_hash()
        );
    }
    report.exit_code
}

fn print_changes(out: &mut impl Write, changes: &[Request], mode: Mode) {
    let heading = match mode {
        Mode::Live => "changed",
        Mode::DryRun => "dry run, nothing changed; would change",
        Mode::Replay => "replayed, nothing sent; the recording changed",
    };
    if changes.is_empty() {
        let _ = writeln!(out, "{heading}: nothing");
        return;
    }
    let _ = writeln!(out, "{heading}:");
    for c in changes {
        let _ = writeln!(out, "  - {}", printable(&c.describe()));
    }
}
