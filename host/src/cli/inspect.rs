//! `runbook inspect`: what a runbook is and may do, read from the component
//! without running it.

use std::path::PathBuf;

use clap::Args;
use runbook_host::bindings::WIT_PACKAGE;
use runbook_host::project;
use runbook_host::sandbox::{exit, shared_runtime};

/// Show a runbook's manifest (parameters, the IAM actions it needs), its wasm
/// sha256 and the WIT contract it was built against. Runs none of its code.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A runbook name from the project's runbooks/, or a path to a .wasm.
    runbook: String,

    /// The project checkout holding runbooks/.
    #[arg(long, value_name = "DIR")]
    runbooks: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn main(args: InspectArgs) -> anyhow::Result<u8> {
    let (what, bytes) = project::read_runbook(&args.runbook, args.runbooks.as_deref(), &mut |m| {
        eprintln!("{m}")
    })?;
    let loaded = shared_runtime()?.load(&what, &bytes)?;
    let m = &loaded.manifest;
    // The contract the component was built against, from its import names.
    let wit = loaded
        .imports
        .iter()
        .find_map(|i| i.strip_prefix("runbook:runbook/"))
        .and_then(|i| i.split_once('@'))
        .map_or_else(
            || WIT_PACKAGE.to_owned(),
            |(_, v)| format!("runbook:runbook@{v}"),
        );
    if args.json {
        let doc = serde_json::json!({
            "manifest": m,
            "wasm_sha256": loaded.sha256,
            "wit": wit,
            "sdk_version": loaded.sdk_version,
            "imports": loaded.imports,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(exit::SUCCESS);
    }
    println!("{} {}", m.name, m.version);
    println!("  {}", m.description);
    println!("wasm sha256: {}", loaded.sha256);
    println!("wit:         {wit}");
    println!(
        "sdk:         {}",
        loaded
            .sdk_version
            .as_deref()
            .unwrap_or("unknown (not built with runbook-sdk)")
    );
    println!("parameters:");
    for p in &m.params {
        let req = if p.required { "required" } else { "optional" };
        println!("  --{:<12} {req}  {}", p.name, p.help);
    }
    println!("capabilities:");
    for c in &m.capabilities {
        println!("  {:<28} {}", c.action, c.resource);
    }
    println!("imports:");
    for i in &loaded.imports {
        println!("  {i}");
    }
    Ok(exit::SUCCESS)
}
