//! Python runbooks: a directory holding `runbook.toml` and `app.py` (which
//! defines `run(params) -> Outcome` against `runbook_sdk`), built into a
//! component of the same `runbook` world with componentize-py.
//!
//! The build is the host's, so host, sdk and WIT stay in lockstep: the
//! Python sdk (`sdk/python/`) and the WIT contract are embedded in this
//! binary and staged beside the runbook's sources; componentize-py (pinned,
//! [`COMPONENTIZE_PY`]) is installed into a venv in the runbook project's
//! target directory on first use; the manifest and the sdk version are then
//! appended to the component as the custom sections the Rust sdk writes, so
//! `inspect`, `policy` and the load-time checks work unchanged.
//!
//! componentize-py runs the runbook's module-level code at build time (it
//! snapshots the initialised interpreter), so it runs with an empty
//! environment: nothing of the builder's (credentials included) can be baked
//! into a component.
//!
//! Its output is not reproducible (two builds of the same source differ), so
//! builds are cached by the sha256 of everything that goes in (sources,
//! manifest, sdk, WIT, componentize-py version): a runbook is built once per
//! change, and the journals of its runs name the same component.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::manifest::Manifest;
use crate::transcript::printable_path;

/// The componentize-py release the host builds Python runbooks with (PyPI).
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The WIT contract, as the host was built with it.
const WIT: &str = include_str!("../../sdk/wit/runbook.wit");

// `SDK_FILES`: the Python sdk, listed and embedded by host/build.rs.
include!(concat!(env!("OUT_DIR"), "/python_sdk.rs"));

const PYPROJECT: &str = include_str!("../../sdk/python/pyproject.toml");

/// The module componentize-py starts from: the sdk's, which imports `app`.
const ENTRY_MODULE: &str = "runbook_entry";

/// What the sdk section of a Python component says after the version
/// (semver build metadata): the host tells Python runbooks by it.
pub const SDK_SUFFIX: &str = "+python";

/// The most source files and bytes a Python runbook directory may hold: a
/// runbook is a few files; this stops a directory of the wrong kind (a home
/// directory) from being hashed and copied.
const MAX_FILES: usize = 256;
const MAX_BYTES: u64 = 16 << 20;

/// The Python sdk's version (sdk/python/pyproject.toml).
pub fn sdk_version() -> String {
    #[derive(serde::Deserialize)]
    struct Pyproject {
        project: ProjectTable,
    }
    #[derive(serde::Deserialize)]
    struct ProjectTable {
        version: String,
    }
    toml::from_str::<Pyproject>(PYPROJECT)
        .map(|p| p.project.version)
        .unwrap_or_else(|_| "0.0.0".to_owned())
}

/// Whether `dir` is a Python runbook: `runbook.toml` beside `app.py`.
pub fn is_python_runbook(dir: &Path) -> bool {
    dir.join("runbook.toml").is_file() && dir.join("app.py").is_file()
}

