//! The sandbox a runbook runs in, and the one path every host call takes.
//!
//! A runbook gets the `runbook` world's imports and a locked-down WASI (Rust's
//! `wasm32-wasip2` std imports some of it even when unused): no preopened
//! directories, no environment, no arguments, no sockets, a frozen clock and
//! seeded randomness, stdout and stderr captured into the journal. Anything
//! else it imports is refused before instantiation.
//!
//! Every IAM import is one line into [`RunState::call`]: check the grant ->
//! record the intent -> dispatch to the backend -> record the outcome -> hand
//! the result to the runbook. A call that cannot be journaled traps.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::backend::{Backend, Recording, Stop};
use crate::bindings::runbook::runbook::{clock, iam, log};
use crate::bindings::{
    Applied, AssignmentStatus, IamError, Instant, Level, MfaDevice, Runbook, RunbookPre, User,
    VirtualMfaDevice, WIT_PACKAGE,
};
use crate::cache::{Cache, Source};
use crate::exit;
use crate::grant::{Grant, Observed, access_denied};
use crate::journal::{
    Call, CallEnd, CallOutcome, Footer, Header, JournalWriter, LogLine, Mode, Record, Resumes,
    RunOutcome,
};
use crate::manifest::{Manifest, ManifestError};
use crate::request::{FromResponse, Request, Response};

/// Resource limits for one run. Each default is generous for a real runbook
/// and small enough that a hostile one cannot hurt the operator's machine.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock time for the whole run. An MFA recovery takes seconds; five
    /// minutes covers slow IAM and throttling retries, and stops a loop.
    pub deadline: Duration,
    /// Linear memory. Runbooks hold a few lists of devices: 64 MiB is far more
    /// than they need, and bounds an allocation loop.
    pub memory_bytes: usize,
    /// Host calls per run. The MFA recovery makes 5 for one device; 1,000
    /// allows large accounts and stops a runaway loop hammering IAM.
    pub max_calls: u32,
    /// Bytes in one string argument. IAM names are at most 128 characters and
    /// ARNs 2,048; 4 KiB bounds what reaches the journal and AWS.
    pub max_arg_bytes: usize,
    /// Bytes of log output (log lines plus stdout/stderr) per run, so a
    /// runbook cannot fill the disk through its journal.
    pub max_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(300),
            memory_bytes: 64 << 20,
            max_calls: 1000,
            max_arg_bytes: 4096,
            max_log_bytes: 1 << 20,
        }
    }
}

/// What one log line costs against `max_log_bytes` besides its text: its
/// journal line's JSON and hash, so empty lines cannot flood the journal.
const LOG_LINE_OVERHEAD: usize = 128;

/// How long one epoch tick is: the deadline's granularity.
const TICK: Duration = Duration::from_millis(10);

/// Why the host stopped a run. These travel as the trap's error so the caller
/// can tell them apart from a runbook's own trap.
#[derive(Debug, thiserror::Error)]
pub enum Abort {
    /// A mutation was about to be sent without consent.
    #[error(
        "refused to {change}: changes need consent; pass --yes to apply them (or --dry-run to see the plan)"
    )]
    ConsentRequired {
        /// The change refused.
        change: String,
    },
    /// A mutation that was not in the plan the operator approved.
    #[error(
        "refused to {change}: it is not the next change of the plan approved at the prompt (IAM may have changed since); run again to see a new plan"
    )]
    NotApproved {
        /// The change refused.
        change: String,
    },
    /// A sandbox limit was hit.
    #[error("{0}")]
    Limit(String),
    /// The journal could not be written, so the call did not happen.
    #[error("cannot write the journal, so the call was not made: {0}")]
    Journal(#[source] std::io::Error),
    /// A call was sent, but its outcome could not be journaled.
    #[error(
        "{call}: sent to IAM and {ended}, but the journal could not record it ({source}); check IAM before running again"
    )]
    Unrecorded {
        /// The call, in words.
        call: String,
        /// How IAM answered, in words.
        ended: String,
        /// Why the journal could not be written.
        source: std::io::Error,
    },
    /// The run's deadline passed during a call (a stalled IAM, a wait).
    #[error("stopped at the run's deadline (--deadline): {0}")]
    Cut(String),
    /// A replay diverged from the recording.
    #[error("{0}")]
    Diverged(String),
    /// A backend answer did not fit the call's type.
    #[error("{0}")]
    BadAnswer(String),
    /// A recorded answer did not fit the call's type: the journal is bad.
    #[error("{0}")]
    BadRecording(String),
}

