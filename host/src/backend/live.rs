//! The live backend: the real `aws-sdk-iam` over HTTP.
//!
//! Credentials come from the standard chain (environment, `--profile`, SSO,
//! instance roles), resolved once per run and shared by every client (see
//! [`ResolvedOnce`]); `--region` is honoured. Where IAM's calls go is decided
//! here, by [`endpoint`], and the IAM client is built with exactly that
//! endpoint: `--endpoint-url`, else `AWS_ENDPOINT_URL_IAM`, else
//! `AWS_ENDPOINT_URL`, else AWS's own; the journal's header records the same
//! value. STS and Organizations go where the AWS configuration says. IAM is global, so the region defaults to `us-east-1` when none
//! is configured. List calls are paginated here, 1,000 items a page (IAM's
//! maximum), so a runbook sees whole lists.
//!
//! Retries are the host's, not the SDK's: throttling, IAM's transient failures
//! and its eventual-consistency conflicts (`EntityTemporarilyUnmodifiable`,
//! `ConcurrentModification`) are retried here with backoff, every failed
//! attempt is handed back for the journal, and no attempt or backoff runs past
//! the run's deadline.
//!
//! Every answer's request id (`x-amzn-RequestId`, the `requestID` of the call's
//! CloudTrail event) is collected by an SDK interceptor, so each page of a list
//! and each failed attempt is counted without threading ids through every
//! operation: a journal links to every CloudTrail event its call caused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_iam::Client;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_iam::operation::RequestId;
use aws_sdk_iam::primitives::{DateTime, DateTimeFormat};
use aws_sdk_iam::types::{AssignmentStatusType, StatusType};

use crate::backend::{Answer, Backend};
use crate::bindings::{
    AccessKey, AccessKeyLastUsed, AccessKeyStatus, AssignmentStatus, AttachedPolicy,
    CredentialReportRow, Group, IamError, Instant, LoginProfile, MfaDevice, ServiceError, Tag,
    User, VirtualMfaDevice,
};
use crate::request::{CallResult, Request, Response};

/// Where and as whom to reach IAM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveOptions {
    /// A named profile from the AWS config files.
    pub profile: Option<String>,
    /// The region to sign for.
    pub region: Option<String>,
    /// An IAM endpoint other than AWS's (a local IAM such as moto).
    pub endpoint_url: Option<String>,
    /// A role to assume first (a fleet run's target in another account).
    pub assume_role: Option<AssumeRole>,
}

/// A role a fleet run assumes to reach a target in another account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    /// `arn:aws:iam::ACCOUNT:role/NAME`.
    pub role_arn: String,
    /// The STS session name, as CloudTrail shows it in that account:
    /// `runbook-<runbook>-<caller>`.
    pub session_name: String,
    /// The external id the role's trust policy asks for, if any.
    pub external_id: Option<String>,
}

/// The IAM call rate of one account, shared by every target of a fleet run in
/// it: every HTTP request (each page of a list, each retry) takes a cell.
pub type RateLimiter = governor::DefaultDirectRateLimiter;

/// An SDK interceptor that holds every request until the account's rate
/// limiter lets it go. It blocks the client's thread, which is the run's own
/// (one current-thread runtime per run, one call in flight).
#[derive(Debug, Clone)]
struct RateLimit(std::sync::Arc<RateLimiter>);

impl aws_sdk_iam::config::Intercept for RateLimit {
    fn name(&self) -> &'static str {
        "runbook-rate-limit"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_iam::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_iam::config::RuntimeComponents,
        _cfg: &mut aws_sdk_iam::config::ConfigBag,
    ) -> Result<(), aws_sdk_iam::error::BoxError> {
        use governor::clock::Clock;
        let clock = governor::clock::DefaultClock::default();
        while let Err(not_until) = self.0.check() {
            std::thread::sleep(not_until.wait_time_from(clock.now()));
        }
        Ok(())
    }
}

/// The runtime a [`Live`] makes its calls on, shut down without waiting when
/// it is dropped. A call cut at the deadline can leave a DNS lookup running
/// on the runtime's blocking pool (the HTTP client resolves names with
/// getaddrinfo there), and dropping a runtime waits for that pool however
/// long the lookup takes: the run, or a fleet's target, would end past its
/// deadline. Shut down in the background, the lookup is left to finish on
/// its own (or end with the process).
struct CallRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for CallRuntime {
    type Target = tokio::runtime::Runtime;

    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("taken only when dropped")
    }
}

impl Drop for CallRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Real calls to IAM.
pub struct Live {
    runtime: CallRuntime,
    client: Client,
    /// The shared configuration the STS and Organizations clients are made
    /// from when first needed: a single run with a remembered caller needs
    /// neither, and each costs a tenth of a millisecond to build.
    config: aws_config::SdkConfig,
    /// The request ids of the answers to the call in flight.
    request_ids: RequestIds,
    /// `--endpoint-url`, which every client's [`endpoint`] starts from.
    endpoint_flag: Option<String>,
}

/// An AWS service the host calls, by the name its endpoint variable carries
/// (`AWS_ENDPOINT_URL_<NAME>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Iam,
    Sts,
    Organizations,
}

impl Service {
    fn env_suffix(self) -> &'static str {
        match self {
            Service::Iam => "IAM",
            Service::Sts => "STS",
            Service::Organizations => "ORGANIZATIONS",
        }
    }

    /// Its id in the SDK's service configuration (a profile's `services`).
    fn sdk_id(self) -> &'static str {
        match self {
            Service::Iam => "IAM",
            Service::Sts => "STS",
            Service::Organizations => "Organizations",
        }
    }
}

