//! `runbook list`: the runbooks of the project, read from their manifests.

use std::path::PathBuf;

use clap::Args;
use runbook_host::exit;
use runbook_host::manifest::Manifest;
use runbook_host::project::Project;
use runbook_host::transcript::{printable, printable_path};

/// List the runbooks of the project's runbooks/ with their version and
/// description (read from each runbook.toml, nothing is built).
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The project checkout holding runbooks/ (default: found from the
    /// current directory).
    #[arg(long, value_name = "DIR")]
    runbooks: Option<PathBuf>,
}

pub fn main(args: ListArgs) -> anyhow::Result<u8> {
    let project = Project::find(args.runbooks.as_deref())?;
    for name in project.runbooks() {
        let path = project
            .root()
            .join("runbooks")
            .join(&name)
            .join("runbook.toml");
        let manifest = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| Manifest::from_toml(&text).map_err(|e| e.to_string()));
        match manifest {
            Ok(m) => outln!(
                "{:<24} {:<8} {}",
                printable(&m.name),
                printable(&m.version),
                printable(&m.description)
            ),
            Err(e) => outln!(
                "{:<24} {:<8} invalid manifest {}: {}",
                printable(&name),
                "?",
                printable_path(&path),
                printable(&e)
            ),
        }
    }
    Ok(exit::SUCCESS)
}