impl From<Stop> for Abort {
    fn from(stop: Stop) -> Abort {
        match stop {
            Stop::Diverged(d) => Abort::Diverged(d),
            Stop::BadRecording(r) => Abort::BadRecording(r),
        }
    }
}

/// Whether mutations may be sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Consent {
    /// The operator agreed to whatever the run does (`--yes`).
    Given,
    /// The operator approved exactly these changes, in this order (at the
    /// prompt, from a plan): anything else is refused, unsent.
    Approved(std::collections::VecDeque<Request>),
    /// No consent: the first mutation stops the run, unsent.
    Refused,
}

impl Consent {
    /// Why `request` (a mutation) may not be sent, if it may not.
    fn refuses(&mut self, request: &Request) -> Option<Abort> {
        match self {
            Consent::Given => None,
            Consent::Approved(plan) if plan.front() == Some(request) => {
                plan.pop_front();
                None
            }
            Consent::Approved(_) => Some(Abort::NotApproved {
                change: request.describe(),
            }),
            Consent::Refused => Some(Abort::ConsentRequired {
                change: request.describe(),
            }),
        }
    }
}

/// The engine and linker, built once per process, with the compiled-component
/// cache and, within the process, every component already loaded.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RunState>,
    cache: Cache,
    loaded: Mutex<HashMap<String, Loaded>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runtime")
    }
}

/// A runbook component, checked and ready to instantiate.
#[derive(Clone)]
pub struct Loaded {
    /// Its manifest.
    pub manifest: Manifest,
    /// The sha256 of its bytes, hex.
    pub sha256: String,
    /// What it imports (all checked against the allowed set).
    pub imports: Vec<String>,
    /// The runbook-sdk version it was built with, if it says.
    pub sdk_version: Option<String>,
    /// Whether it was compiled now or loaded from the cache.
    pub source: Source,
    pre: RunbookPre<RunState>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("name", &self.manifest.name)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// The imports a runbook may have: its own world, and the WASI a Rust
/// `wasm32-wasip2` std links (inert here: see the module docs). Sockets, HTTP
/// and everything else are refused, and so are WASI clocks: time comes from
/// the recorded `clock` import, and a WASI sleep would block the host thread
/// where the epoch deadline cannot reach it.
const ALLOWED_IMPORTS: &[&str] = &[
    "runbook:runbook/",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-",
    "wasi:io/",
    "wasi:random/",
    "wasi:filesystem/",
];

impl Runtime {
    /// Build the engine (component model, epoch deadlines, no async) and the
    /// linker with the runbook world and the locked-down WASI.
    pub fn new() -> anyhow::Result<Runtime> {
        Runtime::with_cache(Cache::default_location())
    }

    /// A runtime whose compiled components go to `cache`.
    pub fn with_cache(cache: Cache) -> anyhow::Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Off unless needed: host calls are 2-3x cheaper without it.
        config.concurrency_support(false);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Runbook::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)?;
        start_ticker(&engine);
        Ok(Runtime {
            engine,
            linker,
            cache,
            loaded: Mutex::default(),
        })
    }

    /// Read the manifest, check the imports, compile, and pre-link a component.
    /// `what` names it in errors (a path or runbook name).
    pub fn load(&self, what: &str, bytes: &[u8]) -> anyhow::Result<Loaded> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        if let Some(loaded) = self.loaded.lock().expect("not poisoned").get(&sha256) {
            return Ok(loaded.clone());
        }
        let loaded = self.load_new(what, bytes, sha256)?;
        self.loaded
            .lock()
            .expect("not poisoned")
            .insert(loaded.sha256.clone(), loaded.clone());
        Ok(loaded)
    }

    fn load_new(&self, what: &str, bytes: &[u8], sha256: String) -> anyhow::Result<Loaded> {
        let manifest = Manifest::from_wasm(bytes).map_err(|e| match e {
            ManifestError::NotWasm(reason) => anyhow::anyhow!(
                "{what} is not a WebAssembly component ({reason}); give a runbook name or a .wasm built from a runbook crate"
            ),
            other => anyhow::anyhow!("{what}: {other}"),
        })?;
        if !wasmparser::Parser::is_component(bytes) {
            bail!(
                "{what} is a core WebAssembly module, not a component; build it for wasm32-wasip2"
            );
        }
        let (component, source) = self
            .cache
            .load(&self.engine, &sha256, bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{what} is not a valid WebAssembly component"))?;
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_owned())
            .collect();
        for name in &imports {
            if name.starts_with("wasi:clocks/") {
                bail!(
                    "{what} imports `{name}`, which runbooks may not use: read time with runbook_sdk::now() and wait with runbook_sdk::sleep() (both recorded, so replay is exact, and bounded by the deadline)"
                );
            }
            if !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)) {
                bail!(
                    "{what} imports `{name}`, which runbooks may not use: a runbook reaches the outside world only through the runbook:runbook imports"
                );
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{what} cannot be linked"))?;
        let pre = RunbookPre::new(pre).map_err(|e| {
            anyhow::anyhow!(
                "{what} does not export the runbook world ({WIT_PACKAGE}, `run`): {e:#}; build it with runbook_sdk::runbook!"
            )
        })?;
        Ok(Loaded {
            manifest,
            sha256,
            imports,
            sdk_version: crate::manifest::sdk_version(bytes),
            source,
            pre,
        })
    }
}