/// Where `service`'s calls go by the command line and the environment alone:
/// `flag` (`--endpoint-url`) if given, else `AWS_ENDPOINT_URL_<SERVICE>`, else
/// `AWS_ENDPOINT_URL` (both unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is
/// `true`), else AWS's own (`None`).
///
/// A journal's header records it for IAM as the run starts (the AWS
/// configuration is still being loaded, beside it). The IAM client is built
/// with exactly this, and a configuration whose profile would send IAM's
/// calls elsewhere is refused (see [`check_iam_endpoint`]): the record and
/// the calls cannot disagree. STS's and Organizations' endpoints, which no
/// journal records, are the configuration's ([`sdk_endpoint`]).
pub fn endpoint(service: Service, flag: Option<&str>) -> Option<String> {
    if let Some(url) = flag {
        return Some(url.to_owned());
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    var(&format!("AWS_ENDPOINT_URL_{}", service.env_suffix())).or_else(|| var("AWS_ENDPOINT_URL"))
}

/// Where the SDK itself would send `service`'s calls with `config`, as the
/// service crates' `From<&SdkConfig>` resolve it: an endpoint set in code
/// (`--endpoint-url`), else the service's own (`AWS_ENDPOINT_URL_<SERVICE>`,
/// or the profile's `services` section), else the shared one
/// (`AWS_ENDPOINT_URL`, or the profile's `endpoint_url`); the profile's
/// `ignore_configured_endpoint_urls` turns off all but the first.
fn sdk_endpoint(config: &aws_config::SdkConfig, service: Service) -> Option<String> {
    let shared = config.endpoint_url().map(str::to_owned);
    if config.get_origin("endpoint_url").is_client_config() {
        return shared;
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id(service.sdk_id())
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build();
    let own = match (key, config.service_config()) {
        (Ok(key), Some(loader)) => loader.load_config(key),
        _ => None,
    };
    // An empty value is unset, as [`endpoint`] reads it (the SDK would send
    // to an empty URL and fail each call).
    let set = |url: Option<String>| url.filter(|u| !u.is_empty());
    set(own).or(set(shared))
}

/// Refuse a configuration that would send IAM's calls elsewhere than
/// [`endpoint`] says (a profile's endpoint settings, which the journal's
/// header cannot know of when it is written): the journal would record one
/// endpoint while the calls went to another, and silently using AWS's own in
/// its place could leave a network or compliance boundary the operator
/// configured.
fn check_iam_endpoint(config: &aws_config::SdkConfig, flag: Option<&str>) -> std::io::Result<()> {
    let say = |url: Option<&str>| url.map_or_else(|| "AWS's own".to_owned(), str::to_owned);
    let ours = endpoint(Service::Iam, flag);
    let configured = sdk_endpoint(config, Service::Iam);
    if ours == configured {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "the AWS configuration (the profile's endpoint_url, services section or ignore_configured_endpoint_urls) sends IAM calls to {}, while the journal records them as going to {} (--endpoint-url, else AWS_ENDPOINT_URL_IAM, else AWS_ENDPOINT_URL; a profile's endpoint settings for IAM are not used): give the endpoint with AWS_ENDPOINT_URL_IAM (IAM alone) or --endpoint-url (every service), or remove the setting from the profile",
        say(configured.as_deref()),
        say(ours.as_deref())
    )))
}

/// An STS client for `config`, its calls sent where the configuration says
/// ([`sdk_endpoint`]: `--endpoint-url` first).
fn sts_client(config: &aws_config::SdkConfig) -> aws_sdk_sts::Client {
    let mut sts = aws_sdk_sts::config::Builder::from(config);
    sts.set_endpoint_url(sdk_endpoint(config, Service::Sts));
    aws_sdk_sts::Client::from_conf(sts.build())
}

/// What the remembered caller is keyed by: the sha256 of where IAM's and
/// STS's calls go ([`endpoint`], [`sdk_endpoint`]) and the access key id of the credentials
/// the calls are made with (resolved here, on the caller's own thread: a
/// provider that fetches them, SSO or a role, asks AWS; the run's client
/// then uses the same resolution, see [`ResolvedOnce`]).
fn identity_key(
    runtime: &tokio::runtime::Runtime,
    config: &aws_config::SdkConfig,
    flag: Option<&str>,
) -> Option<String> {
    use aws_sdk_iam::config::ProvideCredentials;
    let provider = config.credentials_provider()?;
    let credentials = runtime.block_on(provider.provide_credentials()).ok()?;
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    for url in [
        endpoint(Service::Iam, flag),
        sdk_endpoint(config, Service::Sts),
    ] {
        sha2::Digest::update(&mut h, url.as_deref().unwrap_or("aws").as_bytes());
        sha2::Digest::update(&mut h, b"\0");
    }
    sha2::Digest::update(&mut h, credentials.access_key_id().as_bytes());
    Some(hex::encode(sha2::Digest::finalize(h)))
}

/// The run's credentials, resolved once and shared by every client made
/// from the configuration (IAM's, STS's, the caller's key): without it each
/// resolves them on its own, and a `credential_process` runs, or a profile's
/// role is assumed, once per client. Held until a minute before they expire,
/// or for 15 minutes if they do not (as the SDK's own cache holds them), then
/// resolved again; concurrent callers wait for the one resolution in flight.
/// A failure is not held: the next caller tries again.
#[derive(Debug)]
struct ResolvedOnce {
    inner: aws_sdk_iam::config::SharedCredentialsProvider,
    /// The credentials and until when they are handed out.
    held: tokio::sync::Mutex<Option<(aws_sdk_iam::config::Credentials, SystemTime)>>,
}

impl ResolvedOnce {
    /// Credentials without an expiry are resolved again after this.
    const HOLD_UNDATED: Duration = Duration::from_secs(15 * 60);
    /// Dated ones are resolved again this long before they expire.
    const MARGIN: Duration = Duration::from_secs(60);

