//! IAM on a bad day, on demand: a fault-injecting HTTP proxy on a free
//! 127.0.0.1 port in front of a [`Moto`]. Real IAM is eventually consistent (a
//! read right after a write can miss it), answers `ConcurrentModification` and
//! `Throttling`, and networks stall and drop connections; moto does none of
//! that. Point the SDK (or `runbook run --endpoint-url`) at `proxy.url` instead
//! of `moto.url` and script what goes wrong with [`Rule`]s, before or during a
//! run. The proxy reads each request's IAM `Action` and parameters from its
//! form body, applies the first rule that matches and has uses left, and
//! otherwise forwards to moto:
//!
//! - [`Fault::Stale`]: answer with moto's answer to the previous request with
//!   the same action and parameters, not asking moto (a `ListMFADevices` right
//!   after a `DeactivateMFADevice` that still lists the device);
//! - [`Fault::Error`]: an IAM-shaped XML error, not forwarded;
//! - [`Fault::Stall`]: hold the request before moto sees it, or hold moto's
//!   answer, or hold and then close without forwarding;
//! - [`Fault::Drop`]: close the connection without answering, before or after
//!   moto applied the request.
//!
//! ```ignore
//! let moto = Moto::start();
//! let proxy = Proxy::start(&moto);
//! // The next 2 ListMFADevices after a successful DeactivateMFADevice are stale.
//! proxy.add(Rule::on("ListMFADevices", Fault::Stale).after("DeactivateMFADevice").times(2));
//! proxy.add(Rule::on("DeleteVirtualMFADevice", Fault::delete_conflict()));
//! // ... run against proxy.url ...
//! assert_eq!(proxy.sent("DeactivateMFADevice"), 1, "{}", proxy.log());
//! ```
//!
//! STS speaks the same query protocol as IAM, so `AssumeRole` requests match
//! rules like IAM's, and [`Rule::role`] picks them by the role's name in any
//! account: a role that cannot be assumed is
//!
//! ```ignore
//! proxy.add(Rule::on("AssumeRole", Fault::access_denied()).role("Broken").always());
//! ```
//!
//! (an error answer to an STS request is in STS's XML namespace). JSON-protocol
//! requests (Organizations' `ListAccounts`) are counted, and matched by rules,
//! under the operation their `X-Amz-Target` header names, with their JSON body
//! as one parameter `(body)` (so [`Fault::Stale`] tells bodies apart). Fault
//! them with stalls, drops or stale answers: a [`Fault::Error`] answers in
//! XML, which a JSON client cannot read.
//!
//! [`Proxy::seen`], [`Proxy::sent`] and [`Proxy::applied`] count per action the
//! requests that reached the proxy, reached moto, and that moto answered with
//! 2xx; [`Proxy::log`] says what happened to each request, for failure
//! messages. [`Proxy::wait_until_held`] lets a test act (say, SIGKILL the
//! client) while a stalled call is in flight, and [`Proxy::release`] ends a
//! stall early.
//!
//! It speaks just enough HTTP/1.1 for the SDK: keep-alive client connections,
//! `Content-Length` request bodies, `Expect: 100-continue` (answered by the
//! proxy). A chunked request is refused with a 501 and recorded as a problem.
//! Each forwarded request gets a fresh connection to moto, which closes every
//! connection after one answer anyway. A problem (a request the proxy cannot
//! read, moto not answering) fails the test when the `Proxy` is dropped, unless
//! taken with [`Proxy::take_problems`].
//!
//! Everything is bounded: it listens on loopback only, every wait takes a
//! timeout, and dropping the `Proxy` ends every stall, closes every connection
//! and joins every thread it started before returning.
//!
//! What the SDK (aws-sdk-iam 1.x) does, which tests must count on: it sends
//! each call as `POST /` with a `Content-Length` form body, no `Expect`, no
//! chunking, over one kept-alive connection, and numbers its attempts in an
//! `amz-sdk-request: attempt=N; max=M` header (the log shows retries). Its
//! standard retry mode (the SDK's default, 3 attempts) retries `Throttling`,
//! 5xx answers and connections closed without an answer, but no 409
//! (`DeleteConflict`, `ConcurrentModification`,
//! `EntityTemporarilyUnmodifiable`). The `runbook` host turns the SDK's
//! retries off and retries itself (those 409s included, each attempt
//! journaled). Either way a mutation dropped after forwarding reaches moto
//! twice, and the caller sees the second answer (`NoSuchEntity`, say):
//! `seen`, `sent` and `applied` tell attempts from calls.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::moto::Moto;

