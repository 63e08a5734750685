use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_iam::Client;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_iam::operation::RequestId;
use aws_sdk_iam::types::AssignmentStatusType;

use crate::support::moto::{Moto, arn};
use crate::support::proxy::{Fault, Forward, Proxy, Rule};

/// An IAM client for a proxy, with the test credentials moto.rs uses.
struct Iam {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Iam {
    /// One attempt per call: what the proxy does to a request is what the
    /// test sees.
    fn single(proxy: &Proxy) -> Iam {
        Iam::new(&proxy.url, RetryConfig::disabled(), None)
    }

    /// The SDK's standard retries (3 attempts), with short back-offs.
    fn retrying(proxy: &Proxy) -> Iam {
        let retry = RetryConfig::standard().with_initial_backoff(Duration::from_millis(10));
        Iam::new(&proxy.url, retry, None)
    }

    fn new(url: &str, retry: RetryConfig, operation_timeout: Option<Duration>) -> Iam {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut timeouts = TimeoutConfig::builder();
        if let Some(t) = operation_timeout {
            timeouts = timeouts.operation_timeout(t);
        }
        let config = rt.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_iam::config::Credentials::new(
                    "testing", "testing", None, None, "tests",
                ))
                .endpoint_url(url)
                .retry_config(retry)
                .timeout_config(timeouts.build())
                .load(),
        );
        Iam {
            rt,
            client: Client::new(&config),
        }
    }

    fn run<T>(&self, call: impl Future<Output = T>) -> T {
        self.rt.block_on(call)
    }

    fn devices_of(&self, user: &str) -> Vec<String> {
        let out = self
            .run(self.client.list_mfa_devices().user_name(user).send())
            .unwrap_or_else(|e| panic!("list-mfa-devices: {}", DisplayErrorContext(e)));
        out.mfa_devices()
            .iter()
            .map(|d| d.serial_number().to_owned())
            .collect()
    }

    fn unassigned(&self) -> Vec<String> {
        let out = self
            .run(
                self.client
                    .list_virtual_mfa_devices()
                    .assignment_status(AssignmentStatusType::Unassigned)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("list-virtual-mfa-devices: {}", DisplayErrorContext(e)));
        let mut v: Vec<_> = out
            .virtual_mfa_devices()
            .iter()
            .map(|d| d.serial_number().to_owned())
            .collect();
        v.sort();
        v
    }
}

#[test]
fn stale_lists_after_a_deactivate_show_the_old_devices_then_the_truth() {
    let moto = Moto::start();
    let (serial, _) = moto.user_with_virtual("mfa-test", "mfa-test");
    moto.virtual_device("orphan");
    let proxy = Proxy::start(&moto);
    let stale_devices = proxy.add(
        Rule::on("ListMFADevices", Fault::Stale)
            .after("DeactivateMFADevice")
            .times(2),
    );
    let stale_unassigned = proxy.add(
        Rule::on("ListVirtualMFADevices", Fault::Stale)
            .with("AssignmentStatus", "Unassigned")
            .after("DeactivateMFADevice"),
    );
    let iam = Iam::single(&proxy);

    // The answers the stale ones will replay.
    assert_eq!(iam.devices_of("mfa-test"), [serial.as_str()]);
    assert_eq!(iam.unassigned(), [arn("orphan")]);
    assert_eq!(proxy.fired(stale_devices), 0, "not before the deactivate");

    iam.run(
        iam.client
            .deactivate_mfa_device()
            .user_name("mfa-test")
            .serial_number(&serial)
            .send(),
    )
    .expect("deactivate-mfa-device");
    assert_eq!(
        moto.devices_of("mfa-test"),
        Vec::<String>::new(),
        "the truth"
    );
    for _ in 0..2 {
        assert_eq!(
            iam.devices_of("mfa-test"),
            [serial.as_str()],
            "stale: the device is still listed\n{}",
            proxy.log()
        );
    }
    assert_eq!(
        iam.unassigned(),
        [arn("orphan")],
        "stale: the detached device is missing"
    );
    assert_eq!(
        iam.devices_of("mfa-test"),
        Vec::<String>::new(),
        "then the truth"
    );
    assert_eq!(iam.unassigned(), [arn("mfa-test"), arn("orphan")]);

    let log = proxy.log();
    assert_eq!(proxy.fired(stale_devices), 2, "{log}");
    assert_eq!(proxy.fired(stale_unassigned), 1, "{log}");
    assert_eq!(proxy.seen("ListMFADevices"), 4, "{log}");
    assert_eq!(proxy.seen("ListVirtualMFADevices"), 3, "{log}");
    for action in ["ListMFADevices", "ListVirtualMFADevices"] {
        assert_eq!(
            proxy.sent(action),
            2,
            "{action}: stale answers stay in the proxy\n{log}"
        );
        assert_eq!(proxy.applied(action), 2, "{action}\n{log}");
    }
    assert_eq!(proxy.sent("DeactivateMFADevice"), 1, "{log}");
    assert_eq!(proxy.applied("DeactivateMFADevice"), 1, "{log}");
}