    /// `credentials`, resolved now, with until when they are handed out.
    fn holding(
        credentials: aws_sdk_iam::config::Credentials,
    ) -> (aws_sdk_iam::config::Credentials, SystemTime) {
        let until = match credentials.expiry() {
            None => SystemTime::now() + Self::HOLD_UNDATED,
            Some(at) => at.checked_sub(Self::MARGIN).unwrap_or(at),
        };
        (credentials, until)
    }
}

/// Credentials resolved once, for a fleet's targets to start from (see
/// [`Live::credentials`]); never printed.
#[derive(Clone)]
pub struct SharedCredentials((aws_sdk_iam::config::Credentials, SystemTime));

impl std::fmt::Debug for SharedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedCredentials(..)")
    }
}

impl aws_sdk_iam::config::ProvideCredentials for ResolvedOnce {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let mut held = self.held.lock().await;
            let now = SystemTime::now();
            if let Some((c, _)) = held.as_ref().filter(|(_, until)| now < *until) {
                return Ok(c.clone());
            }
            let resolved = self.inner.provide_credentials().await?;
            *held = Some(Self::holding(resolved.clone()));
            Ok(resolved)
        })
    }
}

/// Where remembered callers are kept: `STATE_DIR/callers/KEY`.
fn caller_file(key: &str) -> std::path::PathBuf {
    crate::pins::state_dir().join("callers").join(key)
}

/// The caller remembered for `key`, if its file is this user's alone and
/// holds one ARN.
fn remembered_caller(key: &str) -> Option<String> {
    let path = caller_file(key);
    if !crate::cache::private_dir(path.parent()?) {
        return None;
    }
    let file = crate::cache::open_private(&path)?;
    let mut arn = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, 2048), &mut arn).ok()?;
    let arn = arn.trim_end();
    (arn.starts_with("arn:") && arn.chars().all(|c| c.is_ascii_graphic())).then(|| arn.to_owned())
}

/// Remember `arn` as the caller for `key` (best effort: a failure costs one
/// STS call next time).
fn remember_caller(key: &str, arn: &str) {
    let path = caller_file(key);
    let Some(dir) = path.parent() else { return };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    if builder.create(dir).is_err() || !crate::cache::private_dir(dir) {
        return;
    }
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
        return;
    };
    if std::io::Write::write_all(&mut tmp, arn.as_bytes()).is_ok() {
        let _ = tmp.persist(&path);
    }
}

/// Who the calls with `config`'s credentials are made as (`flag` is
/// `--endpoint-url`, see [`endpoint`]), on a runtime of its own: the caller
/// remembered for that access key and those endpoints, or else what STS
/// says (GetCallerIdentity), remembered when it is an ARN; the error if it
/// is unknown.
pub(super) fn find_caller(flag: Option<&str>, config: &aws_config::SdkConfig) -> String {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return format!("unknown (no runtime for STS: {e})"),
    };
    let key = identity_key(&runtime, config, flag);
    if let Some(arn) = key.as_deref().and_then(remembered_caller) {
        return arn;
    }
    let arn = caller_of(&runtime, &sts_client(config));
    if let Some(key) = key
        && arn.starts_with("arn:")
    {
        remember_caller(&key, &arn);
    }
    arn
}

fn caller_of(runtime: &tokio::runtime::Runtime, sts: &aws_sdk_sts::Client) -> String {
    match runtime.block_on(sts.get_caller_identity().send()) {
        Ok(out) => out.arn().unwrap_or("unknown").to_owned(),
        Err(e) => format!(
            "unknown ({})",
            e.as_service_error()
                .and_then(ProvideErrorMetadata::code)
                .unwrap_or("no answer from STS")
        ),
    }
}

/// The caller's identity: known, or being asked of STS in the background.
/// Cloning shares the one answer; [`Caller::get_until`] waits for it once.
#[derive(Debug, Clone)]
pub struct Caller(std::sync::Arc<CallerState>);

#[derive(Debug)]
struct CallerState {
    pending: std::sync::Mutex<Option<std::sync::mpsc::Receiver<String>>>,
    known: std::sync::OnceLock<String>,
}

impl Caller {
    /// A caller already known.
    pub fn known(arn: String) -> Caller {
        let known = std::sync::OnceLock::new();
        let _ = known.set(arn);
        Caller(std::sync::Arc::new(CallerState {
            pending: std::sync::Mutex::new(None),
            known,
        }))
    }

    /// A caller that `answer` will say (an ARN, or why it is unknown).
    pub(super) fn pending(answer: std::sync::mpsc::Receiver<String>) -> Caller {
        Caller(std::sync::Arc::new(CallerState {
            pending: std::sync::Mutex::new(Some(answer)),
            known: std::sync::OnceLock::new(),
        }))
    }

    /// The caller, waiting for STS's answer if it is not in yet.
    pub fn get(&self) -> String {
        self.get_until(None)
    }

    /// [`Caller::get`], waiting at most until `deadline` (a run's): a wait
    /// inside a run counts against its deadline like any call, and an STS
    /// that has not answered by then leaves the caller unknown.
    pub fn get_until(&self, deadline: Option<std::time::Instant>) -> String {
        use std::sync::mpsc::RecvTimeoutError;
        self.0
            .known
            .get_or_init(|| {
                let Some(answer) = self.0.pending.lock().ok().and_then(|mut p| p.take()) else {
                    return "unknown (the STS lookup failed)".to_owned();
                };
                let got = match deadline {
                    None => answer.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    Some(d) => {
                        answer.recv_timeout(d.saturating_duration_since(std::time::Instant::now()))
                    }
                };
                match got {
                    Ok(arn) => arn,
                    Err(RecvTimeoutError::Timeout) => {
                        "unknown (STS did not answer before the run's deadline)".to_owned()
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        "unknown (the STS lookup failed)".to_owned()
                    }
                }
            })
            .clone()
    }
}

