//! `runbook list`: every runbook this binary can run by name, from every
//! source, and which one runs.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;
use runbook_host::embedded;
use runbook_host::exit;
use runbook_host::manifest::Manifest;
use runbook_host::project::{self, Project, Source};
use runbook_host::transcript::{printable, printable_path};

/// List the runbooks: each one's name, description, and per source (the
/// runbooks directory you work in, the binary, paths given here) its version
/// and component sha256. `*` marks the one `runbook run NAME` runs: a runbooks
/// directory takes precedence over the binary, so an author runs their
/// change. Nothing is built: a runbook not built since its source changed
/// shows no sha256.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Also list these components (.wasm) or runbook crates.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// The runbooks directory (a checkout, its runbooks/, or tests/runbooks/;
    /// default: found from the current directory).
    #[arg(long, value_name = "DIR")]
    runbooks: Option<PathBuf>,
}

/// One source of one runbook.
struct Row {
    name: String,
    version: String,
    description: String,
    sha256: Option<String>,
    source: Source,
    problem: Option<String>,
}

pub fn main(args: ListArgs) -> anyhow::Result<u8> {
    let explicit = args.runbooks.is_some() || std::env::var_os("RUNBOOK_PROJECT").is_some();
    let dir = Project::find(args.runbooks.as_deref())?;
    let mut rows = vec![];
    if let Some(p) = &dir {
        for name in p.runbooks() {
            let path = p.dir().join(&name).join("runbook.toml");
            let manifest = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| Manifest::from_toml(&text).map_err(|e| e.to_string()));
            let sha256 = p
                .fresh_component(&name)
                .and_then(|wasm| project::read_component(&wasm).ok())
                .map(|bytes| project::Found::sha(&bytes));
            rows.push(row(
                name,
                manifest,
                sha256,
                Source::Directory(p.dir().to_owned()),
            ));
        }
    }
    if !explicit {
        for name in embedded::names() {
            let bytes = embedded::component(name).unwrap_or_default();
            let manifest = Manifest::from_wasm(bytes).map_err(|e| e.to_string());
            let sha = project::Found::sha(bytes);
            rows.push(row(name.to_owned(), manifest, Some(sha), Source::Embedded));
        }
    }
    let mut failed = false;
    for path in &args.paths {
        let found = project::find_runbook(&path.display().to_string(), None, &mut |m| {
            super::out::say(m)
        });
        match found {
            Ok(f) => {
                let manifest = Manifest::from_wasm(&f.bytes).map_err(|e| e.to_string());
                let name = manifest
                    .as_ref()
                    .map_or_else(|_| printable_path(path), |m| m.name.clone());
                rows.push(row(name, manifest, Some(f.sha256()), f.source));
            }
            Err(e) => {
                super::out::error(format_args!("{e:#}"));
                failed = true;
            }
        }
    }
    let names: BTreeSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    for name in names {
        let of_name: Vec<&Row> = rows.iter().filter(|r| r.name == name).collect();
        // What `runbook run NAME` runs: the directory's, else the binary's
        // (a path is run by its path, never by name).
        let runs = of_name
            .iter()
            .position(|r| matches!(r.source, Source::Directory(_)))
            .or_else(|| of_name.iter().position(|r| r.source == Source::Embedded));
        let description = of_name
            .iter()
            .find(|r| r.problem.is_none())
            .map_or("", |r| r.description.as_str());
        outln!("{}  {}", printable(name), printable(description));
        for (i, r) in of_name.iter().enumerate() {
            let mark = if Some(i) == runs { '*' } else { ' ' };
            let sha = r.sha256.as_deref().map_or_else(
                || "(not built since its source changed: `runbook run` builds it)".to_owned(),
                |s| format!("sha256 {s}"),
            );
            match &r.problem {
                None => outln!("  {mark} {:<8} {sha}  {}", printable(&r.version), r.source),
                Some(problem) => outln!(
                    "  {mark} {:<8} invalid manifest: {}  {}",
                    "?",
                    printable(problem),
                    r.source
                ),
            }
        }
    }
    outln!(
        "* runs as `runbook run NAME`: a runbooks directory you work in comes before the runbooks embedded in this binary"
    );
    Ok(if failed {
        exit::HOST_ERROR
    } else {
        exit::SUCCESS
    })
}

fn row(
    name: String,
    manifest: Result<Manifest, String>,
    sha256: Option<String>,
    source: Source,
) -> Row {
    match manifest {
        Ok(m) => Row {
            name,
            version: m.version,
            description: m.description,
            sha256,
            source,
            problem: None,
        },
        Err(e) => Row {
            name,
            version: String::new(),
            description: String::new(),
            sha256,
            source,
            problem: Some(e),
        },
    }
}