#[test]
fn injected_errors_reach_the_sdk_as_iam_error_codes_and_never_reach_moto() {
    let moto = Moto::start();
    let (serial, _) = moto.virtual_device("orphan");
    let proxy = Proxy::start(&moto);
    let iam = Iam::single(&proxy);
    let delete = || {
        iam.run(
            iam.client
                .delete_virtual_mfa_device()
                .serial_number(&serial)
                .send(),
        )
        .map_err(Box::new)
    };

    let delete_conflict = proxy.add(Rule::on("DeleteVirtualMFADevice", Fault::delete_conflict()));
    let err = delete().expect_err("an injected DeleteConflict");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_delete_conflict_exception()),
        "{}",
        DisplayErrorContext(&err)
    );
    assert_eq!(proxy.fired(delete_conflict), 1);
    for (fault, status, code) in [
        (Fault::delete_conflict(), 409, "DeleteConflict"),
        (
            Fault::concurrent_modification(),
            409,
            "ConcurrentModification",
        ),
        (
            Fault::temporarily_unmodifiable(),
            409,
            "EntityTemporarilyUnmodifiable",
        ),
        (Fault::throttling(), 400, "Throttling"),
        (
            Fault::error(500, "ServiceFailure", "oops"),
            500,
            "ServiceFailure",
        ),
    ] {
        proxy.add(Rule::on("DeleteVirtualMFADevice", fault));
        let err = delete().expect_err(code);
        assert_eq!(err.code(), Some(code), "{}", DisplayErrorContext(&err));
        assert!(err.message().is_some_and(|m| !m.is_empty()), "{code}");
        assert!(err.request_id().is_some(), "{code}: a request id");
        let raw = err.raw_response().expect("an HTTP answer");
        assert_eq!(raw.status().as_u16(), status, "{code}");
    }
    assert_eq!(proxy.sent("DeleteVirtualMFADevice"), 0, "{}", proxy.log());
    assert_eq!(moto.virtual_devices(), [(arn("orphan"), None)]);

    delete().expect("the rules are used up: moto deletes the device");
    assert_eq!(proxy.seen("DeleteVirtualMFADevice"), 7);
    assert_eq!(proxy.sent("DeleteVirtualMFADevice"), 1);
    assert_eq!(proxy.applied("DeleteVirtualMFADevice"), 1);
    assert_eq!(moto.virtual_devices(), []);

    // The SDK's standard retries (3 attempts) hide two throttles; they do not
    // retry ConcurrentModification.
    let retrying = Iam::retrying(&proxy);
    let list = || {
        retrying
            .run(
                retrying
                    .client
                    .list_mfa_devices()
                    .user_name("nobody")
                    .send(),
            )
            .map_err(Box::new)
    };
    proxy.add(Rule::on("ListMFADevices", Fault::throttling()).times(2));
    let err = list().expect_err("moto: no such user");
    assert_eq!(
        err.code(),
        Some("NoSuchEntity"),
        "{}",
        DisplayErrorContext(&err)
    );
    assert_eq!(proxy.seen("ListMFADevices"), 3, "{}", proxy.log());
    assert_eq!(proxy.sent("ListMFADevices"), 1);
    proxy.add(Rule::on("ListMFADevices", Fault::concurrent_modification()));
    let err = list().expect_err("ConcurrentModification");
    assert_eq!(err.code(), Some("ConcurrentModification"));
    assert_eq!(proxy.seen("ListMFADevices"), 4, "{}", proxy.log());
}