/// An SDK interceptor that keeps the request id of every HTTP answer the
/// client receives. The SDK reads it from the `x-amzn-RequestId` header
/// only (not from an error's XML body), for answers and errors alike.
#[derive(Debug, Clone, Default)]
struct RequestIds(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl RequestIds {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl aws_sdk_iam::config::Intercept for RequestIds {
    fn name(&self) -> &'static str {
        "runbook-request-ids"
    }

    fn read_before_deserialization(
        &self,
        context: &aws_sdk_iam::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _components: &aws_sdk_iam::config::RuntimeComponents,
        _cfg: &mut aws_sdk_iam::config::ConfigBag,
    ) -> Result<(), aws_sdk_iam::error::BoxError> {
        if let Some(id) = RequestId::request_id(context.response()) {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(id.to_owned());
        }
        Ok(())
    }
}

impl Live {
    /// Load the AWS configuration and build a client. Nothing is sent yet,
    /// unless a role is to be assumed (then STS AssumeRole, which fails here
    /// if the role cannot be assumed).
    pub fn connect(options: &LiveOptions) -> std::io::Result<Live> {
        Live::connect_limited(options, None, None)
    }

    /// [`Live::connect`], with every IAM request held to `rate`, and
    /// credentials already resolved (`shared`, a fleet's, see
    /// [`Live::credentials`]) used until they near their expiry instead of
    /// resolving them again.
    pub fn connect_limited(
        options: &LiveOptions,
        rate: Option<std::sync::Arc<RateLimiter>>,
        shared: Option<&SharedCredentials>,
    ) -> std::io::Result<Live> {
        // One thread: calls are sequential, and a runbook waits on each.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(
            RegionProviderChain::first_try(options.region.clone().map(aws_config::Region::new))
                .or_default_provider()
                .or_else("us-east-1"),
        );
        // Each call is bounded by the run's deadline (see `call`); these bound
        // the STS lookup made before the run starts.
        loader = loader.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
        // The host retries (see the module docs): the SDK's own retries would
        // be invisible in the journal and multiply the host's.
        loader = loader.retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let mut config = runtime.block_on(loader.load());
        let flag = options.endpoint_url.as_deref();
        check_iam_endpoint(&config, flag)?;
        if let Some(inner) = config.credentials_provider() {
            let once = ResolvedOnce {
                inner,
                held: tokio::sync::Mutex::new(shared.map(|s| s.0.clone())),
            };
            config = config
                .into_builder()
                .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(once))
                .build();
        }
        if let Some(role) = &options.assume_role {
            let credentials = runtime
                .block_on(assume(&sts_client(&config), role))
                .map_err(std::io::Error::other)?;
            config = config
                .into_builder()
                .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(
                    credentials,
                ))
                .build();
        }
        let request_ids = RequestIds::default();
        let mut iam = aws_sdk_iam::config::Builder::from(&config);
        iam.set_endpoint_url(endpoint(Service::Iam, flag));
        let mut iam = iam.interceptor(request_ids.clone());
        if let Some(rate) = rate {
            iam = iam.interceptor(RateLimit(rate));
        }
        let iam = iam.build();
        Ok(Live {
            client: Client::from_conf(iam),
            config,
            endpoint_flag: options.endpoint_url.clone(),
            runtime: CallRuntime(Some(runtime)),
            request_ids,
        })
    }

    /// The credentials the calls are made with, resolved (once: see
    /// [`ResolvedOnce`]) for a fleet's targets to share. Each target loads
    /// its own configuration and runtime (an HTTP client must not outlive
    /// the runtime it ran on), and with these resolves nothing until they
    /// near their expiry: a `credential_process` or a profile's role runs
    /// once per fleet, not once per target. `None` if they cannot be
    /// resolved (each target then tries, and says why).
    pub fn credentials(&self) -> Option<SharedCredentials> {
        use aws_sdk_iam::config::ProvideCredentials;
        let provider = self.config.credentials_provider()?;
        let credentials = self.runtime.block_on(provider.provide_credentials()).ok()?;
        Some(SharedCredentials(ResolvedOnce::holding(credentials)))
    }

    /// Who the calls are made as (STS GetCallerIdentity, which needs no
    /// permission), for the journal header; the error code if it is unknown.
    pub fn caller(&self) -> String {
        caller_of(&self.runtime, &sts_client(&self.config))
    }

    /// [`Live::caller`], asked on a thread of its own: the run goes on and
    /// reads while STS answers, and the journal records the caller before
    /// the run's first change (see [`Caller`]).
    ///
    /// An access key id names one principal for its whole life, so the answer
    /// is remembered (in the state directory, private to the user, keyed by
    /// the sha256 of the endpoints and the key id, never the secret): a later
    /// run with the same credentials knows its caller without asking STS.
    pub fn caller_in_background(&self) -> Caller {
        let (endpoint, config) = self.identity();
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("runbook-caller".into())
            .spawn(move || {
                let _ = tx.send(find_caller(endpoint.as_deref(), &config));
            });
        match spawned {
            Ok(_) => Caller::pending(rx),
            Err(e) => Caller::known(format!("unknown (no thread for STS: {e})")),
        }
    }

    /// What finding the caller needs (see [`find_caller`]): `--endpoint-url`
    /// and the configuration.
    pub(super) fn identity(&self) -> (Option<String>, aws_config::SdkConfig) {
        (self.endpoint_flag.clone(), self.config.clone())
    }

    /// The active accounts of the caller's AWS Organization
    /// (organizations:ListAccounts, every page), sorted; or why not.
    pub fn organization_accounts(&self) -> Result<Vec<String>, String> {
        use aws_sdk_organizations::types::AccountStatus;
        let mut organizations = aws_sdk_organizations::config::Builder::from(&self.config);
        organizations.set_endpoint_url(sdk_endpoint(&self.config, Service::Organizations));
        let pages = self
            .runtime
            .block_on(
                aws_sdk_organizations::Client::from_conf(organizations.build())
                    .list_accounts()
                    .into_paginator()
                    .send()
                    .collect::<Result<Vec<_>, _>>(),
            )
            .map_err(|e| match e.as_service_error() {
                Some(s) => format!(
                    "organizations:ListAccounts failed: {}: {}",
                    s.code().unwrap_or("error"),
                    s.message().unwrap_or("no message")
                ),
                None => format!(
                    "organizations:ListAccounts failed: {}",
                    DisplayErrorContext(&e)
                ),
            })?;
        let mut ids: Vec<String> = pages
            .iter()
            .flat_map(|p| p.accounts())
            .filter(|a| a.status() == Some(&AccountStatus::Active))
            .filter_map(|a| a.id().map(str::to_owned))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// One attempt at `request`: its live call as declared with the
    /// operation (`crate::request`).
    async fn dispatch(&self, request: &Request) -> CallResult {
        match crate::request::live_call(&self.client, request).await {
            Some(result) => result,
            // The host's clock is answered before (`clock_call`).
            None => unreachable!("{} is not an AWS operation with a live call", request.op()),
        }
    }

    /// `dispatch`, retried while the error is transient and the deadline
    /// leaves room for the backoff.
    async fn with_retries(&self, request: &Request, deadline: tokio::time::Instant) -> Answer {
        let mut retries = Vec::new();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let Ok(result) = tokio::time::timeout_at(deadline, self.dispatch(request)).await else {
                return Answer {
                    result: Err(cut(request)),
                    retries,
                    cut: true,
                    request_ids: Vec::new(),
                };
            };
            match result {
                Err(e)
                    if is_transient(&e)
                        && retries.len() + 1 < MAX_ATTEMPTS
                        && tokio::time::Instant::now() + backoff < deadline =>
                {
                    retries.push(e.describe());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                result => {
                    return Answer {
                        result,
                        retries,
                        cut: false,
                        request_ids: Vec::new(),
                    };
                }
            }
        }
    }
}

