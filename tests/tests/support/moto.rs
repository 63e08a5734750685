//! A real IAM endpoint on loopback: moto's server (PyPI `moto[server]`, pinned in
//! tests/requirements.txt and installed by scripts/test into .venv), one per
//! test so tests run in parallel without sharing state. It is killed when the
//! `Moto` is dropped; start-up waits at most 30 s.
//!
//! One server is a whole multi-account world (moto 5.2.5 serves every service
//! on its one port and keeps state per account id):
//!
//! - [`Moto::organization`] creates the Organization (the caller's account,
//!   [`ACCOUNT`], is its management account) and member accounts through
//!   Organizations' API, so `organizations:ListAccounts` (and so
//!   `runbook run --accounts org`) finds them. moto creates an account at once
//!   (`CreateAccount` answers `SUCCEEDED`, with a random 12-digit id) and
//!   `ListAccounts` lists the management account too, all `ACTIVE`.
//! - [`Moto::in_account`] assumes `arn:aws:iam::ACCOUNT:role/ROLE` with STS and
//!   returns an [`Account`]: the same helpers as on `Moto`, in that account.
//!   moto never refuses `AssumeRole`: the role need not exist (no IAM role is
//!   created or checked, nor the trust policy or an external id), and any
//!   12-digit-or-not account id is accepted. The credentials it hands out map
//!   to that account id, and every IAM call made with them reads and writes
//!   that account's IAM state: a user made in one account is invisible in the
//!   others and in [`ACCOUNT`], and two roles assumed into one account see the
//!   same state. To make one role fail on purpose, put the fault proxy in
//!   front and `Rule::on("AssumeRole", Fault::access_denied()).role("NAME")`.
//!
//! A `Moto` dereferences to the [`Account`] of its own credentials
//! ([`ACCOUNT`]), so `moto.user("alice")` works as it always did.

use std::net::{TcpListener, TcpStream};
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_iam::Client;
use aws_sdk_iam::config::Credentials;
use aws_sdk_iam::types::AssignmentStatusType;
use aws_sdk_organizations::error::ProvideErrorMetadata;
use aws_sdk_organizations::types::{AccountStatus, CreateAccountState};

/// The account moto uses for credentials it did not hand out (ours,
/// `testing`); virtual device ARNs name it.
pub const ACCOUNT: &str = "123456789012";

/// A running moto server, and the [`Account`] of its default credentials.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    config: aws_config::SdkConfig,
    own: Account,
}