#[test]
fn a_stall_delays_the_answer_and_a_shorter_operation_timeout_cuts_it() {
    let moto = Moto::start();
    let (serial, _) = moto.user_with_virtual("mfa-test", "mfa-test");
    let proxy = Proxy::start(&moto);
    let iam = Iam::single(&proxy);
    proxy.add(
        Rule::on(
            "ListMFADevices",
            Fault::Stall {
                duration: Duration::from_secs(1),
                forward: Forward::Before,
            },
        )
        .nth(2),
    );
    iam.devices_of("mfa-test"); // not stalled; moto's first answer is slower
    let t = Instant::now();
    assert_eq!(iam.devices_of("mfa-test"), [serial.as_str()]);
    let stalled = t.elapsed();
    let t = Instant::now();
    iam.devices_of("mfa-test");
    let unstalled = t.elapsed();
    assert!(
        stalled >= Duration::from_secs(1) && stalled < Duration::from_secs(2),
        "{stalled:?}"
    );
    assert!(unstalled < Duration::from_millis(500), "{unstalled:?}");

    // A deactivate held past the client's deadline: the client gives up, and
    // the proxy, like IAM, applies it anyway once the stall ends.
    proxy.add(Rule::on(
        "DeactivateMFADevice",
        Fault::Stall {
            duration: Duration::from_secs(5),
            forward: Forward::Before,
        },
    ));
    let hasty = Iam::new(
        &proxy.url,
        RetryConfig::disabled(),
        Some(Duration::from_millis(300)),
    );
    let t = Instant::now();
    let err = hasty
        .run(
            hasty
                .client
                .deactivate_mfa_device()
                .user_name("mfa-test")
                .serial_number(&serial)
                .send(),
        )
        .expect_err("the operation timeout");
    assert!(
        matches!(err, SdkError::TimeoutError(_)),
        "{}",
        DisplayErrorContext(&err)
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    proxy.wait_until_held("DeactivateMFADevice", Duration::from_secs(1));
    assert_eq!(proxy.sent("DeactivateMFADevice"), 0);
    assert_eq!(moto.devices_of("mfa-test"), [serial.as_str()]);

    assert_eq!(proxy.release("DeactivateMFADevice"), 1);
    proxy.wait_until_idle(Duration::from_secs(5));
    assert_eq!(proxy.applied("DeactivateMFADevice"), 1, "{}", proxy.log());
    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new());
}

#[test]
fn a_connection_dropped_after_forwarding_applied_what_the_client_never_heard_of() {
    let moto = Moto::start();
    let (serial, _) = moto.user_with_virtual("mfa-test", "mfa-test");
    let proxy = Proxy::start(&moto);
    let iam = Iam::single(&proxy);

    proxy.add(Rule::on(
        "DeactivateMFADevice",
        Fault::Drop { forwarded: true },
    ));
    let err = iam
        .run(
            iam.client
                .deactivate_mfa_device()
                .user_name("mfa-test")
                .serial_number(&serial)
                .send(),
        )
        .expect_err("no answer");
    assert!(
        matches!(err, SdkError::DispatchFailure(_)),
        "{}",
        DisplayErrorContext(&err)
    );
    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new(), "applied");
    assert_eq!(proxy.sent("DeactivateMFADevice"), 1);
    assert_eq!(proxy.applied("DeactivateMFADevice"), 1);

    let delete = |iam: &Iam| {
        iam.run(
            iam.client
                .delete_virtual_mfa_device()
                .serial_number(&serial)
                .send(),
        )
        .map_err(Box::new)
    };
    proxy.add(Rule::on(
        "DeleteVirtualMFADevice",
        Fault::Drop { forwarded: false },
    ));
    let err = delete(&iam).expect_err("no answer");
    assert!(
        matches!(*err, SdkError::DispatchFailure(_)),
        "{}",
        DisplayErrorContext(&err)
    );
    assert_eq!(proxy.sent("DeleteVirtualMFADevice"), 0);
    assert_eq!(
        moto.virtual_devices(),
        [(serial.clone(), None)],
        "not applied"
    );

    // The SDK's standard retries resend a mutation whose answer was lost: it
    // reaches IAM twice, and the second attempt's answer is what the caller
    // sees.
    proxy.add(Rule::on(
        "DeleteVirtualMFADevice",
        Fault::Drop { forwarded: true },
    ));
    let err = delete(&Iam::retrying(&proxy)).expect_err("the resend finds nothing to delete");
    assert_eq!(
        err.code(),
        Some("NoSuchEntity"),
        "{}",
        DisplayErrorContext(&err)
    );
    assert_eq!(proxy.sent("DeleteVirtualMFADevice"), 2, "{}", proxy.log());
    assert_eq!(proxy.applied("DeleteVirtualMFADevice"), 1);
    assert_eq!(moto.virtual_devices(), []);
}

/// A client in its own process, to kill: python3 (which moto needs anyway)
/// posting one IAM request. moto does not check signatures; it routes on
/// the credential scope.
fn client_process(url: &str, form: &str) -> std::process::Child {
    const POST: &str = "import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={
    'Content-Type': 'application/x-www-form-urlencoded',
    'Authorization': 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0',
}), timeout=30)";
    Command::new("python3")
        .args(["-c", POST, url, form])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting python3")
}

