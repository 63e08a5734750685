//! The benchmark's floor: the seed MFA recovery as a plain Rust program on
//! `aws-sdk-iam`, no wasm, no journal, no checks. `scripts/bench` times it
//! beside `runbook run` so the ratio is what the sandbox and journal cost.
//!
//! Usage: `raw_iam USER ENDPOINT_URL` (credentials from the environment).

use aws_config::BehaviorVersion;
use aws_sdk_iam::types::AssignmentStatusType;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(user), Some(endpoint)) = (args.next(), args.next()) else {
        return Err("usage: raw_iam USER ENDPOINT_URL".into());
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .load()
            .await;
        let iam = aws_sdk_iam::Client::new(&config);
        let devices = iam
            .list_mfa_devices()
            .user_name(&user)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        for d in &devices {
            iam.deactivate_mfa_device()
                .user_name(&user)
                .serial_number(d.serial_number())
                .send()
                .await?;
        }
        let left = iam
            .list_mfa_devices()
            .user_name(&user)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        assert!(left.is_empty(), "{user} still has devices");
        let unassigned = iam
            .list_virtual_mfa_devices()
            .assignment_status(AssignmentStatusType::Unassigned)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        for d in &devices {
            if unassigned
                .iter()
                .any(|u| u.serial_number() == d.serial_number())
            {
                iam.delete_virtual_mfa_device()
                    .serial_number(d.serial_number())
                    .send()
                    .await?;
            }
        }
        Ok(())
    })
}
