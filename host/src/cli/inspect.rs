//! `runbook inspect`: what a runbook is and may do, read from the component
//! without running it.

use std::path::PathBuf;

use clap::Args;
use runbook_host::bindings::WIT_PACKAGE;
use runbook_host::exit;
use runbook_host::project;
use runbook_host::sandbox::shared_runtime;
use runbook_host::transcript::printable;

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
    let (what, bytes) = project::read_runbook(
        &args.runbook,
        args.runbooks.as_deref(),
        &mut super::out::say,
    )?;
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
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(exit::SUCCESS);
    }
    // The manifest was validated at load (printable, bounded); every value
    // from the component is escaped anyway.
    outln!("{} {}", printable(&m.name), printable(&m.version));
    outln!("  {}", printable(&m.description));
    outln!("wasm sha256: {}", loaded.sha256);
    outln!("wit:         {}", printable(&wit));
    outln!(
        "sdk:         {}",
        loaded.sdk_version.as_deref().map_or_else(
            || "unknown (not built with runbook-sdk)".to_owned(),
            printable
        )
    );
    outln!("parameters:");
    for p in &m.params {
        let req = if p.required { "required" } else { "optional" };
        outln!(
            "  --{:<12} {req}  {}",
            printable(&p.name),
            printable(&p.help)
        );
    }
    outln!("capabilities:");
    for c in &m.capabilities {
        // Whether it changes IAM, from the operation's declaration.
        let kind = match runbook_host::request::operation(&c.action) {
            Some(o) if o.mutates => "changes IAM",
            Some(_) => "reads",
            None => "unknown",
        };
        outln!(
            "  {:<28} {:<16} {kind}",
            printable(&c.action),
            printable(&c.resource)
        );
        // The only policies it may name: what a reviewer must read.
        for p in &c.policies {
            outln!("    only policy {}", printable(p));
        }
    }
    outln!("imports:");
    for i in &loaded.imports {
        outln!("  {}", printable(i));
    }
    Ok(exit::SUCCESS)
}