#[test]
fn wait_until_held_lets_a_test_kill_the_client_mid_call() {
    let moto = Moto::start();
    let (serial, _) = moto.user_with_virtual("mfa-test", "mfa-test");
    let proxy = Proxy::start(&moto);
    proxy.add(Rule::on(
        "DeactivateMFADevice",
        Fault::Stall {
            duration: Duration::from_secs(10),
            forward: Forward::After,
        },
    ));
    let mut client = client_process(
        &proxy.url,
        &format!(
            "Action=DeactivateMFADevice&Version=2010-05-08&UserName=mfa-test&SerialNumber={}",
            serial.replace(':', "%3A").replace('/', "%2F")
        ),
    );
    proxy.wait_until_held("DeactivateMFADevice", Duration::from_secs(5));
    client.kill().expect("SIGKILL");
    client.wait().expect("the killed client");

    assert_eq!(proxy.applied("DeactivateMFADevice"), 1, "{}", proxy.log());
    assert_eq!(moto.devices_of("mfa-test"), Vec::<String>::new());
    assert_eq!(proxy.release("DeactivateMFADevice"), 1);
    proxy.wait_until_idle(Duration::from_secs(5));
    assert_eq!(proxy.sent("DeactivateMFADevice"), 1, "{}", proxy.log());
}

#[test]
fn dropping_the_proxy_ends_its_stalls_and_connections_and_frees_its_port() {
    let moto = Moto::start();
    let (serial, _) = moto.user_with_virtual("mfa-test", "mfa-test");
    let proxy = Proxy::start(&moto);
    let addr: SocketAddr = proxy.url["http://".len()..].parse().unwrap();
    proxy.add(Rule::on(
        "DeactivateMFADevice",
        Fault::Stall {
            duration: Duration::from_secs(60),
            forward: Forward::Never,
        },
    ));
    let mut idle = TcpStream::connect(addr).expect("an idle connection");
    let url = proxy.url.clone();
    let call = std::thread::spawn(move || {
        let iam = Iam::new(&url, RetryConfig::disabled(), None);
        iam.run(
            iam.client
                .deactivate_mfa_device()
                .user_name("mfa-test")
                .serial_number(serial)
                .send(),
        )
        .is_err()
    });
    proxy.wait_until_held("DeactivateMFADevice", Duration::from_secs(5));

    let t = Instant::now();
    drop(proxy);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "drop joins every thread: {:?}",
        t.elapsed()
    );
    assert!(call.join().unwrap(), "the held call fails");
    idle.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(
        idle.read(&mut [0; 1]).ok(),
        Some(0),
        "the idle connection is closed"
    );
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "nothing listens on {addr} any more"
    );
    assert_eq!(moto.devices_of("mfa-test").len(), 1, "never forwarded");
}

/// A fake SigV4 header: moto routes on its credential scope.
const AUTH: &str = "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\n";

/// Read one response: status, headers (lowercase names), body.
fn response(r: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>, String) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let Some((k, v)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((k.to_lowercase(), v.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status, headers, String::from_utf8(body).unwrap())
}

#[test]
fn the_proxy_keeps_connections_alive_answers_expect_continue_and_refuses_chunked_bodies() {
    let moto = Moto::start();
    moto.user("bob");
    let proxy = Proxy::start(&moto);
    let conn = TcpStream::connect(&proxy.url["http://".len()..]).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut conn = BufReader::new(conn);
    let body = "Action=ListUsers&Version=2010-05-08";
    let head = format!(
        "POST / HTTP/1.1\r\nHost: iam.amazonaws.com\r\nContent-Type: application/x-www-form-urlencoded\r\n{AUTH}Content-Length: {}\r\n",
        body.len()
    );

    let w = conn.get_mut();
    w.write_all(format!("{head}Expect: 100-continue\r\n\r\n").as_bytes())
        .unwrap();
    let (status, _, _) = response(&mut conn);
    assert_eq!(status, 100);
    conn.get_mut().write_all(body.as_bytes()).unwrap();
    let (status, headers, text) = response(&mut conn);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("<UserName>bob</UserName>"), "{text}");
    assert!(
        !headers.iter().any(|(k, _)| k == "connection"),
        "moto's Connection: close is not passed on: {headers:?}"
    );

    conn.get_mut()
        .write_all(format!("{head}\r\n{body}").as_bytes())
        .unwrap();
    let (status, _, text) = response(&mut conn);
    assert_eq!(
        status, 200,
        "the same connection serves a second request: {text}"
    );

    conn.get_mut()
        .write_all(
            format!(
                "POST / HTTP/1.1\r\nHost: iam.amazonaws.com\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    let (status, _, text) = response(&mut conn);
    assert_eq!(status, 501, "{text}");
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest)
        .expect("the proxy closes the connection");
    assert!(rest.is_empty());
    let problems = proxy.take_problems();
    assert!(
        problems.len() == 1 && problems[0].contains("Transfer-Encoding: chunked"),
        "{problems:?}"
    );

    let log = proxy.log();
    assert_eq!(proxy.seen("ListUsers"), 2, "{log}");
    assert_eq!(proxy.sent("ListUsers"), 2, "{log}");
    assert_eq!(proxy.applied("ListUsers"), 2, "{log}");
    assert_eq!(log.matches(" c1 ListUsers").count(), 2, "{log}");
}