/// Advance the engine's epoch every [`TICK`] for as long as the engine lives,
/// so each store can have a deadline of its own.
fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("runbook-deadline".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawning a thread");
}

/// Everything one run needs besides the component.
pub struct RunSpec {
    /// The parameters, already checked against the manifest.
    pub params: BTreeMap<String, String>,
    /// How IAM is reached (recorded in the header).
    pub mode: Mode,
    /// Where IAM is reached (recorded in the header; never credentials).
    pub target: BTreeMap<String, String>,
    /// What answers the calls the grant allows.
    pub backend: Box<dyn Backend>,
    /// Whether mutations may be sent.
    pub consent: Consent,
    /// The sandbox's limits.
    pub limits: Limits,
    /// The journal to write.
    pub journal: JournalWriter,
    /// Print log lines to stderr as they happen.
    pub echo: bool,
    /// The recording that answers calls first: a replay (every call) or a
    /// resumed run's journal (the calls before the run goes live).
    pub replay: Option<Box<dyn Recording>>,
    /// The grant; `None` binds the manifest's capabilities to the parameters.
    pub grant: Option<Grant>,
    /// The run this one resumes (its answers come through `replay`).
    pub resumes: Option<Resumes>,
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// How it ended (also the journal's footer).
    pub outcome: RunOutcome,
    /// The journal, complete with its footer.
    pub journal: JournalWriter,
    /// The documented exit code for this outcome.
    pub exit_code: u8,
    /// The changes the run made (planned, in a dry run; recorded, in a
    /// replay).
    pub changes: Vec<Request>,
}

/// The store's data: WASI plus the call path's state.
pub struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    grant: Grant,
    observed: Observed,
    journal: JournalWriter,
    backend: Box<dyn Backend>,
    consent: Consent,
    sandbox: Limits,
    calls: u32,
    log_bytes: usize,
    echo: bool,
    replay: Option<Box<dyn Recording>>,
    changes: Vec<Request>,
    /// When the run must end: no call, retry or wait runs past it.
    deadline: std::time::Instant,
    /// The last change sent, if IAM answered it with an error: the runbook
    /// may send it again without new consent.
    retrying: Option<Request>,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A wall clock frozen at the epoch: a runbook that reads time through WASI
