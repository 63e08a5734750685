//! The multi-account world fleet tests run in: one moto holding an
//! Organization and its member accounts, IAM state kept per account, and a
//! role that cannot be assumed made so on purpose by the fault proxy.

use crate::support::moto::{ACCOUNT, Moto};
use crate::support::proxy::{Fault, Proxy, Rule};

#[test]
fn three_accounts_keep_their_own_iam_users_and_list_accounts_lists_them() {
    let moto = Moto::start();
    let ids = moto.organization(3);
    assert_eq!(ids.len(), 3);
    for id in &ids {
        assert!(
            id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()),
            "{id}"
        );
    }
    // ListAccounts: the three members and the management account (ours).
    let mut expected = ids.clone();
    expected.push(ACCOUNT.to_owned());
    expected.sort();
    assert_eq!(moto.org_accounts(), expected);

    let a = moto.in_account(&ids[0], "FleetRole");
    let b = moto.in_account(&ids[1], "FleetRole");
    let c = moto.in_account(&ids[2], "FleetRole");
    let (serial, _) = a.user_with_virtual("alice", "alice");
    a.login_profile("alice");
    b.user("bob");

    // Each account sees its own users only; ours sees none of them.
    assert_eq!(a.users(), ["alice"]);
    assert_eq!(b.users(), ["bob"]);
    assert!(c.users().is_empty(), "{:?}", c.users());
    assert!(moto.users().is_empty(), "{:?}", moto.users());

    // The device is alice's, in her account, named by that account's ARN.
    assert_eq!(serial, a.arn("alice"));
    assert_eq!(serial, format!("arn:aws:iam::{}:mfa/alice", ids[0]));
    assert_eq!(a.devices_of("alice"), std::slice::from_ref(&serial));
    assert_eq!(
        a.virtual_devices(),
        [(serial.clone(), Some("alice".to_owned()))]
    );
    assert!(b.virtual_devices().is_empty());
    assert!(a.has_login_profile("alice"));

    // Another role into the same account sees the same state.
    let a2 = moto.in_account(&ids[0], "SomeOtherRole");
    assert_eq!(a2.users(), ["alice"]);
    assert_eq!(a2.devices_of("alice"), [serial]);

    // A second call adds accounts to the same Organization.
    let more = moto.organization(1);
    assert_eq!(moto.org_accounts().len(), 5);
    assert!(!ids.contains(&more[0]));
}

#[test]
fn the_proxy_denies_assuming_one_role_by_name_in_every_account_and_only_that_role() {
    let moto = Moto::start();
    let ids = moto.organization(2);
    let proxy = Proxy::start(&moto);
    let denied = proxy.add(
        Rule::on("AssumeRole", Fault::access_denied())
            .role("Broken")
            .always(),
    );
    // Only in the first account: an exact RoleArn.
    let one = proxy.add(
        Rule::on("AssumeRole", Fault::access_denied())
            .with("RoleArn", &format!("arn:aws:iam::{}:role/OnlyHere", ids[0]))
            .always(),
    );

    for id in &ids {
        let err = moto
            .try_assume_role(&proxy.url, id, "Broken")
            .expect_err("Broken is denied");
        assert!(err.starts_with("AccessDenied: "), "{err}\n{}", proxy.log());
        assert!(err.contains("sts:AssumeRole"), "{err}");
        // Every other role goes through to moto, which grants it.
        assert_eq!(
            moto.try_assume_role(&proxy.url, id, "FleetRole"),
            Ok(format!(
                "arn:aws:sts::{id}:assumed-role/FleetRole/runbook-tests"
            ))
        );
        // A role whose name merely ends like the denied one is not it.
        assert!(moto.try_assume_role(&proxy.url, id, "NotBroken").is_ok());
    }
    assert!(
        moto.try_assume_role(&proxy.url, &ids[0], "OnlyHere")
            .is_err()
    );
    assert!(
        moto.try_assume_role(&proxy.url, &ids[1], "OnlyHere")
            .is_ok()
    );
    // The SDK does not retry AccessDenied: one attempt per denial.
    assert_eq!(proxy.fired(denied), 2, "{}", proxy.log());
    assert_eq!(proxy.fired(one), 1, "{}", proxy.log());
    assert_eq!(proxy.seen("AssumeRole"), 8, "{}", proxy.log());
    assert_eq!(proxy.applied("AssumeRole"), 5, "{}", proxy.log());
}

#[test]
fn organizations_requests_through_the_proxy_are_counted_by_operation() {
    let moto = Moto::start();
    moto.organization(1);
    let proxy = Proxy::start(&moto);
    let accounts = moto.org_accounts_at(&proxy.url);
    assert_eq!(accounts, moto.org_accounts());
    assert_eq!(proxy.applied("ListAccounts"), 1, "{}", proxy.log());
}