/// Assume `role` with `sts`: its temporary credentials, or why not.
async fn assume(
    sts: &aws_sdk_sts::Client,
    role: &AssumeRole,
) -> Result<aws_sdk_iam::config::Credentials, String> {
    let mut request = sts
        .assume_role()
        .role_arn(&role.role_arn)
        .role_session_name(&role.session_name);
    if let Some(id) = &role.external_id {
        request = request.external_id(id);
    }
    let why = |m: String| format!("cannot assume role {}: {m}", role.role_arn);
    let out = request.send().await.map_err(|e| {
        why(match e.as_service_error() {
            Some(s) => format!(
                "{}: {}",
                s.code().unwrap_or("error"),
                s.message().unwrap_or("no message")
            ),
            None => DisplayErrorContext(&e).to_string(),
        })
    })?;
    let c = out
        .credentials()
        .ok_or_else(|| why("STS answered without credentials".to_owned()))?;
    Ok(aws_sdk_iam::config::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        SystemTime::try_from(*c.expiration()).ok(),
        "runbook-assume-role",
    ))
}

/// Every item of a paginated list call: IAM's largest page, every page,
/// the first error mapped to the WIT error.
macro_rules! all_pages {
    ($request:expr) => {
        $request
            .max_items(PAGE)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(map_error)?
    };
}

/// Send a change; IAM's answer to it is only success or an error.
macro_rules! sent {
    ($request:expr) => {{
        $request.send().await.map_err(map_error)?;
        Ok(Response::Done)
    }};
}

/// Items per page of a list call: IAM's maximum, so large accounts take the
/// fewest round trips.
const PAGE: i32 = 1000;

/// Attempts per call (the first and its retries): six ride out a burst of
/// throttling or a few seconds of IAM catching up (backoff 0.25 + 0.5 + 1 +
/// 2 + 4 s), and a call still failing after that is not transient.
const MAX_ATTEMPTS: usize = 6;

/// The first retry's backoff; it doubles per retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// The longest single backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Errors worth another attempt: throttling, IAM's transient failures, the
/// conflicts of its eventual consistency, and a connection that failed.
fn is_transient(e: &IamError) -> bool {
    match e {
        IamError::Throttled(_) => true,
        IamError::ServiceFailure(s) => matches!(
            s.code.as_str(),
            "EntityTemporarilyUnmodifiable"
                | "ConcurrentModification"
                | "ServiceFailure"
                | "ServiceUnavailable"
                | "InternalFailure"
                | "Transport"
        ),
        _ => false,
    }
}

/// The error of a call the deadline cut short.
fn cut(request: &Request) -> IamError {
    crate::backend::cut_error(&format!(
        "the run's deadline passed during {}: the call was cut short{}",
        request.op(),
        if request.is_mutation() {
            " and may or may not have reached IAM"
        } else {
            ""
        }
    ))
}

/// The host's own calls, which need no AWS: `clock-now`, and `clock-sleep`
/// (a wait is not retried; one past the deadline is cut there). `None` for
/// any other request.
pub(super) fn clock_call(request: &Request, deadline: std::time::Instant) -> Option<Answer> {
    match request {
        Request::ClockNow => Some(Ok(Response::Instant(now())).into()),
        Request::ClockSleep { milliseconds } => {
            let wait = Duration::from_millis(u64::from(*milliseconds));
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if wait <= left {
                std::thread::sleep(wait);
                return Some(Ok(Response::Done).into());
            }
            std::thread::sleep(left);
            Some(Answer {
                result: Err(cut(request)),
                retries: Vec::new(),
                cut: true,
                request_ids: Vec::new(),
            })
        }
        _ => None,
    }
}