/// instead of the recorded `clock` import gets the same answer every run.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl RunState {
    /// The one path of every IAM and clock import.
    fn call<T: FromResponse>(&mut self, request: Request) -> anyhow::Result<Result<T, IamError>> {
        if self.calls >= self.sandbox.max_calls {
            return Err(Abort::Limit(format!(
                "the runbook made more than {} host calls (--max-calls); it was stopped",
                self.sandbox.max_calls
            ))
            .into());
        }
        if request.longest_argument() > self.sandbox.max_arg_bytes {
            return Err(Abort::Limit(format!(
                "the runbook passed a {}-byte argument to {}, over the {}-byte limit (--max-arg-bytes); it was stopped",
                request.longest_argument(),
                request.op(),
                self.sandbox.max_arg_bytes
            ))
            .into());
        }
        let index = self.calls;
        self.calls += 1;
        let check = self.grant.check(&request, &self.observed);
        self.journal
            .append(Record::Call(Call {
                index,
                request: request.clone(),
            }))
            .map_err(Abort::Journal)?;

        let started = std::time::Instant::now();
        let mut sent = false;
        let mut refusal = None;
        let mut retries = Vec::new();
        let mut resumed = false;
        let (outcome, result) =
            if let Some(replay) = self.replay.as_mut().filter(|r| r.answers(index)) {
                resumed = replay.resumes();
                match replay.answer(index, &request, check.as_ref().err()) {
                    Ok(answer) => answer,
                    Err(stop) => {
                        let abort = Abort::from(stop);
                        // Close the call in the journal before stopping: the
                        // intent is there, and verify wants every call closed.
                        self.journal
                            .append(Record::Result(CallEnd::new(
                                index,
                                CallOutcome::Unanswered {
                                    reason: abort.to_string(),
                                },
                            )))
                            .map_err(Abort::Journal)?;
                        return Err(abort.into());
                    }
                }
            } else if let Err(reason) = check {
                (CallOutcome::Denied { reason }, Err(access_denied(&request)))
            } else if let Some(abort) = (request.is_mutation()
                && self.retrying.as_ref() != Some(&request))
            .then(|| self.consent.refuses(&request))
            .flatten()
            {
                refusal = Some(abort);
                let reason = refusal
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                (CallOutcome::Refused { reason }, Ok(Response::Planned))
            } else if std::time::Instant::now() >= self.deadline {
                let reason = format!(
                    "the run's deadline passed before {} was sent: it was not sent",
                    request.op()
                );
                (
                    CallOutcome::Cut {
                        reason: reason.clone(),
                    },
                    Err(crate::backend::cut_error(&reason)),
                )
            } else {
                sent = true;
                let answer = self.backend.call(&request, self.deadline);
                retries = answer.retries;
                let outcome = match (&answer.result, answer.cut) {
                    (Err(IamError::ServiceFailure(e)), true) => CallOutcome::Cut {
                        reason: e.message.clone(),
                    },
                    _ => CallOutcome::of(&answer.result),
                };
                (outcome, answer.result)
            };
        let duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        // Refused (here or in the recording): journaled, not sent, and the run
        // stops. Cut by the deadline: journaled, and the run stops.
        let refused = matches!(outcome, CallOutcome::Refused { .. });
        let cut = match &outcome {
            CallOutcome::Cut { reason } => Some(reason.clone()),
            _ => None,
        };
        // A change answered from a resumed journal was made by that run.
        if request.is_mutation() && result.is_ok() && !refused && !resumed {
            self.changes.push(request.clone());
        }
        // A change IAM refused (a conflict while it catches up) may be asked
        // for again: it is still the change the operator approved.
        if request.is_mutation() && sent {
            self.retrying = result.is_err().then(|| request.clone());
        }
        let written = self.journal.append(Record::Result(CallEnd {
            index,
            outcome,
            duration_us,
            retries,
            resumed,
        }));
        if let Err(source) = written {
            let abort = if sent {
                Abort::Unrecorded {
                    call: request.describe(),
                    ended: match (&result, &cut) {
                        (_, Some(_)) => "was cut short by the deadline".to_owned(),
                        (Ok(_), None) => "succeeded".to_owned(),
                        (Err(e), None) => format!("failed ({})", e.describe()),
                    },
                    source,
                }
            } else {
                Abort::Journal(source)
            };
            // Whatever fails after this (the footer, the disk), the operator
            // must learn that this call reached IAM: say it now.
            if sent && request.is_mutation() {
                let _ = writeln!(
                    std::io::stderr(),
                    "runbook: {}",
                    crate::transcript::printable(&abort.to_string())
                );
            }
            return Err(abort.into());
        }
        if refused {
            return Err(refusal
                .unwrap_or(Abort::ConsentRequired {
                    change: request.describe(),
                })
                .into());
        }
        if let Some(reason) = cut {
            return Err(Abort::Cut(reason).into());
        }

        match result {
            Ok(response) => {
                self.observed.learn(&request, &response);
                T::from_response(response).map(Ok).map_err(|r| {
                    Abort::BadAnswer(format!(
                        "the answer to {} does not fit its type: {r:?}",
                        request.op()
                    ))
                    .into()
                })
            }
            Err(e) => Ok(Err(e)),
        }
    }

    fn log_line(&mut self, line: LogLine) -> anyhow::Result<()> {
        self.log_bytes += line.message.len() + LOG_LINE_OVERHEAD;
        if self.log_bytes > self.sandbox.max_log_bytes {
            return Err(Abort::Limit(format!(
                "the runbook logged more than {} bytes (--max-log-bytes); it was stopped",
                self.sandbox.max_log_bytes
            ))
            .into());
        }
        if self.echo {
            // Not eprintln!: it panics when stderr is a closed pipe.
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!(
                    "  {:<5} {}\n",
                    line.level,
                    crate::transcript::printable(&line.message)
                ),
            );
        }
        self.journal
            .append(Record::Log(line))
            .map_err(Abort::Journal)?;
        Ok(())
    }
}