/// Build the Python runbook in `dir` (or take the cached build of the same
/// sources) and return its component's path. `say` reports what is done.
pub fn build(dir: &Path, say: &mut dyn FnMut(&str)) -> anyhow::Result<PathBuf> {
    let shown = printable_path(dir);
    let manifest_text = std::fs::read(dir.join("runbook.toml"))
        .with_context(|| format!("cannot read {shown}/runbook.toml"))?;
    let manifest = Manifest::from_toml(&String::from_utf8_lossy(&manifest_text))
        .map_err(|e| anyhow::anyhow!("{shown}/runbook.toml: {e}"))?;
    let sources = sources(dir)?;

    let mut key = Sha256::new();
    for part in [
        "componentize-py ",
        COMPONENTIZE_PY,
        "\0",
        WIT,
        "\0",
        PYPROJECT,
    ] {
        key.update(part.as_bytes());
    }
    for (path, text) in SDK_FILES {
        key.update(format!("\0sdk/{path}\0{}\0", text.len()));
        key.update(text.as_bytes());
    }
    key.update(format!("\0runbook.toml\0{}\0", manifest_text.len()));
    key.update(&manifest_text);
    for (rel, bytes) in &sources {
        key.update(format!("\0src/{rel}\0{}\0", bytes.len()));
        key.update(bytes);
    }
    let key = hex::encode(key.finalize());

    let target = target_dir(dir);
    let out_dir = target.join("python");
    let wasm = out_dir.join(format!("{}-{}.wasm", manifest.name, &key[..16]));
    if wasm.is_file() {
        return Ok(wasm);
    }
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", printable_path(&out_dir)))?;
    // One build at a time per target directory: concurrent runs (tests, a
    // fleet's operator in two terminals) wait, then find the build done.
    let lock = std::fs::File::create(out_dir.join(".lock")).with_context(|| {
        format!(
            "cannot create the build lock in {}",
            printable_path(&out_dir)
        )
    })?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", printable_path(&out_dir)))?;
    if wasm.is_file() {
        return Ok(wasm);
    }

    let componentize = componentize_py(&target, say)?;
    let stage = tempfile::Builder::new()
        .prefix(".stage-")
        .tempdir_in(&out_dir)
        .context("cannot create a build directory")?;
    stage_files(stage.path(), &sources)?;
    say(&format!(
        "building Python runbook {shown} with componentize-py {COMPONENTIZE_PY}"
    ));
    let raw = stage.path().join("component.wasm");
    let output = Command::new(&componentize)
        .current_dir(stage.path())
        // Module-level code runs now: nothing of the builder's environment
        // may reach it (and so the snapshot).
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(["--quiet", "-d", "wit", "-w", "runbook", "componentize"])
        .args(["-p", "."])
        .arg(ENTRY_MODULE)
        .arg("-o")
        .arg(&raw)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", printable_path(&componentize)))?;
    if !output.status.success() {
        let mut message = String::from_utf8_lossy(&output.stderr).into_owned();
        message.push_str(&String::from_utf8_lossy(&output.stdout));
        bail!(
            "building Python runbook {shown} failed ({}): componentize-py said:\n{}",
            output.status,
            crate::transcript::printable(message.trim_end())
        );
    }
    let mut component =
        std::fs::read(&raw).with_context(|| format!("cannot read {}", raw.display()))?;
    append_custom_section(&mut component, crate::manifest::SECTION, &manifest_text);
    append_custom_section(
        &mut component,
        crate::manifest::SDK_SECTION,
        format!("{}{SDK_SUFFIX}", sdk_version()).as_bytes(),
    );
    let mut file =
        tempfile::NamedTempFile::new_in(&out_dir).context("cannot create the component file")?;
    file.write_all(&component)
        .and_then(|()| file.as_file().sync_all())
        .context("cannot write the component")?;
    file.persist(&wasm)
        .with_context(|| format!("cannot write {}", printable_path(&wasm)))?;
    Ok(wasm)
}

/// The runbook's source files (relative path, bytes), sorted: everything in
/// `dir` but `target/`, hidden entries and `__pycache__`.
fn sources(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        let entries = std::fs::read_dir(&here)
            .with_context(|| format!("cannot read {}", printable_path(&here)))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", printable_path(&here)))?;
            let name = entry.file_name();
            let name_str = name.to_string_lossy();
            if name_str.starts_with('.') || name_str == "__pycache__" || name_str == "runbook.toml"
            {
                continue;
            }
            if rel.as_os_str().is_empty() && name_str == "target" {
                continue;
            }
            let path = rel.join(&name);
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(dir.join(&path))
                    .with_context(|| format!("cannot read {}", printable_path(&dir.join(&path))))?;
                total += bytes.len() as u64;
                out.push((path.to_string_lossy().into_owned(), bytes));
            }
            if out.len() > MAX_FILES || total > MAX_BYTES {
                bail!(
                    "{} holds more than {MAX_FILES} files or {} MiB: a Python runbook directory holds runbook.toml, app.py and the modules it imports; give the runbook's own directory",
                    printable_path(dir),
                    MAX_BYTES >> 20
                );
            }
        }
    }
    out.sort();
    for (rel, _) in &out {
        let top = rel.split(['/', '\\']).next().unwrap_or_default();
        if top == "runbook_sdk"
            || top == "wit_world"
            || top == "wit"
            || rel == "runbook_entry.py"
            || rel == "componentize_py_types.py"
        {
            bail!(
                "{}/{rel}: the name is the sdk's or the generated bindings'; rename it",
                printable_path(dir)
            );
        }
    }
    Ok(out)
}

fn stage_files(stage: &Path, sources: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let write = |rel: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let path = stage.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write("wit/runbook.wit", WIT.as_bytes())?;
    for (rel, text) in SDK_FILES {
        write(rel, text.as_bytes())?;
    }
    for (rel, bytes) in sources {
        write(rel, bytes)?;
    }
    Ok(())
}