impl Backend for Live {
    fn call(&mut self, request: &Request, deadline: std::time::Instant) -> Answer {
        if let Some(answer) = clock_call(request, deadline) {
            return answer;
        }
        let deadline = tokio::time::Instant::from_std(deadline);
        self.runtime.block_on(async {
            // Ids left by an earlier call cut short are not this call's.
            self.request_ids.take();
            let mut answer = self.with_retries(request, deadline).await;
            answer.request_ids = self.request_ids.take();
            answer
        })
    }
}

/// The host's wall clock.
pub fn now() -> Instant {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Instant {
        seconds: d.as_secs(),
        nanoseconds: d.subsec_nanos(),
    }
}

fn date(d: &DateTime) -> String {
    d.fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| d.secs().to_string())
}

fn missing(op: &str, field: &str) -> IamError {
    IamError::ServiceFailure(ServiceError {
        code: "MalformedResponse".into(),
        message: format!("{op} returned no {field}"),
    })
}

/// Map an SDK error to the WIT error, keeping the AWS error code.
fn map_error<E, R>(err: SdkError<E, R>) -> IamError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown").to_owned();
            let message = e.message().unwrap_or_default().to_owned();
            match code.as_str() {
                "NoSuchEntity" => IamError::NoSuchEntity(message),
                "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
                    IamError::AccessDenied(message)
                }
                "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
                    IamError::Throttled(message)
                }
                "InvalidInput" | "ValidationError" => IamError::InvalidInput(message),
                _ => IamError::ServiceFailure(ServiceError { code, message }),
            }
        }
        _ => IamError::ServiceFailure(ServiceError {
            code: "Transport".into(),
            message: DisplayErrorContext(&err).to_string(),
        }),
    }
}

// The live calls of the IAM operations, one per operation, named in their
// declaration (`crate::request`). Each maps the SDK's answer to the WIT
// types: only the fields in those types cross into a runbook and a journal.

/// `iam:GetUser`.
pub(crate) async fn get_user(c: &Client, user_name: &str) -> CallResult {
    let out = c
        .get_user()
        .user_name(user_name)
        .send()
        .await
        .map_err(map_error)?;
    let u = out.user().ok_or_else(|| missing("GetUser", "User"))?;
    Ok(Response::User(User {
        user_name: u.user_name().to_owned(),
        user_id: u.user_id().to_owned(),
        arn: u.arn().to_owned(),
        create_date: date(u.create_date()),
    }))
}

/// `iam:ListMFADevices`, every page.
pub(crate) async fn list_mfa_devices(c: &Client, user_name: &str) -> CallResult {
    let devices = all_pages!(c.list_mfa_devices().user_name(user_name));
    Ok(Response::MfaDevices(
        devices
            .iter()
            .map(|d| MfaDevice {
                user_name: d.user_name().to_owned(),
                serial_number: d.serial_number().to_owned(),
                enable_date: date(d.enable_date()),
            })
            .collect(),
    ))
}

/// `iam:ListVirtualMFADevices`, every page. The seed and QR code in IAM's
/// answer are dropped here.
pub(crate) async fn list_virtual_mfa_devices(
    c: &Client,
    assignment_status: &AssignmentStatus,
) -> CallResult {
    let status = match assignment_status {
        AssignmentStatus::Assigned => AssignmentStatusType::Assigned,
        AssignmentStatus::Unassigned => AssignmentStatusType::Unassigned,
        AssignmentStatus::Any => AssignmentStatusType::Any,
    };
    let devices = all_pages!(c.list_virtual_mfa_devices().assignment_status(status));
    Ok(Response::VirtualMfaDevices(
        devices
            .iter()
            .map(|d| VirtualMfaDevice {
                serial_number: d.serial_number().to_owned(),
                user_name: d.user().map(|u| u.user_name().to_owned()),
                enable_date: d.enable_date().map(date),
            })
            .collect(),
    ))
}

/// `iam:DeactivateMFADevice`.
pub(crate) async fn deactivate_mfa_device(
    c: &Client,
    user_name: &str,
    serial_number: &str,
) -> CallResult {
    sent!(
        c.deactivate_mfa_device()
            .user_name(user_name)
            .serial_number(serial_number)
    )
}

/// `iam:DeleteVirtualMFADevice`.
pub(crate) async fn delete_virtual_mfa_device(c: &Client, serial_number: &str) -> CallResult {
    sent!(c.delete_virtual_mfa_device().serial_number(serial_number))
}

/// `iam:ListAccessKeys`, every page: ids and status, never secrets.
pub(crate) async fn list_access_keys(c: &Client, user_name: &str) -> CallResult {
    let keys = all_pages!(c.list_access_keys().user_name(user_name));
    Ok(Response::AccessKeys(
        keys.iter()
            .map(|k| AccessKey {
                user_name: k.user_name().unwrap_or(user_name).to_owned(),
                access_key_id: k.access_key_id().unwrap_or_default().to_owned(),
                status: match k.status() {
                    Some(StatusType::Active) => AccessKeyStatus::Active,
                    _ => AccessKeyStatus::Inactive,
                },
                create_date: k.create_date().map(date).unwrap_or_default(),
            })
            .collect(),
    ))
}

/// `iam:GetAccessKeyLastUsed`.
pub(crate) async fn get_access_key_last_used(c: &Client, access_key_id: &str) -> CallResult {
    let out = c
        .get_access_key_last_used()
        .access_key_id(access_key_id)
        .send()
        .await
        .map_err(map_error)?;
    let used = out.access_key_last_used();
    // IAM answers "N/A" for a key never used.
    let known = |v: &str| (v != "N/A" && !v.is_empty()).then(|| v.to_owned());
    Ok(Response::AccessKeyLastUsed(AccessKeyLastUsed {
        user_name: out.user_name().unwrap_or_default().to_owned(),
        last_used_date: used.and_then(|u| u.last_used_date()).map(date),
        service_name: used.and_then(|u| known(u.service_name())),
        region: used.and_then(|u| known(u.region())),
    }))
}

