//! A real IAM endpoint on loopback: moto's server (PyPI `moto[server]`, pinned in
//! tests/requirements.txt and installed by scripts/test into .venv), one per
//! test so tests run in parallel without sharing state. It is killed when the
//! `Moto` is dropped; start-up waits at most 30 s.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_iam::Client;
use aws_sdk_iam::types::AssignmentStatusType;

/// The account moto uses; virtual device ARNs name it.
pub const ACCOUNT: &str = "123456789012";

/// A running moto server and an IAM client for it.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    rt: tokio::runtime::Runtime,
    iam: Client,
}

fn moto_server() -> PathBuf {
    if let Some(p) = std::env::var_os("RUNBOOK_MOTO_SERVER") {
        return p.into();
    }
    let p = super::root().join(".venv/bin/moto_server");
    assert!(
        p.is_file(),
        "moto is not installed at {}: run scripts/test, which installs the pinned moto[server] into .venv (or set RUNBOOK_MOTO_SERVER)",
        p.display()
    );
    p
}

impl Moto {
    /// Start a server on a free 127.0.0.1 port and wait until it answers.
    pub fn start() -> Moto {
        Moto::start_with(false)
    }

    /// `start`, with AWS's managed policies (e.g.
    /// `AWSCompromisedKeyQuarantineV3`) loaded, as attaching one needs.
    pub fn start_with_managed_policies() -> Moto {
        Moto::start_with(true)
    }