impl iam::Host for RunState {
    fn get_user(&mut self, user_name: String) -> anyhow::Result<Result<User, IamError>> {
        self.call(Request::GetUser { user_name })
    }

    fn list_mfa_devices(
        &mut self,
        user_name: String,
    ) -> anyhow::Result<Result<Vec<MfaDevice>, IamError>> {
        self.call(Request::ListMfaDevices { user_name })
    }

    fn list_virtual_mfa_devices(
        &mut self,
        assignment_status: AssignmentStatus,
    ) -> anyhow::Result<Result<Vec<VirtualMfaDevice>, IamError>> {
        self.call(Request::ListVirtualMfaDevices { assignment_status })
    }

    fn deactivate_mfa_device(
        &mut self,
        user_name: String,
        serial_number: String,
    ) -> anyhow::Result<Result<Applied, IamError>> {
        self.call(Request::DeactivateMfaDevice {
            user_name,
            serial_number,
        })
    }

    fn delete_virtual_mfa_device(
        &mut self,
        serial_number: String,
    ) -> anyhow::Result<Result<Applied, IamError>> {
        self.call(Request::DeleteVirtualMfaDevice { serial_number })
    }
}

impl log::Host for RunState {
    fn log(&mut self, level: Level, message: String) -> anyhow::Result<()> {
        self.log_line(LogLine::new(level, message))
    }
}

impl clock::Host for RunState {
    fn sleep(&mut self, milliseconds: u32) -> anyhow::Result<()> {
        match self.call::<()>(Request::ClockSleep { milliseconds })? {
            Ok(()) => Ok(()),
            Err(e) => Err(Abort::BadAnswer(format!(
                "a wait answered with an error: {}",
                e.describe()
            ))
            .into()),
        }
    }

    fn now(&mut self) -> anyhow::Result<Instant> {
        match self.call::<Instant>(Request::ClockNow)? {
            Ok(i) => Ok(i),
            Err(e) => Err(Abort::BadAnswer(format!(
                "the clock answered with an error: {}",
                e.describe()
            ))
            .into()),
        }
    }
}