/// Where a Python runbook's builds and componentize-py go: the checkout's
/// target directory (`CARGO_TARGET_DIR`, else `target/` at its root) for a
/// runbook inside a checkout of the project, else `target/` in the runbook's
/// own directory, as cargo does for a crate.
fn target_dir(dir: &Path) -> PathBuf {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let checkout = dir.ancestors().find(|a| {
        a.join("sdk/wit/runbook.wit").is_file() && a.join("runbooks/Cargo.toml").is_file()
    });
    match checkout {
        Some(root) => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target")),
        None => dir.join("target"),
    }
}

/// The componentize-py to build with: `RUNBOOK_COMPONENTIZE_PY` if set, else
/// the one in `target`'s venv, installed there first if missing.
fn componentize_py(target: &Path, say: &mut dyn FnMut(&str)) -> anyhow::Result<PathBuf> {
    let given = std::env::var_os("RUNBOOK_COMPONENTIZE_PY").map(PathBuf::from);
    let venv = target.join(format!("componentize-py-{COMPONENTIZE_PY}"));
    let bin = given
        .clone()
        .unwrap_or_else(|| venv.join("bin/componentize-py"));
    if given.is_none() && !bin.is_file() {
        let python = std::env::var_os("RUNBOOK_PYTHON").unwrap_or_else(|| "python3".into());
        say(&format!(
            "componentize-py {COMPONENTIZE_PY} is not installed: installing it into {} from PyPI (once; {} -m venv, then pip install componentize-py=={COMPONENTIZE_PY})",
            printable_path(&venv),
            Path::new(&python).display()
        ));
        let status = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .with_context(|| {
                format!(
                    "cannot run {} to create a venv for componentize-py; install Python 3.11+ or set RUNBOOK_PYTHON",
                    Path::new(&python).display()
                )
            })?;
        if !status.success() {
            bail!(
                "{} -m venv {} failed ({status}); install the python3-venv package, or set RUNBOOK_COMPONENTIZE_PY to a componentize-py {COMPONENTIZE_PY}",
                Path::new(&python).display(),
                printable_path(&venv)
            );
        }
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("componentize-py=={COMPONENTIZE_PY}"))
            .status()
            .context("cannot run pip in the new venv")?;
        if !status.success() || !bin.is_file() {
            let _ = std::fs::remove_dir_all(&venv);
            bail!(
                "pip install componentize-py=={COMPONENTIZE_PY} failed ({status}); check that PyPI is reachable, or set RUNBOOK_COMPONENTIZE_PY to a componentize-py {COMPONENTIZE_PY}"
            );
        }
    }
    let version = Command::new(&bin)
        .arg("--version")
        .env_clear()
        .output()
        .with_context(|| format!("cannot run {}", printable_path(&bin)))?;
    let version = String::from_utf8_lossy(&version.stdout);
    if version.split_whitespace().nth(1) != Some(COMPONENTIZE_PY) {
        bail!(
            "{} is {}, not componentize-py {COMPONENTIZE_PY}, the version this host builds Python runbooks with; {}",
            printable_path(&bin),
            crate::transcript::printable(version.trim()),
            if given.is_some() {
                "point RUNBOOK_COMPONENTIZE_PY at that version, or unset it"
            } else {
                "delete that venv and run again to reinstall it"
            }
        );
    }
    Ok(bin)
}

/// Append a custom section `name` holding `data` to a component (or
/// module): a section with id 0 is valid at the end of either.
fn append_custom_section(wasm: &mut Vec<u8>, name: &str, data: &[u8]) {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::with_capacity(name.len() + data.len() + 5);
    leb128(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    wasm.push(0);
    leb128(body.len(), wasm);
    wasm.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_version_is_the_rust_sdks() {
        let rust_sdk = include_str!("../../sdk/Cargo.toml");
        assert!(
            rust_sdk.contains("version.workspace = true"),
            "the Rust sdk takes the workspace's version"
        );
        assert_eq!(sdk_version(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn an_appended_custom_section_is_read_back() {
        let mut wasm = b"\0asm\x0d\0\x01\0".to_vec();
        append_custom_section(&mut wasm, "runbook-sdk", &[b'x'; 300]);
        let found = crate::manifest::sdk_version(&wasm);
        assert_eq!(found.as_deref(), Some("x".repeat(300).as_str()));
    }
}