/// How long a blocked socket read sleeps before checking whether the proxy is
/// stopping: the bound on how long a dropped proxy's threads linger.
const TICK: Duration = Duration::from_millis(50);
/// How long moto may take to answer one request. It answers in milliseconds;
/// the rest is room for a loaded machine.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Connecting to moto on loopback is immediate; longer means moto is gone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Both peers are on loopback and read promptly: a write blocked this long
/// means the peer stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest start line plus headers accepted: the SDK's are under 2 KiB.
const MAX_HEAD: usize = 64 * 1024;
/// The largest body accepted either way: IAM requests are small form bodies,
/// and moto's biggest answers (virtual devices with their QR code PNGs) are a
/// few KiB per device.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What the proxy does to a request a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with moto's answer to the previous request with the same action
    /// and parameters (in any order; `Version` aside), without forwarding. A
    /// rule with nothing to replay (no such request went through yet) does not
    /// fire: to make a run's first `ListVirtualMFADevices` miss a device, send
    /// the same request through the proxy before the change (the SDK's
    /// paginators send no `Marker` or `MaxItems` for a first page).
    Stale,
    /// Answer with an IAM error, without forwarding: `<ErrorResponse>` XML as
    /// IAM and moto send it (`Type` `Sender`, or `Receiver` for 5xx), with
    /// `Content-Type: text/xml` and a request id.
    Error {
        /// The HTTP status (IAM's service model: 409 for `DeleteConflict`,
        /// `ConcurrentModification`, `EntityTemporarilyUnmodifiable`,
        /// `LimitExceeded`; 400 for `Throttling`; 404 `NoSuchEntity`; 500
        /// `ServiceFailure`).
        status: u16,
        /// The error code, what `ProvideErrorMetadata::code()` returns.
        code: String,
        /// The message.
        message: String,
    },
    /// Hold the request for `duration` (or until [`Proxy::release`], or until
    /// the proxy is dropped, which closes the connection), at the point
    /// `forward` says. The proxy goes on after the stall even if the client
    /// gave up meanwhile: like IAM, it may apply a request nobody waits for.
    Stall {
        /// How long to hold.
        duration: Duration,
        /// When the request reaches moto, if ever.
        forward: Forward,
    },
    /// Close the client's connection without answering.
    Drop {
        /// Whether moto got (and applied) the request first.
        forwarded: bool,
    },
}

/// Where a [`Fault::Stall`] holds its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Hold, then forward and answer: moto sees the request late.
    Before,
    /// Forward at once, hold moto's answer, then answer: the change is made,
    /// the client hears of it late.
    After,
    /// Hold, then close the connection without forwarding.
    Never,
}

impl Fault {
    /// An IAM error `code` with HTTP `status`.
    pub fn error(status: u16, code: &str, message: &str) -> Fault {
        Fault::Error {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }

    /// 409 `DeleteConflict`, e.g. a virtual device IAM still sees as assigned.
    pub fn delete_conflict() -> Fault {
        Fault::error(
            409,
            "DeleteConflict",
            "Cannot delete entity: it still has subordinate entities attached.",
        )
    }

    /// 409 `ConcurrentModification`.
    pub fn concurrent_modification() -> Fault {
        Fault::error(
            409,
            "ConcurrentModification",
            "Multiple requests to change this object were submitted simultaneously. Wait a few minutes and submit your request again.",
        )
    }

    /// 409 `EntityTemporarilyUnmodifiable` (409 in IAM's service model).
    pub fn temporarily_unmodifiable() -> Fault {
        Fault::error(
            409,
            "EntityTemporarilyUnmodifiable",
            "The entity is temporarily unmodifiable. Try again after waiting several minutes.",
        )
    }

    /// 400 `Throttling`. The SDK's standard retry mode retries it.
    pub fn throttling() -> Fault {
        Fault::error(400, "Throttling", "Rate exceeded")
    }

    /// 403 `AccessDenied`, as STS answers an `AssumeRole` the role's trust
    /// policy (or the caller's policy) does not allow. Not retried.
    pub fn access_denied() -> Fault {
        Fault::error(
            403,
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/moto is not authorized to perform: sts:AssumeRole on this role (denied by the test proxy)",
        )
    }
}

/// When a [`Fault`] applies: to requests of one IAM action, optionally with
/// given parameters, only after another action succeeded, from the n-th match
/// on, a bounded number of times (once unless [`Rule::times`] says).
#[derive(Debug, Clone)]
pub struct Rule {
    action: String,
    params: Vec<(String, String)>,
    role: Option<String>,
    after: Option<String>,
    nth: usize,
    times: usize,
    fault: Fault,
}

impl Rule {
    /// `fault`, once, on the next request of `action` (`"ListMFADevices"`, as
    /// IAM spells it in the `Action` form field).
    pub fn on(action: &str, fault: Fault) -> Rule {
        Rule {
            action: action.to_owned(),
            params: Vec::new(),
            role: None,
            after: None,
            nth: 1,
            times: 1,
            fault,
        }
    }