    fn start_with(managed_policies: bool) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env(
                "MOTO_IAM_LOAD_MANAGED_POLICIES",
                if managed_policies { "true" } else { "false" },
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        let url = format!("http://127.0.0.1:{port}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = rt.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_iam::config::Credentials::new(
                    "testing", "testing", None, None, "tests",
                ))
                .endpoint_url(&url)
                .load(),
        );
        Moto {
            child,
            url,
            rt,
            iam: Client::new(&config),
        }
    }

    /// Create an IAM user.
    pub fn user(&self, name: &str) -> &Self {
        self.rt
            .block_on(self.iam.create_user().user_name(name).send())
            .expect("create-user");
        self
    }

    /// Create a virtual MFA device; returns its serial and its seed (which
    /// must never reach a journal).
    pub fn virtual_device(&self, name: &str) -> (String, String) {
        let out = self
            .rt
            .block_on(
                self.iam
                    .create_virtual_mfa_device()
                    .virtual_mfa_device_name(name)
                    .send(),
            )
            .expect("create-virtual-mfa-device");
        let d = out.virtual_mfa_device().expect("a device");
        let seed = d
            .base32_string_seed()
            .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
            .expect("moto returns the seed");
        (d.serial_number().to_owned(), seed)
    }

    /// Attach `serial` (virtual or hardware) to `user`.
    pub fn enable(&self, user: &str, serial: &str) -> &Self {
        self.rt
            .block_on(
                self.iam
                    .enable_mfa_device()
                    .user_name(user)
                    .serial_number(serial)
                    .authentication_code1("123456")
                    .authentication_code2("654321")
                    .send(),
            )
            .expect("enable-mfa-device");
        self
    }

    /// A user with a new virtual device of the given name attached; returns
    /// its serial and seed.
    pub fn user_with_virtual(&self, user: &str, device: &str) -> (String, String) {
        self.user(user);
        let (serial, seed) = self.virtual_device(device);
        self.enable(user, &serial);
        (serial, seed)
    }

    /// The serials attached to `user`.
    pub fn devices_of(&self, user: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(self.iam.list_mfa_devices().user_name(user).send())
            .expect("list-mfa-devices");
        out.mfa_devices()
            .iter()
            .map(|d| d.serial_number().to_owned())
            .collect()
    }

    /// Every virtual device as (serial, assigned user).
    pub fn virtual_devices(&self) -> Vec<(String, Option<String>)> {
        let out = self
            .rt
            .block_on(
                self.iam
                    .list_virtual_mfa_devices()
                    .assignment_status(AssignmentStatusType::Any)
                    .send(),
            )
            .expect("list-virtual-mfa-devices");
        let mut v: Vec<_> = out
            .virtual_mfa_devices()
            .iter()
            .map(|d| {
                (
                    d.serial_number().to_owned(),
                    d.user().map(|u| u.user_name().to_owned()),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// A new access key of `user`; returns its id (the secret is dropped).
    pub fn access_key(&self, user: &str) -> String {
        let out = self
            .rt
            .block_on(self.iam.create_access_key().user_name(user).send())
            .expect("create-access-key");
        out.access_key().expect("a key").access_key_id().to_owned()
    }

    /// `user`'s access keys as (id, status), sorted.
    pub fn access_keys(&self, user: &str) -> Vec<(String, String)> {
        let out = self
            .rt
            .block_on(self.iam.list_access_keys().user_name(user).send())
            .expect("list-access-keys");
        let mut keys: Vec<_> = out
            .access_key_metadata()
            .iter()
            .map(|k| {
                (
                    k.access_key_id().unwrap_or_default().to_owned(),
                    k.status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect();
        keys.sort();
        keys
    }

    /// Give `user` a console password.
    pub fn login_profile(&self, user: &str) -> &Self {
        self.rt
            .block_on(
                self.iam
                    .create_login_profile()
                    .user_name(user)
                    .password("Correct-horse-battery-9")
                    .send(),
            )
            .expect("create-login-profile");
        self
    }

    /// Whether `user` has a console password.
    pub fn has_login_profile(&self, user: &str) -> bool {
        self.rt
            .block_on(self.iam.get_login_profile().user_name(user).send())
            .is_ok()
    }

    /// Put `user` in group `group` (created if needed).
    pub fn in_group(&self, user: &str, group: &str) -> &Self {
        let _ = self
            .rt
            .block_on(self.iam.create_group().group_name(group).send());
        self.rt
            .block_on(
                self.iam
                    .add_user_to_group()
                    .group_name(group)
                    .user_name(user)
                    .send(),
            )
            .expect("add-user-to-group");
        self
    }

    /// The groups of `user`, by name.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(self.iam.list_groups_for_user().user_name(user).send())
            .expect("list-groups-for-user");
        out.groups()
            .iter()
            .map(|g| g.group_name().to_owned())
            .collect()
    }

    /// The document of `user`'s inline policy `name`, if there is one.
    pub fn inline_policy(&self, user: &str, name: &str) -> Option<String> {
        let out = self
            .rt
            .block_on(
                self.iam
                    .get_user_policy()
                    .user_name(user)
                    .policy_name(name)
                    .send(),
            )
            .ok()?;
        // IAM returns policy documents URL-encoded.
        let encoded = out.policy_document().as_bytes();
        let mut decoded = Vec::with_capacity(encoded.len());
        let mut i = 0;
        while i < encoded.len() {
            match (encoded[i], encoded.get(i + 1..i + 3)) {
                (b'%', Some(hex)) => {
                    let hex = std::str::from_utf8(hex).expect("ASCII hex");
                    decoded.push(u8::from_str_radix(hex, 16).expect("a %XX escape"));
                    i += 3;
                }
                (b, _) => {
                    decoded.push(b);
                    i += 1;
                }
            }
        }
        Some(String::from_utf8(decoded).expect("a UTF-8 document"))
    }

    /// The managed policies attached to `user`, as ARNs.
    pub fn attached_policies(&self, user: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(
                self.iam
                    .list_attached_user_policies()
                    .user_name(user)
                    .send(),
            )
            .expect("list-attached-user-policies");
        out.attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect()
    }

    /// `user`'s tags as (key, value).
    pub fn tags_of(&self, user: &str) -> Vec<(String, String)> {
        let out = self
            .rt
            .block_on(self.iam.list_user_tags().user_name(user).send())
            .expect("list-user-tags");
        out.tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect()
    }

    /// A snapshot of all MFA state, to assert nothing changed.
    pub fn state(&self, users: &[&str]) -> Vec<String> {
        let mut s: Vec<String> = users
            .iter()
            .map(|u| format!("{u}: {:?}", self.devices_of(u)))
            .collect();
        s.push(format!("virtual: {:?}", self.virtual_devices()));
        s
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ARN of virtual device `name` in moto's account.
pub fn arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:mfa/{name}")
}