/// `iam:UpdateAccessKey`.
pub(crate) async fn update_access_key(
    c: &Client,
    user_name: &str,
    access_key_id: &str,
    status: &AccessKeyStatus,
) -> CallResult {
    c.update_access_key()
        .user_name(user_name)
        .access_key_id(access_key_id)
        .status(match status {
            AccessKeyStatus::Active => StatusType::Active,
            AccessKeyStatus::Inactive => StatusType::Inactive,
        })
        .send()
        .await
        .map_err(map_error)?;
    Ok(Response::Done)
}

/// `iam:DeleteAccessKey`.
pub(crate) async fn delete_access_key(
    c: &Client,
    user_name: &str,
    access_key_id: &str,
) -> CallResult {
    sent!(
        c.delete_access_key()
            .user_name(user_name)
            .access_key_id(access_key_id)
    )
}

/// `iam:AttachUserPolicy`.
pub(crate) async fn attach_user_policy(
    c: &Client,
    user_name: &str,
    policy_arn: &str,
) -> CallResult {
    sent!(
        c.attach_user_policy()
            .user_name(user_name)
            .policy_arn(policy_arn)
    )
}

/// `iam:TagUser`.
pub(crate) async fn tag_user(c: &Client, user_name: &str, tags: &[Tag]) -> CallResult {
    let mut call = c.tag_user().user_name(user_name);
    for t in tags {
        call = call.tags(
            aws_sdk_iam::types::Tag::builder()
                .key(&t.key)
                .value(&t.value)
                .build()
                .map_err(|e| IamError::InvalidInput(e.to_string()))?,
        );
    }
    call.send().await.map_err(map_error)?;
    Ok(Response::Done)
}

/// `iam:GenerateCredentialReport` until IAM says it is complete (at most one
/// every half second, bounded by the run's deadline like every call), then
/// `iam:GetCredentialReport`, parsed.
pub(crate) async fn get_credential_report(c: &Client) -> CallResult {
    loop {
        let out = c
            .generate_credential_report()
            .send()
            .await
            .map_err(map_error)?;
        if out.state() == Some(&aws_sdk_iam::types::ReportStateType::Complete) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let out = c.get_credential_report().send().await.map_err(map_error)?;
    let content = out.content().map(|b| b.as_ref()).unwrap_or_default();
    parse_credential_report(content).map(Response::CredentialReport)
}

/// The credential report's CSV as typed rows. IAM user names may hold commas
/// (`+=,.@_-`): a name written unquoted (moto does) adds the same number of
/// extra fields to `user` and `arn`, which are joined back.
pub(crate) fn parse_credential_report(
    csv_text: &[u8],
) -> Result<Vec<CredentialReportRow>, IamError> {
    let bad = |why: String| {
        IamError::ServiceFailure(ServiceError {
            code: "MalformedCredentialReport".into(),
            message: why,
        })
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(csv_text);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .map(str::to_owned)
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(format!("no `{name}` column")))
    };
    let (user, arn) = (column("user")?, column("arn")?);
    if (user, arn) != (0, 1) {
        return Err(bad("`user` and `arn` are not the first two columns".into()));
    }
    let [created, pw, pw_used, mfa, k1, k1_used, k2, k2_used] = [
        "user_creation_time",
        "password_enabled",
        "password_last_used",
        "mfa_active",
        "access_key_1_active",
        "access_key_1_last_used_date",
        "access_key_2_active",
        "access_key_2_last_used_date",
    ]
    .map(column);
    let [created, pw, pw_used, mfa, k1, k1_used, k2, k2_used] =
        [created?, pw?, pw_used?, mfa?, k1?, k1_used?, k2?, k2_used?];
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(e.to_string()))?;
        let fields: Vec<&str> = record.iter().collect();
        let extra = fields
            .len()
            .checked_sub(header.len())
            .filter(|e| e % 2 == 0);
        let Some(extra) = extra else {
            return Err(bad(format!(
                "row {} has {} fields for {} columns",
                n + 2,
                fields.len(),
                header.len()
            )));
        };
        let commas = extra / 2;
        let user_name = fields[..=commas].join(",");
        let arn = fields[commas + 1..=2 * commas + 1].join(",");
        let rest = |i: usize| fields[i + extra];
        let time = |i: usize| {
            let v = rest(i);
            (!matches!(v, "N/A" | "no_information" | "not_supported" | "")).then(|| v.to_owned())
        };
        rows.push(CredentialReportRow {
            user_name,
            arn,
            user_creation_time: rest(created).to_owned(),
            password_enabled: rest(pw) == "true",
            password_last_used: time(pw_used),
            mfa_active: rest(mfa) == "true",
            access_key1_active: rest(k1) == "true",
            access_key1_last_used: time(k1_used),
            access_key2_active: rest(k2) == "true",
            access_key2_last_used: time(k2_used),
        });
    }
    Ok(rows)
}

/// `iam:GetLoginProfile`: none when IAM says there is none.
pub(crate) async fn get_login_profile(c: &Client, user_name: &str) -> CallResult {
    match c.get_login_profile().user_name(user_name).send().await {
        Ok(out) => Ok(Response::LoginProfile(out.login_profile().map(|p| {
            LoginProfile {
                user_name: p.user_name().to_owned(),
                create_date: date(p.create_date()),
                password_reset_required: p.password_reset_required(),
            }
        }))),
        Err(e) => match map_error(e) {
            IamError::NoSuchEntity(_) => Ok(Response::LoginProfile(None)),
            other => Err(other),
        },
    }
}

/// `iam:DeleteLoginProfile`.
pub(crate) async fn delete_login_profile(c: &Client, user_name: &str) -> CallResult {
    sent!(c.delete_login_profile().user_name(user_name))
}