    /// Only requests whose form parameter `name` is `value`
    /// (`.with("AssignmentStatus", "Unassigned")`).
    pub fn with(mut self, name: &str, value: &str) -> Rule {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Only requests whose `RoleArn` names role `name` (after the last `/`
    /// of `arn:aws:iam::ACCOUNT:role/PATH/NAME`), in any account:
    /// `Rule::on("AssumeRole", Fault::access_denied()).role("Broken")`. For one
    /// account only, `.with("RoleArn", "arn:aws:iam::ACCOUNT:role/Broken")`.
    pub fn role(mut self, name: &str) -> Rule {
        self.role = Some(name.to_owned());
        self
    }

    /// Only once moto has answered an `action` request with 2xx since the rule
    /// was added.
    pub fn after(mut self, action: &str) -> Rule {
        self.after = Some(action.to_owned());
        self
    }

    /// Skip the first `n - 1` requests the rule matches (1 = the first).
    pub fn nth(mut self, n: usize) -> Rule {
        assert!(n >= 1, "nth counts from 1");
        self.nth = n;
        self
    }

    /// Apply the fault to `n` requests, then stop.
    pub fn times(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }

    /// Apply the fault to every request the rule matches.
    pub fn always(self) -> Rule {
        self.times(usize::MAX)
    }
}

/// A rule added to a proxy, to ask how often it fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleId(usize);

/// A running proxy. Dropping it stops it.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: SocketAddr,
    stop: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    rules: Vec<Active>,
    counts: HashMap<String, Counts>,
    /// Moto's last answer per action and parameters, with the request number.
    last: HashMap<String, (usize, Response)>,
    in_flight: Vec<InFlight>,
    log: Vec<String>,
    problems: Vec<String>,
    requests: usize,
}

struct Active {
    rule: Rule,
    /// `applied(rule.after)` when the rule was added.
    baseline: usize,
    matched: usize,
    fired: usize,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    seen: usize,
    sent: usize,
    applied: usize,
}

/// What to do with a request.
struct Decision {
    /// The request's number.
    no: usize,
    /// The rule that fired (its index) and its fault; none: forward.
    fault: Option<(usize, Fault)>,
    /// For a stale answer: the request it replays, and moto's answer to it.
    replay: Option<(usize, Response)>,
}

struct InFlight {
    no: usize,
    action: String,
    held: bool,
    released: bool,
}

impl Proxy {
    /// Start a proxy for `moto` on a free 127.0.0.1 port.
    pub fn start(moto: &Moto) -> Proxy {
        let upstream: SocketAddr = moto
            .url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("moto's url {} is not http://IP:PORT", moto.url));
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream,
            stop: AtomicBool::new(false),
            state: Mutex::default(),
            changed: Condvar::new(),
            threads: Mutex::default(),
        });
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("fault-proxy-accept".into())
                .spawn(move || accept(&shared, listener))
                .expect("starting the proxy's accept thread")
        };
        Proxy {
            url: format!("http://{addr}"),
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// Add a rule; it applies from the next request on. Rules are tried in
    /// the order they were added; one fault at most per request.
    pub fn add(&self, rule: Rule) -> RuleId {
        let mut s = self.shared.state();
        let baseline = rule.after.as_deref().map_or(0, |a| s.count(a).applied);
        s.rules.push(Active {
            rule,
            baseline,
            matched: 0,
            fired: 0,
        });
        RuleId(s.rules.len() - 1)
    }

    /// How many requests `rule` has faulted.
    pub fn fired(&self, rule: RuleId) -> usize {
        self.shared.state().rules[rule.0].fired
    }

    /// How many `action` requests reached the proxy (SDK retries included).
    pub fn seen(&self, action: &str) -> usize {
        self.shared.state().count(action).seen
    }

    /// How many `action` requests the proxy sent to moto.
    pub fn sent(&self, action: &str) -> usize {
        self.shared.state().count(action).sent
    }

    /// How many `action` requests moto answered with 2xx.
    pub fn applied(&self, action: &str) -> usize {
        self.shared.state().count(action).applied
    }

    /// One line per request so far: number, connection, action, parameters,
    /// and what the proxy did. For failure messages.
    pub fn log(&self) -> String {
        self.shared.state().render()
    }

    /// Wait until an `action` request is being held by a [`Fault::Stall`];
    /// panics with the log after `timeout`.
    pub fn wait_until_held(&self, action: &str, timeout: Duration) {
        self.shared.wait(&format!("a held {action}"), timeout, |s| {
            s.in_flight.iter().any(|f| f.held && f.action == action)
        });
    }

    /// End the stall of every `action` request being held now, as if its
    /// duration had passed; returns how many there were.
    pub fn release(&self, action: &str) -> usize {
        let mut s = self.shared.state();
        let mut n = 0;
        for f in s
            .in_flight
            .iter_mut()
            .filter(|f| f.held && f.action == action)
        {
            f.released = true;
            n += 1;
        }
        drop(s);
        self.shared.changed.notify_all();
        n
    }

    /// Wait until every request the proxy received has been answered or
    /// dropped (a released stall has been forwarded, say); panics with the log
    /// after `timeout`.
    pub fn wait_until_idle(&self, timeout: Duration) {
        self.shared
            .wait("no request in flight", timeout, |s| s.in_flight.is_empty());
    }

    /// The problems so far (requests the proxy could not handle), which would
    /// otherwise fail the test when the proxy is dropped.
    pub fn take_problems(&self) -> Vec<String> {
        std::mem::take(&mut self.shared.state().problems)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        drop(self.shared.state());
        self.shared.changed.notify_all();
        // Wake the accept loop, which sees the flag and ends. If even that
        // cannot connect, leave the thread rather than hang the test.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        if let Some(accept) = self.accept.take()
            && woke
        {
            let _ = accept.join();
        }
        // Every connection thread checks the flag at least every TICK.
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for t in threads {
            let _ = t.join();
        }
        let s = self.shared.state();
        if !s.problems.is_empty() && !std::thread::panicking() {
            panic!(
                "the fault proxy hit problems:\n  {}\nlog:\n{}",
                s.problems.join("\n  "),
                s.render()
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn wait(&self, what: &str, timeout: Duration, done: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + timeout;
        let mut s = self.state();
        while !done(&s) {
            let now = Instant::now();
            if now >= deadline {
                let log = s.render();
                drop(s);
                panic!("fault proxy: {what} did not happen within {timeout:?}; log:\n{log}");
            }
            s = self
                .changed
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn problem(&self, what: String) {
        let mut s = self.state();
        s.log.push(format!("PROBLEM: {what}"));
        s.problems.push(what);
    }

    /// Register a request and pick its fault.
    fn arrive(&self, req: &Request) -> Decision {
        let mut s = self.state();
        s.requests += 1;
        let no = s.requests;
        s.count_mut(&req.action).seen += 1;
        s.in_flight.push(InFlight {
            no,
            action: req.action.clone(),
            held: false,
            released: false,
        });
        let mut chosen = None;
        let mut replay = None;
        for i in 0..s.rules.len() {
            let after_ok = match &s.rules[i].rule.after {
                Some(a) => s.count(a).applied > s.rules[i].baseline,
                None => true,
            };
            let r = &mut s.rules[i];
            let matches = r.rule.action == req.action
                && r.rule.params.iter().all(|p| req.params.contains(p))
                && r.rule.role.as_deref().is_none_or(|n| req.role() == Some(n))
                && after_ok;
            if !matches {
                continue;
            }
            r.matched += 1;
            if chosen.is_some() || r.matched < r.rule.nth || r.fired >= r.rule.times {
                continue;
            }
            if r.rule.fault == Fault::Stale {
                let Some(last) = s.last.get(&req.key()) else {
                    continue;
                };
                replay = Some(last.clone());
            }
            let r = &mut s.rules[i];
            r.fired += 1;
            chosen = Some((i, r.rule.fault.clone()));
        }
        Decision {
            no,
            fault: chosen,
            replay,
        }
    }

    /// Unregister request `no`, logging what happened to it.
    fn done(&self, no: usize, conn: usize, req: &Request, did: &str) {
        let mut s = self.state();
        s.in_flight.retain(|f| f.no != no);
        s.log
            .push(format!("#{no} c{conn} {}: {did}", req.describe()));
        drop(s);
        self.changed.notify_all();
    }

    /// Hold request `no` until `duration` passes or it is released (`Ok`),
    /// or the proxy stops (`Err`).
    fn hold(&self, no: usize, duration: Duration) -> Result<&'static str, &'static str> {
        let deadline = Instant::now() + duration;
        let mut s = self.state();
        s.flight(no).held = true;
        self.changed.notify_all();
        let end = loop {
            if self.stopping() {
                break Err("the proxy stopped");
            }
            if s.flight(no).released {
                break Ok("released");
            }
            let now = Instant::now();
            if now >= deadline {
                break Ok("elapsed");
            }
            s = self
                .changed
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        s.flight(no).held = false;
        drop(s);
        self.changed.notify_all();
        end
    }

    /// Send `req` to moto on a fresh connection and read its answer,
    /// counting and recording it.
    fn forward(&self, no: usize, req: &Request) -> Result<Response, String> {
        let mut stream = TcpStream::connect_timeout(&self.upstream, CONNECT_TIMEOUT)
            .map_err(|e| format!("connecting to moto at {}: {e}", self.upstream))?;
        let mut out = format!("{}\r\n", req.head.start);
        for (k, v) in &req.head.headers {
            if !hop_by_hop(k) && !k.eq_ignore_ascii_case("content-length") {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            req.body.len()
        ));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&req.body);
        stream
            .set_write_timeout(Some(WRITE_TIMEOUT))
            .and_then(|()| stream.write_all(&bytes))
            .map_err(|e| format!("sending to moto: {e}"))?;
        self.state().count_mut(&req.action).sent += 1;
        let mut wire = Wire::new(stream, Some(Instant::now() + UPSTREAM_TIMEOUT))
            .map_err(|e| format!("reading from moto: {e}"))?;
        let resp = read_response(&mut wire, self).map_err(|e| format!("moto's answer: {e}"))?;
        let mut s = self.state();
        if (200..300).contains(&resp.status) {
            s.count_mut(&req.action).applied += 1;
        }
        s.last.insert(req.key(), (no, resp.clone()));
        drop(s);
        self.changed.notify_all();
        Ok(resp)
    }
}

impl State {
    fn count(&self, action: &str) -> Counts {
        self.counts.get(action).copied().unwrap_or_default()
    }

    fn count_mut(&mut self, action: &str) -> &mut Counts {
        self.counts.entry(action.to_owned()).or_default()
    }

    fn flight(&mut self, no: usize) -> &mut InFlight {
        self.in_flight
            .iter_mut()
            .find(|f| f.no == no)
            .expect("a request in flight")
    }

    fn render(&self) -> String {
        let mut out = self.log.join("\n");
        for f in &self.in_flight {
            out.push_str(&format!(
                "\n#{} {}: in flight{}",
                f.no,
                f.action,
                if f.held { ", held" } else { "" }
            ));
        }
        if out.is_empty() {
            out.push_str("(no requests)");
        }
        out
    }
}

fn accept(shared: &Arc<Shared>, listener: TcpListener) {
    let mut conns = 0;
    for stream in listener.incoming() {
        if shared.stopping() {
            break;
        }
        let Ok(stream) = stream else {
            // Out of file descriptors, say: don't spin.
            std::thread::sleep(TICK);
            continue;
        };
        conns += 1;
        let conn = conns;
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("fault-proxy-c{conn}"))
            .spawn(move || serve(&s, stream, conn));
        match spawned {
            Ok(t) => {
                let mut threads = lock(&shared.threads);
                threads.retain(|t| !t.is_finished());
                threads.push(t);
            }
            Err(e) => shared.problem(format!("starting a connection thread: {e}")),
        }
    }
}

/// Serve one client connection, request after request, until the client
/// closes it, a fault closes it, or the proxy stops.
fn serve(shared: &Shared, stream: TcpStream, conn: usize) {
    let Ok(mut wire) = Wire::new(stream, None) else {
        return;
    };
    loop {
        let head = match wire.head(shared) {
            Ok(Some(head)) => head,
            // Closed between requests, or the proxy stops.
            Ok(None) => return,
            Err(e) => {
                if !shared.stopping() {
                    shared.state().log.push(format!("c{conn}: client: {e}"));
                }
                return;
            }
        };
        if let Some(te) = head.get("transfer-encoding") {
            shared.problem(format!(
                "c{conn}: refused `{}` with Transfer-Encoding: {te}: the proxy reads only Content-Length bodies",
                head.start
            ));
            let refusal = plain(501, "chunked requests are not supported by the test proxy");
            wire.refuse(&refusal, shared);
            return;
        }
        let len = match head.content_length() {
            Ok(len) => len.unwrap_or(0),
            Err(e) => {
                shared.problem(format!("c{conn}: `{}`: {e}", head.start));
                wire.refuse(&plain(400, &e.to_string()), shared);
                return;
            }
        };
        if head.has("expect", "100-continue")
            && wire
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .is_err()
        {
            return;
        }
        let body = match wire.take(len, shared) {
            Ok(body) => body,
            Err(e) => {
                if !shared.stopping() {
                    shared
                        .state()
                        .log
                        .push(format!("c{conn}: client, `{}`: {e}", head.start));
                }
                return;
            }
        };
        let close = head.has("connection", "close") || head.start.ends_with("HTTP/1.0");
        let req = Request::new(head, body);
        let decision = shared.arrive(&req);
        let no = decision.no;
        let (did, reply) = act(shared, &req, decision);
        let (did, open) = match reply {
            Some(resp) => match resp.write_to(&mut wire.stream, close) {
                Ok(()) => (did, !close),
                Err(e) => (format!("{did}; the client is gone: {e}"), false),
            },
            None => {
                let _ = wire.stream.shutdown(Shutdown::Both);
                (format!("{did}; closed without answering"), false)
            }
        };
        shared.done(no, conn, &req, &did);
        if !open {
            return;
        }
    }
}

/// Carry out `decision`: returns what to log, and the answer to send (none:
/// close the connection).
fn act(shared: &Shared, req: &Request, decision: Decision) -> (String, Option<Response>) {
    let Decision { no, fault, replay } = decision;
    let forward = |did: String| match shared.forward(no, req) {
        Ok(resp) => (
            format!("{did}forwarded: moto said {}", resp.status),
            Some(resp),
        ),
        Err(e) => {
            if shared.stopping() {
                return (format!("{did}no answer: the proxy stopped"), None);
            }
            shared.problem(format!("#{no} {}: {e}", req.action));
            (
                format!("{did}forwarding failed: {e}"),
                Some(plain(
                    502,
                    &format!("the test proxy could not reach moto: {e}"),
                )),
            )
        }
    };
    let Some((rule, fault)) = fault else {
        return forward(String::new());
    };
    match fault {
        Fault::Stale => {
            let (from, resp) = replay.expect("a stale rule fires only with an answer to replay");
            (
                format!(
                    "stale (rule {rule}): replayed moto's {} to #{from}",
                    resp.status
                ),
                Some(resp),
            )
        }
        Fault::Error {
            status,
            code,
            message,
        } => (
            format!("error (rule {rule}): {status} {code}, not forwarded"),
            Some(iam_error(no, req, status, &code, &message)),
        ),
        Fault::Stall {
            duration,
            forward: at,
        } => {
            let stall = format!("stall (rule {rule}) {duration:?} {at:?}");
            match at {
                Forward::Before => match shared.hold(no, duration) {
                    Ok(end) => forward(format!("{stall}: {end}; ")),
                    Err(e) => (format!("{stall}: {e}, not forwarded"), None),
                },
                Forward::After => {
                    let (did, resp) = forward(format!("{stall}: "));
                    match shared.hold(no, duration) {
                        Ok(end) => (format!("{did}; {end}"), resp),
                        Err(e) => (format!("{did}; {e}"), None),
                    }
                }
                Forward::Never => {
                    let end = shared.hold(no, duration).unwrap_or_else(|e| e);
                    (format!("{stall}: {end}, not forwarded"), None)
                }
            }
        }
        Fault::Drop { forwarded: false } => (format!("drop (rule {rule}): not forwarded"), None),
        Fault::Drop { forwarded: true } => {
            let (did, _) = forward(format!("drop (rule {rule}): "));
            (did, None)
        }
    }
}

/// Connection-level headers, which a proxy must not pass on.
fn hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// A start line and headers.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: &[u8]) -> io::Result<Head> {
        let text = std::str::from_utf8(raw).map_err(|_| invalid("a head that is not UTF-8"))?;
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let headers = lines
            .map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| invalid(&format!("a header line without a colon: {l:?}")))
            })
            .collect::<io::Result<_>>()?;
        Ok(Head { start, headers })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether header `name` lists `token`.
    fn has(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn content_length(&self) -> io::Result<Option<usize>> {
        let Some(v) = self.get("content-length") else {
            return Ok(None);
        };
        let n: usize = v
            .parse()
            .map_err(|_| invalid(&format!("Content-Length {v:?}")))?;
        if n > MAX_BODY {
            return Err(invalid(&format!(
                "a body of {n} bytes (at most {MAX_BODY})"
            )));
        }
        Ok(Some(n))
    }
}

/// A client's request, with its IAM action and parameters.
struct Request {
    head: Head,
    body: Vec<u8>,
    action: String,
    /// The form parameters but `Action` and `Version`, in the order sent.
    params: Vec<(String, String)>,
    /// The API version (`2010-05-08` IAM, `2011-06-15` STS), if any.
    version: Option<String>,
}

impl Request {
    fn new(head: Head, body: Vec<u8>) -> Request {
        let query = head
            .start
            .split(' ')
            .nth(1)
            .and_then(|t| t.split_once('?'))
            .map_or("", |(_, q)| q);
        // JSON protocols (Organizations): `X-Amz-Target: Service.Operation`
        // and a JSON body, kept whole as one parameter.
        if let Some((_, op)) = head.get("x-amz-target").and_then(|t| t.rsplit_once('.')) {
            return Request {
                action: op.to_owned(),
                params: vec![(
                    "(body)".to_owned(),
                    String::from_utf8_lossy(&body).into_owned(),
                )],
                version: None,
                head,
                body,
            };
        }
        let mut all = form(query);
        all.extend(form(&String::from_utf8_lossy(&body)));
        let action = all
            .iter()
            .find(|(k, _)| k == "Action")
            .map_or_else(|| "(no Action)".to_owned(), |(_, v)| v.clone());
        let version = all
            .iter()
            .find(|(k, _)| k == "Version")
            .map(|(_, v)| v.clone());
        let params = all
            .into_iter()
            .filter(|(k, _)| k != "Action" && k != "Version")
            .collect();
        Request {
            head,
            body,
            action,
            params,
            version,
        }
    }

    /// The role name of the `RoleArn` parameter (`AssumeRole`), after its
    /// last `/`.
    fn role(&self) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == "RoleArn")
            .and_then(|(_, arn)| arn.rsplit_once('/'))
            .map(|(_, name)| name)
    }

    /// The action and parameters, in a canonical order: what makes two
    /// requests "the same" for [`Fault::Stale`].
    fn key(&self) -> String {
        let mut params: Vec<_> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        params.sort();
        format!("{}?{}", self.action, params.join("&"))
    }

    fn describe(&self) -> String {
        let mut out = self.action.clone();
        // The SDK numbers its attempts: "attempt=2; max=3".
        if let Some(attempt) = self
            .head
            .get("amz-sdk-request")
            .filter(|a| !a.starts_with("attempt=1;"))
        {
            out.push_str(&format!(" ({attempt})"));
        }
        for (k, v) in &self.params {
            let v: String = v.chars().take(80).collect();
            out.push_str(&format!(" {k}={v}"));
        }
        out
    }
}

