//! The MFA recovery scenarios, as IAM state set up in moto. The end-to-end
//! tests run them live; `scripts/record-fixtures` records each into
//! `tests/fixtures/NAME/journal.jsonl`, which plain `cargo test` replays.

use super::moto::Moto;

/// One scenario: how to set IAM up, and how to run the recovery.
pub struct Scenario {
    /// The fixture directory's name.
    pub name: &'static str,
    /// The runbook it runs.
    pub runbook: &'static str,
    /// The user the run is for (empty: a runbook without a user, the audit).
    pub user: &'static str,
    /// Extra `runbook run` flags.
    pub flags: &'static [&'static str],
    /// The exit code the run must have.
    pub exit_code: i32,
    /// Set up IAM.
    pub setup: fn(&Moto),
}

/// `mfa-test` with a virtual device named after it, bystander `alice` with
/// hers, and an unrelated unassigned virtual device. Returns mfa-test's seed.
pub fn seed_world(moto: &Moto) -> String {
    let (_, seed) = moto.user_with_virtual("mfa-test", "mfa-test");
    moto.user_with_virtual("alice", "alice");
    moto.virtual_device("orphan");
    seed
}

/// Every recorded scenario.
pub const ALL: &[Scenario] = &[
    Scenario {
        runbook: "mfa-recovery",
        name: "seed-case",
        user: "mfa-test",
        flags: &["--yes"],
        exit_code: 0,
        setup: |m| {
            seed_world(m);
        },
    },
    Scenario {
        runbook: "mfa-recovery",
        name: "two-virtual-devices",
        user: "mfa-test",
        flags: &["--yes"],
        exit_code: 0,
        setup: |m| {
            m.user("mfa-test");
            let (a, _) = m.virtual_device("phone-a");
            let (b, _) = m.virtual_device("phone-b");
            m.enable("mfa-test", &a).enable("mfa-test", &b);
            m.virtual_device("orphan");
        },
    },
    Scenario {
        runbook: "mfa-recovery",
        name: "hardware-token",
        user: "mfa-test",
        flags: &["--yes"],
        exit_code: 0,
        setup: |m| {
            m.user("mfa-test").enable("mfa-test", "GAHT12345678");
        },
    },
    Scenario {
        runbook: "mfa-recovery",
        name: "no-mfa",
        user: "mfa-test",
        flags: &["--yes"],
        exit_code: 0,
        setup: |m| {
            m.user("mfa-test");
        },
    },
    Scenario {
        runbook: "mfa-recovery",
        name: "no-such-user",
        user: "no-such-user",
        flags: &["--yes"],
        exit_code: 1,
        setup: |m| {
            seed_world(m);
        },
    },
    Scenario {
        runbook: "mfa-recovery",
        name: "dry-run",
        user: "mfa-test",
        flags: &["--dry-run"],
        exit_code: 0,
        setup: |m| {
            seed_world(m);
        },
    },
    Scenario {
        runbook: "mfa-recovery",
        name: "refused-without-consent",
        user: "mfa-test",
        flags: &[],
        exit_code: 5,
        setup: |m| {
            seed_world(m);
        },
    },
    Scenario {
        runbook: "access-key-quarantine",
        name: "quarantine-every-active-key",
        user: "leaky",
        flags: &["--yes"],
        exit_code: 0,
        setup: |m| {
            m.user("leaky").user("alice");
            m.access_key("leaky");
            m.access_key("leaky");
            m.access_key("alice");
        },
    },
    Scenario {
        runbook: "access-key-quarantine",
        name: "quarantine-no-such-user",
        user: "nobody",
        flags: &["--yes"],
        exit_code: 1,
        setup: |m| {
            m.user("alice");
            m.access_key("alice");
        },
    },
    Scenario {
        runbook: "user-lockout",
        name: "lockout-with-bystander",
        user: "locked",
        flags: &["--yes"],
        exit_code: 0,
        setup: |m| {
            for user in ["locked", "alice"] {
                m.user(user).login_profile(user).in_group(user, "devs");
                m.access_key(user);
            }
        },
    },
    Scenario {
        runbook: "mfa-audit",
        name: "audit-console-users",
        user: "",
        flags: &["--yes"],
        exit_code: 0,
        setup: |m| {
            m.user("exposed").login_profile("exposed");
            m.user("guarded").login_profile("guarded");
            let (serial, _) = m.virtual_device("guarded");
            m.enable("guarded", &serial);
            m.user("api-only");
        },
    },
];