/// Run a loaded runbook to the end and write its journal.
pub fn run(rt: &Runtime, loaded: &Loaded, spec: RunSpec) -> anyhow::Result<RunReport> {
    let grant = spec
        .grant
        .unwrap_or_else(|| Grant::bind(&loaded.manifest, &spec.params));
    let mut journal = spec.journal;
    journal
        .append(Record::Header(Header {
            format: crate::journal::FORMAT,
            runbook: loaded.manifest.name.clone(),
            runbook_version: loaded.manifest.version.clone(),
            wasm_sha256: loaded.sha256.clone(),
            wit: WIT_PACKAGE.to_owned(),
            sdk_version: loaded.sdk_version.clone(),
            host_version: env!("CARGO_PKG_VERSION").to_owned(),
            parameters: spec.params.clone(),
            grant: grant.clone(),
            mode: spec.mode,
            target: spec.target,
            started_at: now_rfc3339(),
            resumes: spec.resumes,
        }))
        .context("cannot write the journal header")?;

    let stdout = MemoryOutputPipe::new(spec.limits.max_log_bytes);
    let stderr = MemoryOutputPipe::new(spec.limits.max_log_bytes);
    let wasi = WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .insecure_random_seed(0)
        .secure_random(SeededRandom(0x5eed))
        .build();
    // `memory_size` caps each memory: allow only the few memories, tables and
    // instances a Rust component has, so the cap bounds the whole run.
    let limits = StoreLimitsBuilder::new()
        .memory_size(spec.limits.memory_bytes)
        .memories(2)
        .tables(16)
        .table_elements(1 << 16)
        .instances(32)
        .trap_on_grow_failure(true)
        .build();
    // The planning pass before a prompt has a deadline of its own: the time
    // an operator takes to read the plan is not the run's.
    let deadline = std::time::Instant::now() + spec.limits.deadline;
    let deadline_ticks = (spec.limits.deadline.as_millis() / TICK.as_millis()).max(1) as u64;
    let mut store = Store::new(
        &rt.engine,
        RunState {
            wasi,
            table: ResourceTable::new(),
            limits,
            grant,
            observed: Observed::default(),
            journal,
            backend: spec.backend,
            consent: spec.consent,
            sandbox: spec.limits.clone(),
            calls: 0,
            log_bytes: 0,
            echo: spec.echo,
            replay: spec.replay,
            changes: Vec::new(),
            deadline,
            retrying: None,
        },
    );
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(deadline_ticks);
    store.epoch_deadline_trap();

    let params: Vec<(String, String)> = spec.params.into_iter().collect();
    let result = loaded
        .pre
        .instantiate(&mut store)
        .and_then(|instance| instance.call_run(&mut store, &params));

    let mut state = store.into_data();
    // Guest stdout/stderr share the log budget; what does not fit is cut, and
    // the cut is said.
    'streams: for (stream, pipe) in [("stdout", &stdout), ("stderr", &stderr)] {
        let bytes = pipe.contents();
        for line in String::from_utf8_lossy(&bytes).lines() {
            state.log_bytes += line.len() + LOG_LINE_OVERHEAD;
            let message = if state.log_bytes > spec.limits.max_log_bytes {
                format!(
                    "[{stream} cut: over the {}-byte log limit]",
                    spec.limits.max_log_bytes
                )
            } else {
                line.to_owned()
            };
            let cut = state.log_bytes > spec.limits.max_log_bytes;
            let _ = state.journal.append(Record::Log(LogLine {
                level: stream.to_owned(),
                message,
            }));
            if cut {
                break 'streams;
            }
        }
    }

    let (outcome, exit_code) = match result {
        Ok(Ok(o)) => (
            RunOutcome::Succeeded {
                summary: o.summary,
                changes: o.changes,
                next_steps: o.next_steps,
            },
            exit::SUCCESS,
        ),
        Ok(Err(error)) => (RunOutcome::Failed { error }, exit::RUNBOOK_FAILED),
        Err(e) => classify(e.into(), &spec.limits, &stdout, &stderr),
    };
    // The runbook's outcome is its text too: it shares the log budget, so a
    // runbook cannot fill the disk (or the terminal) through its outcome.
    let (outcome, exit_code) = match outcome_bytes(&outcome) {
        Some(bytes) if state.log_bytes.saturating_add(bytes) > spec.limits.max_log_bytes => (
            RunOutcome::Trapped {
                reason: format!(
                    "the runbook's outcome is {bytes} bytes, more than the {} bytes left of its {}-byte budget for logs, output and outcome (--max-log-bytes); it was not recorded",
                    spec.limits.max_log_bytes.saturating_sub(state.log_bytes),
                    spec.limits.max_log_bytes
                ),
            },
            exit::TRAPPED,
        ),
        _ => (outcome, exit_code),
    };
    // A replay must also end as the recording did.
    let (outcome, exit_code) = match &state.replay {
        Some(replay) if !matches!(outcome, RunOutcome::Aborted { .. }) => {
            match replay.finished(state.calls, &outcome) {
                Ok(()) => (outcome, exit_code),
                Err(d) => (
                    RunOutcome::Aborted {
                        reason: d.to_string(),
                    },
                    exit::REPLAY_DIVERGED,
                ),
            }
        }
        _ => (outcome, exit_code),
    };
    let footer = state.journal.append(Record::Footer(Footer {
        outcome: outcome.clone(),
        calls: state.calls,
        finished_at: now_rfc3339(),
    }));
    if let Err(e) = footer {
        // The journal is incomplete: the operator still learns how the run
        // ended and what it changed.
        let changes: Vec<String> = state.changes.iter().map(Request::describe).collect();
        bail!(
            "cannot write the journal footer ({e}); the run ended: {}; changes sent to IAM: {}",
            crate::transcript::outcome_line(&outcome),
            if changes.is_empty() {
                "none".to_owned()
            } else {
                changes.join("; ")
            }
        );
    }
    Ok(RunReport {
        outcome,
        journal: state.journal,
        exit_code,
        changes: state.changes,
    })
}