/// `application/x-www-form-urlencoded` pairs.
fn form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP answer, moto's or the proxy's own.
#[derive(Clone)]
struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// Write with a `Content-Length` body (whatever framing moto used) and
    /// without moto's connection headers: the client's connection stays open
    /// unless `close`.
    fn write_to(&self, w: &mut TcpStream, close: bool) -> io::Result<()> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (k, v) in &self.headers {
            if !hop_by_hop(k) && !k.eq_ignore_ascii_case("content-length") {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        w.write_all(&bytes)?;
        w.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// An IAM (or STS) error answer, as IAM, STS and moto send them.
fn iam_error(no: usize, req: &Request, status: u16, code: &str, message: &str) -> Response {
    // STS's errors are in its own namespace.
    let ns = match req.version.as_deref() {
        Some("2011-06-15") => "https://sts.amazonaws.com/doc/2011-06-15/",
        _ => "https://iam.amazonaws.com/doc/2010-05-08/",
    };
    let id = format!("fa17fa17-0000-4000-8000-{no:012}");
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        r#"<ErrorResponse xmlns="{ns}"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{id}</RequestId></ErrorResponse>"#,
        xml_escape(code),
        xml_escape(message)
    );
    Response {
        status,
        reason: reason(status).to_owned(),
        headers: vec![
            ("Content-Type".to_owned(), "text/xml".to_owned()),
            ("x-amzn-RequestId".to_owned(), id),
        ],
        body: body.into_bytes(),
    }
}

/// The proxy's own complaint, for a request it cannot handle.
fn plain(status: u16, message: &str) -> Response {
    Response {
        status,
        reason: reason(status).to_owned(),
        headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
        body: format!("{message}\n").into_bytes(),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what.to_owned())
}

/// Moto's answer to a forwarded request, in whatever framing it used.
fn read_response(wire: &mut Wire, shared: &Shared) -> io::Result<Response> {
    loop {
        let head = wire.head(shared)?.ok_or_else(|| {
            io::Error::new(ErrorKind::UnexpectedEof, "moto closed without answering")
        })?;
        let mut parts = head.start.splitn(3, ' ');
        let _version = parts.next();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(&format!("a status line {:?}", head.start)))?;
        let reason = parts.next().unwrap_or_default().to_owned();
        if (100..200).contains(&status) {
            continue;
        }
        let body = if head.has("transfer-encoding", "chunked") {
            wire.chunked(shared)?
        } else if let Some(len) = head.content_length()? {
            wire.take(len, shared)?
        } else if status == 204 || status == 304 {
            Vec::new()
        } else {
            wire.until_closed(shared)?
        };
        return Ok(Response {
            status,
            reason,
            headers: head.headers,
            body,
        });
    }
}