/// IAM in one account of a [`Moto`]: the helpers the tests set up and
/// inspect IAM state with, through one IAM client (the default credentials,
/// or credentials assumed into another account).
pub struct Account {
    /// The 12-digit account id.
    pub id: String,
    rt: Arc<tokio::runtime::Runtime>,
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
                .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
                .endpoint_url(&url)
                .load(),
        );
        Moto {
            child,
            url,
            own: Account {
                id: ACCOUNT.to_owned(),
                rt: Arc::new(rt),
                iam: Client::new(&config),
            },
            config,
        }
    }

    /// Create the Organization (once; [`ACCOUNT`] is its management account)
    /// and `n` new member accounts; returns their ids, in creation order.
    pub fn organization(&self, n: usize) -> Vec<String> {
        let org = aws_sdk_organizations::Client::new(&self.config);
        let created = self.rt.block_on(
            org.create_organization()
                .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
                .send(),
        );
        if let Err(e) = created
            && e.code() != Some("AlreadyInOrganizationException")
        {
            panic!("create-organization: {e:?}");
        }
        let before = self.org_accounts().len();
        (0..n)
            .map(|i| {
                let k = before + i;
                let out = self
                    .rt
                    .block_on(
                        org.create_account()
                            .account_name(format!("member-{k}"))
                            .email(format!("member-{k}@example.com"))
                            .send(),
                    )
                    .expect("create-account");
                let status = out.create_account_status().expect("a status");
                // moto creates the account at once; AWS would answer
                // IN_PROGRESS and need DescribeCreateAccountStatus polling.
                assert_eq!(
                    status.state(),
                    Some(&CreateAccountState::Succeeded),
                    "moto did not create member-{k} at once: {status:?}"
                );
                status.account_id().expect("an account id").to_owned()
            })
            .collect()
    }

    /// The ids of the Organization's `ACTIVE` accounts, as
    /// `organizations:ListAccounts` (every page) gives them, sorted: the
    /// management account [`ACCOUNT`] among them.
    pub fn org_accounts(&self) -> Vec<String> {
        self.org_accounts_at(&self.url)
    }

    /// [`Moto::org_accounts`], asked of `endpoint` (a fault proxy's url, say).
    pub fn org_accounts_at(&self, endpoint: &str) -> Vec<String> {
        let org = aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&self.config)
                .endpoint_url(endpoint)
                .build(),
        );
        let pages: Vec<_> = self
            .rt
            .block_on(
                org.list_accounts()
                    .into_paginator()
                    .send()
                    .collect::<Vec<_>>(),
            )
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("list-accounts");
        let mut ids: Vec<String> = pages
            .iter()
            .flat_map(|p| p.accounts())
            .filter(|a| a.status() == Some(&AccountStatus::Active))
            .filter_map(|a| a.id().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }

    /// IAM in `account`, through credentials from `sts:AssumeRole` of
    /// `arn:aws:iam::ACCOUNT:role/ROLE` (which moto grants whether or not the
    /// role exists).
    pub fn in_account(&self, account: &str, role: &str) -> Account {
        let creds = self
            .assume(&self.url, account, role)
            .unwrap_or_else(|e| panic!("assume-role {role} in {account}: {e}"));
        let conf = aws_sdk_iam::config::Builder::from(&self.config)
            .credentials_provider(creds)
            .build();
        Account {
            id: account.to_owned(),
            rt: self.rt.clone(),
            iam: Client::from_conf(conf),
        }
    }

    /// `sts:AssumeRole` of `arn:aws:iam::ACCOUNT:role/ROLE` sent to
    /// `endpoint` (a fault proxy's url, say): the assumed role's ARN, or the
    /// error as `CODE: message`.
    pub fn try_assume_role(
        &self,
        endpoint: &str,
        account: &str,
        role: &str,
    ) -> Result<String, String> {
        self.assume(endpoint, account, role).map(|c| {
            let who = aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&self.config)
                    .endpoint_url(endpoint)
                    .credentials_provider(c)
                    .build(),
            );
            let me = self
                .rt
                .block_on(who.get_caller_identity().send())
                .expect("get-caller-identity with assumed credentials");
            me.arn().unwrap_or_default().to_owned()
        })
    }

    fn assume(&self, endpoint: &str, account: &str, role: &str) -> Result<Credentials, String> {
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.config)
                .endpoint_url(endpoint)
                .build(),
        );
        let out = self
            .rt
            .block_on(
                sts.assume_role()
                    .role_arn(format!("arn:aws:iam::{account}:role/{role}"))
                    .role_session_name("runbook-tests")
                    .send(),
            )
            .map_err(|e| {
                format!(
                    "{}: {}",
                    e.code().unwrap_or("(no code)"),
                    e.message().unwrap_or_default()
                )
            })?;
        let c = out.credentials().expect("credentials");
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "assumed-role",
        ))
    }
}

impl Deref for Moto {
    type Target = Account;

    fn deref(&self) -> &Account {
        &self.own
    }
}

impl Account {
    /// The ARN of virtual device `name` in this account.
    pub fn arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:mfa/{name}", self.id)
    }

    /// The names of every IAM user in this account, sorted.
    pub fn users(&self) -> Vec<String> {
        let pages: Vec<_> = self
            .rt
            .block_on(
                self.iam
                    .list_users()
                    .into_paginator()
                    .send()
                    .collect::<Vec<_>>(),
            )
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("list-users");
        let mut names: Vec<String> = pages
            .iter()
            .flat_map(|p| p.users())
            .map(|u| u.user_name().to_owned())
            .collect();
        names.sort();
        names
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