/// The bytes of the runbook's own text in an outcome it returned (the host's
/// outcomes are not charged).
fn outcome_bytes(outcome: &RunOutcome) -> Option<usize> {
    match outcome {
        RunOutcome::Succeeded {
            summary,
            changes,
            next_steps,
        } => Some(
            summary.len()
                + changes
                    .iter()
                    .chain(next_steps)
                    .map(|l| l.len() + LOG_LINE_OVERHEAD)
                    .sum::<usize>(),
        ),
        RunOutcome::Failed { error } => Some(error.len()),
        _ => None,
    }
}

/// Tell the host's own aborts from the runbook's traps, with a clear reason.
fn classify(
    e: anyhow::Error,
    limits: &Limits,
    stdout: &MemoryOutputPipe,
    stderr: &MemoryOutputPipe,
) -> (RunOutcome, u8) {
    if let Some(abort) = e.downcast_ref::<Abort>() {
        let reason = abort.to_string();
        return match abort {
            Abort::ConsentRequired { .. } | Abort::NotApproved { .. } => {
                (RunOutcome::Refused { reason }, exit::CONSENT_REFUSED)
            }
            Abort::Limit(_) | Abort::Cut(_) => (RunOutcome::Trapped { reason }, exit::TRAPPED),
            Abort::Journal(_) | Abort::Unrecorded { .. } => {
                (RunOutcome::Aborted { reason }, exit::HOST_ERROR)
            }
            Abort::Diverged(_) => (RunOutcome::Aborted { reason }, exit::REPLAY_DIVERGED),
            Abort::BadAnswer(_) => (RunOutcome::Aborted { reason }, exit::HOST_ERROR),
            Abort::BadRecording(_) => (RunOutcome::Aborted { reason }, exit::JOURNAL_INVALID),
        };
    }
    // A full output pipe fails the guest's next write, and Rust's print!
    // panics on that: say which limit it was.
    for (name, pipe) in [("stdout", stdout), ("stderr", stderr)] {
        if pipe.contents().len() >= limits.max_log_bytes {
            let reason = format!(
                "the runbook wrote more than {} bytes to {name} (--max-log-bytes); it was stopped",
                limits.max_log_bytes
            );
            return (RunOutcome::Trapped { reason }, exit::TRAPPED);
        }
    }
    let reason = match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!(
            "the runbook ran past its {}s deadline (--deadline) and was stopped",
            limits.deadline.as_secs()
        ),
        Some(Trap::UnreachableCodeReached) => {
            let err = String::from_utf8_lossy(&stderr.contents())
                .trim()
                .to_owned();
            // Rust prints "thread ... panicked at FILE:LINE:COL:" and the
            // message on the next line.
            let panic = err
                .find("panicked at")
                .map(|at| err[at..].lines().take(2).collect::<Vec<_>>().join(" "));
            match panic {
                Some(p) => format!("the runbook panicked: {p}"),
                None if err.is_empty() => "the runbook trapped: unreachable code reached".into(),
                None => format!("the runbook trapped: {err}"),
            }
        }
        Some(trap) => format!("the runbook trapped: {trap}"),
        None if format!("{e:#}").contains("memory") => format!(
            "the runbook went over its {} MiB memory limit (--max-memory-mib) and was stopped: {e:#}",
            limits.memory_bytes >> 20
        ),
        None => format!("the runbook trapped: {e:#}"),
    };
    (RunOutcome::Trapped { reason }, exit::TRAPPED)
}

/// Deterministic "secure" randomness: a runbook has no business with real
/// entropy, and replay must see the same bytes. (SplitMix64.)
struct SeededRandom(u64);

impl rand::TryRng for SeededRandom {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

/// A process-wide runtime, for callers that run many runbooks (tests, benches).
pub fn shared_runtime() -> anyhow::Result<&'static Runtime> {
    static RT: OnceLock<Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = Runtime::new()?;
    Ok(RT.get_or_init(|| rt))
}