/// `iam:ListAttachedUserPolicies`, every page.
pub(crate) async fn list_attached_user_policies(c: &Client, user_name: &str) -> CallResult {
    let policies = all_pages!(c.list_attached_user_policies().user_name(user_name));
    Ok(Response::AttachedPolicies(
        policies
            .iter()
            .map(|p| AttachedPolicy {
                policy_name: p.policy_name().unwrap_or_default().to_owned(),
                policy_arn: p.policy_arn().unwrap_or_default().to_owned(),
            })
            .collect(),
    ))
}

/// `iam:ListUserPolicies`, every page: inline policy names.
pub(crate) async fn list_user_policies(c: &Client, user_name: &str) -> CallResult {
    let names = all_pages!(c.list_user_policies().user_name(user_name));
    Ok(Response::Names(names))
}

/// `iam:PutUserPolicy`.
pub(crate) async fn put_user_policy(
    c: &Client,
    user_name: &str,
    policy_name: &str,
    document: &str,
) -> CallResult {
    sent!(
        c.put_user_policy()
            .user_name(user_name)
            .policy_name(policy_name)
            .policy_document(document)
    )
}

/// `iam:ListGroupsForUser`, every page.
pub(crate) async fn list_groups_for_user(c: &Client, user_name: &str) -> CallResult {
    let groups = all_pages!(c.list_groups_for_user().user_name(user_name));
    Ok(Response::Groups(
        groups
            .iter()
            .map(|g| Group {
                group_name: g.group_name().to_owned(),
                arn: g.arn().to_owned(),
            })
            .collect(),
    ))
}

/// `iam:RemoveUserFromGroup`.
pub(crate) async fn remove_user_from_group(
    c: &Client,
    user_name: &str,
    group_name: &str,
) -> CallResult {
    sent!(
        c.remove_user_from_group()
            .user_name(user_name)
            .group_name(group_name)
    )
}

/// `iam:DetachUserPolicy`.
pub(crate) async fn detach_user_policy(
    c: &Client,
    user_name: &str,
    policy_arn: &str,
) -> CallResult {
    sent!(
        c.detach_user_policy()
            .user_name(user_name)
            .policy_arn(policy_arn)
    )
}

/// `iam:DeleteUserPolicy`.
pub(crate) async fn delete_user_policy(
    c: &Client,
    user_name: &str,
    policy_name: &str,
) -> CallResult {
    sent!(
        c.delete_user_policy()
            .user_name(user_name)
            .policy_name(policy_name)
    )
}

/// `iam:ListUsers`, every page.
pub(crate) async fn list_users(c: &Client) -> CallResult {
    let users = all_pages!(c.list_users());
    Ok(Response::Users(
        users
            .iter()
            .map(|u| User {
                user_name: u.user_name().to_owned(),
                user_id: u.user_id().to_owned(),
                arn: u.arn().to_owned(),
                create_date: date(u.create_date()),
            })
            .collect(),
    ))
}

/// `iam:ListUserTags`, every page.
pub(crate) async fn list_user_tags(c: &Client, user_name: &str) -> CallResult {
    let tags = all_pages!(c.list_user_tags().user_name(user_name));
    Ok(Response::Tags(
        tags.iter()
            .map(|t| Tag {
                key: t.key().to_owned(),
                value: t.value().to_owned(),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_left_running_on_the_blocking_pool_does_not_hold_the_drop() {
        // A stalled getaddrinfo, as a call cut at its deadline leaves it.
        let live = Live::connect(&LiveOptions {
            endpoint_url: Some("http://127.0.0.1:9".into()),
            ..LiveOptions::default()
        })
        .unwrap();
        live.runtime
            .spawn_blocking(|| std::thread::sleep(Duration::from_secs(20)));
        let started = std::time::Instant::now();
        drop(live);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    #[test]
    fn a_report_parses_into_typed_rows_whatever_the_commas_in_names() {
        let text = format!(
            "{HEADER}\n\
             alice,arn:aws:iam::1:user/alice,2026-01-01T00:00:00+00:00,true,2026-02-01T00:00:00+00:00,x,x,false,true,x,2026-03-01T00:00:00+00:00,x,x,false,x,N/A,x,x,false,x,false,x\n\
             api,only,arn:aws:iam::1:user/api,only,2026-01-01T00:00:00+00:00,false,not_supported,x,x,true,false,x,N/A,x,x,false,x,N/A,x,x,false,x,false,x\n\
             \"a,b\",\"arn:aws:iam::1:user/a,b\",2026-01-01T00:00:00+00:00,true,no_information,x,x,false,false,x,N/A,x,x,false,x,N/A,x,x,false,x,false,x\n"
        );
        let rows = parse_credential_report(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].user_name, "alice");
        assert!(rows[0].password_enabled && !rows[0].mfa_active);
        assert_eq!(
            rows[0].password_last_used.as_deref(),
            Some("2026-02-01T00:00:00+00:00")
        );
        assert_eq!(
            rows[0].access_key1_last_used.as_deref(),
            Some("2026-03-01T00:00:00+00:00")
        );
        assert_eq!(
            (rows[1].user_name.as_str(), rows[1].arn.as_str()),
            ("api,only", "arn:aws:iam::1:user/api,only")
        );
        assert!(!rows[1].password_enabled && rows[1].mfa_active);
        assert_eq!(rows[2].user_name, "a,b");
        assert_eq!(
            rows[2].password_last_used, None,
            "no_information is no date"
        );
    }

    #[test]
    fn a_report_that_is_not_one_is_a_named_failure() {
        let e = parse_credential_report(b"hello,world\n1,2\n").unwrap_err();
        assert!(e.describe().contains("MalformedCredentialReport"), "{e:?}");
    }
}