/// A socket read through a buffer, with reads that wake every TICK to check
/// whether the proxy is stopping or the deadline passed.
struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Option<Instant>,
}

impl Wire {
    fn new(stream: TcpStream, deadline: Option<Instant>) -> io::Result<Wire> {
        stream.set_read_timeout(Some(TICK))?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Wire {
            stream,
            buf: Vec::new(),
            deadline,
        })
    }

    /// Answer `refusal` and close, after reading what the client still sends
    /// (for a while): closing with unread data would reset the connection,
    /// and the client might never read the refusal.
    fn refuse(&mut self, refusal: &Response, shared: &Shared) {
        if refusal.write_to(&mut self.stream, true).is_err() {
            return;
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        self.deadline = Some(Instant::now() + Duration::from_secs(1));
        while let Ok(n) = self.fill(shared) {
            self.buf.clear();
            if n == 0 {
                break;
            }
        }
    }

    /// Read more into the buffer; 0 at the end of the stream.
    fn fill(&mut self, shared: &Shared) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if shared.stopping() {
                return Err(io::Error::other("the proxy is stopping"));
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::new(ErrorKind::TimedOut, "no answer in time"));
            }
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next start line and headers; `None` if the peer closed cleanly
    /// before sending any.
    fn head(&mut self, shared: &Shared) -> io::Result<Option<Head>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 4).collect();
                return Head::parse(&raw[..end]).map(Some);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid(&format!("a head over {MAX_HEAD} bytes")));
            }
            if self.fill(shared)? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(ErrorKind::UnexpectedEof, "closed mid-head"))
                };
            }
        }
    }

    fn take(&mut self, n: usize, shared: &Shared) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill(shared)? == 0 {
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "closed mid-body"));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// One line, without its CRLF.
    fn line(&mut self, shared: &Shared) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line = self.buf.drain(..end + 2).take(end).collect();
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("a chunk line too long"));
            }
            if self.fill(shared)? == 0 {
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "closed mid-chunk"));
            }
        }
    }

    fn chunked(&mut self, shared: &Shared) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line(shared)?;
            let line = String::from_utf8_lossy(&line);
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| invalid(&format!("a chunk size {size:?}")))?;
            if size == 0 {
                // Trailers, up to an empty line.
                while !self.line(shared)?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(invalid(&format!("a body over {MAX_BODY} bytes")));
            }
            body.extend(self.take(size, shared)?);
            if !self.line(shared)?.is_empty() {
                return Err(invalid("a chunk not followed by CRLF"));
            }
        }
    }

    fn until_closed(&mut self, shared: &Shared) -> io::Result<Vec<u8>> {
        while self.fill(shared)? != 0 {
            if self.buf.len() > MAX_BODY {
                return Err(invalid(&format!("a body over {MAX_BODY} bytes")));
            }
        }
        Ok(std::mem::take(&mut self.buf))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
