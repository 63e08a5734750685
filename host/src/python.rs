//! Python runbooks: a directory holding `runbook.toml` and `app.py` (which
//! defines `run(params) -> Outcome` against `runbook_sdk`), built into a
//! component of the same `runbook` world with componentize-py.
//!
//! The build is the host's, so host, sdk and WIT stay in lockstep: the
//! Python sdk (`sdk/python/`) and the WIT contract are embedded in this
//! binary and staged beside the runbook's sources; componentize-py (pinned,
//! [`COMPONENTIZE_PY`], its wheels by sha256) is installed on first use into
//! a venv in the checkout's target directory, or for a runbook outside a
//! checkout in the user's private cache directory (never in a directory that
//! came with the runbook); the manifest and the sdk version are then
//! appended to the component as the custom sections the Rust sdk writes, so
//! `inspect`, `policy` and the load-time checks work unchanged.
//!
//! componentize-py runs the runbook's module-level code at build time (it
//! snapshots the initialised interpreter, inside its own wasm sandbox), so it
//! runs with an empty environment, nothing of the builder's (credentials
//! included) can be baked into a component, and for at most
//! [`BUILD_TIMEOUT`].
//!
//! Its output is not reproducible (two builds of the same source differ), so
//! builds are cached by the sha256 of everything that goes in (sources,
//! manifest, sdk, WIT, componentize-py version): a runbook is built once per
//! change, and the journals of its runs name the same component.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// How long a build may take: componentize-py runs `app.py`'s module-level
/// code while it builds, and a loop there would otherwise hold the build
/// (and its lock) for ever. A real build takes about 5 s here; five minutes
/// is generous for a slow machine. `RUNBOOK_PYTHON_BUILD_TIMEOUT` (seconds)
/// sets another.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// The most of componentize-py's (or pip's) output kept for a message.
const MAX_OUTPUT: u64 = 64 << 10;

/// The most a build may write to its output file: module-level code that
/// prints in a loop is stopped here rather than filling the disk until the
/// build's timeout.
const MAX_OUTPUT_FILE: u64 = 16 << 20;

/// componentize-py's wheels on PyPI, by sha256: pip installs only one of
/// these, and never builds one from source (which would run its build's
/// code on this machine).
const WHEEL_HASHES: &[&str] = &[
    // manylinux_2_28_x86_64
    "8623cd8cab8453cb0cd8bf03f3c7103420d06f2f3d360186a280a70a1ca5e89f",
    // manylinux_2_28_aarch64
    "7b6a87c520358166843af0daa86d2312d7af4cbcbbf1e598951085cf7f2991ca",
    // macosx_11_0_arm64
    "a556991534cc496207a9d2ca733c4b0f17ed38ef56a8d6b5f1847fdf1225dd1b",
    // macosx_10_12_x86_64
    "65fbc4a94df1de8acf7da50a1f5ed1711230188844e53e6332d99029be4e0afa",
    // win_amd64
    "c7fd552fb0849858b0c1e8981543ed5dff4b0cc1597a8ea0bc26a495786dc0c6",
];

/// Module names a runbook's files may not take: the sdk's, its entry
/// module's, and those of the bindings and runtime componentize-py adds.
/// (`app` must be `app.py`, not a package that would shadow it.)
const RESERVED_MODULES: &[&str] = &[
    "runbook_sdk",
    "runbook_entry",
    "wit_world",
    "wit",
    "componentize_py_types",
    "componentize_py_runtime",
    "componentize_py_async_support",
    "poll_loop",
];

/// Build the Python runbook in `dir` (or take the cached build of the same
/// sources) and return its component's path. `say` reports what is done.
pub fn build(dir: &Path, say: &mut dyn FnMut(&str)) -> anyhow::Result<PathBuf> {
    let shown = printable_path(dir);
    let manifest_path = dir.join("runbook.toml");
    if std::fs::symlink_metadata(&manifest_path).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!(
            "{shown}/runbook.toml is a symbolic link: put the manifest itself in the runbook's directory"
        );
    }
    let manifest_text = std::fs::read(&manifest_path)
        .with_context(|| format!("cannot read {shown}/runbook.toml"))?;
    let Ok(manifest_str) = std::str::from_utf8(&manifest_text) else {
        bail!("{shown}/runbook.toml is not UTF-8 text: save it as UTF-8");
    };
    let manifest = Manifest::from_toml(manifest_str)
        .map_err(|e| anyhow::anyhow!("{shown}/runbook.toml: {e}"))?;
    let sources = sources(dir)?;

    let mut key = Sha256::new();
    for part in [
        // What the host does around componentize-py (the staging, the
        // appended sections): bump it when that changes.
        "runbook-python-build-2\0componentize-py ",
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

    let root = build_root(dir)?;
    let out_dir = root.join("python");
    let wasm = out_dir.join(format!("{}-{key}.wasm", manifest.name));
    if wasm.is_file() {
        return Ok(wasm);
    }
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", printable_path(&out_dir)))?;
    // One build at a time per directory: concurrent runs (tests, an
    // operator in two terminals) wait, then find the build done.
    let lock = open_lock(&out_dir.join(".lock"))?;
    if lock.try_lock().is_err() {
        say(&format!(
            "waiting for another build in {} to finish",
            printable_path(&out_dir)
        ));
        lock.lock()
            .with_context(|| format!("cannot lock {}", printable_path(&out_dir)))?;
    }
    if wasm.is_file() {
        return Ok(wasm);
    }

    let componentize = componentize_py(&root, say)?;
    let stage = tempfile::Builder::new()
        .prefix(".stage-")
        .tempdir_in(&out_dir)
        .context("cannot create a build directory")?;
    stage_files(stage.path(), &sources)?;
    say(&format!(
        "building Python runbook {shown} with componentize-py {COMPONENTIZE_PY}"
    ));
    let raw = stage.path().join("component.wasm");
    let mut command = Command::new(&componentize);
    command
        .current_dir(stage.path())
        // Module-level code runs now: nothing of the builder's environment
        // may reach it (and so the snapshot).
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(["--quiet", "-d", "wit", "-w", "runbook", "componentize"])
        .args(["-p", "."])
        .arg(ENTRY_MODULE)
        .arg("-o")
        .arg(&raw);
    let (status, output) = run_bounded(command, stage.path(), build_timeout())
        .with_context(|| format!("cannot run {}", printable_path(&componentize)))?;
    match status {
        Ended::TimedOut => bail!(
            "building Python runbook {shown} did not finish within {} s, and was stopped: componentize-py runs app.py's module-level code while it builds, so a loop or a wait there never ends; move it into run() (RUNBOOK_PYTHON_BUILD_TIMEOUT sets the limit)",
            build_timeout().as_secs()
        ),
        Ended::TooMuchOutput => bail!(
            "building Python runbook {shown} wrote more than {} MiB of output, and was stopped: componentize-py runs app.py's module-level code while it builds; move what prints there into run()",
            MAX_OUTPUT_FILE >> 20
        ),
        Ended::Exited(status) if !status.success() => bail!(
            "building Python runbook {shown} failed ({status}): componentize-py said:\n{}",
            crate::transcript::printable(output.trim_end())
        ),
        Ended::Exited(_) => {}
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

fn build_timeout() -> Duration {
    std::env::var("RUNBOOK_PYTHON_BUILD_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(BUILD_TIMEOUT, Duration::from_secs)
}

/// Open (creating) the lock file without following a link and without
/// truncating: a link planted there must not lead anywhere.
fn open_lock(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        rustix::fs::OFlags::NOFOLLOW.bits() as i32,
    );
    options
        .open(path)
        .with_context(|| format!("cannot open the build lock {}", printable_path(path)))
}

/// How a bounded command ended.
enum Ended {
    Exited(std::process::ExitStatus),
    /// Killed at its timeout.
    TimedOut,
    /// Killed for writing more than [`MAX_OUTPUT_FILE`] bytes.
    TooMuchOutput,
}

/// Run `command` to its end, for at most `timeout` and [`MAX_OUTPUT_FILE`]
/// bytes of output (then kill it), its stdout and stderr going to a file in
/// `scratch`. How it ended, and at most [`MAX_OUTPUT`] bytes of what it said.
fn run_bounded(
    mut command: Command,
    scratch: &Path,
    timeout: Duration,
) -> std::io::Result<(Ended, String)> {
    let log = scratch.join(".output");
    let out = std::fs::File::create(&log)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Ended::Exited(status);
        }
        let stop = if Instant::now() >= deadline {
            Some(Ended::TimedOut)
        } else if std::fs::metadata(&log).is_ok_and(|m| m.len() > MAX_OUTPUT_FILE) {
            Some(Ended::TooMuchOutput)
        } else {
            None
        };
        if let Some(stop) = stop {
            let _ = child.kill();
            let _ = child.wait();
            break stop;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut said = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(&log)?, MAX_OUTPUT),
        &mut said,
    )?;
    let said = String::from_utf8_lossy(&said).into_owned();
    Ok((status, said))
}

/// The runbook's source files (relative path, bytes), sorted: everything in
/// `dir` but `target/`, hidden entries and `__pycache__`. A link, a name
/// that is not UTF-8, a module named as the sdk's or the bindings', or more
/// than [`MAX_FILES`] entries or [`MAX_BYTES`] bytes is refused, naming it.
fn sources(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let shown = printable_path(dir);
    let too_many = || {
        anyhow::anyhow!(
            "{shown} holds more than {MAX_FILES} files or {} MiB: a Python runbook directory holds runbook.toml, app.py and the modules it imports; give the runbook's own directory",
            MAX_BYTES >> 20
        )
    };
    let mut out = Vec::new();
    let mut entries_seen = 0usize;
    let mut total = 0u64;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        let entries = std::fs::read_dir(&here)
            .with_context(|| format!("cannot read {}", printable_path(&here)))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", printable_path(&here)))?;
            let path = rel.join(entry.file_name());
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                bail!(
                    "{}: the name is not UTF-8; rename it",
                    printable_path(&dir.join(&path))
                );
            };
            let top = rel.as_os_str().is_empty();
            if name.starts_with('.')
                || name == "__pycache__"
                || (top && (name == "runbook.toml" || name == "target"))
            {
                continue;
            }
            entries_seen += 1;
            if entries_seen > MAX_FILES {
                return Err(too_many());
            }
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                bail!(
                    "{} is a symbolic link: a Python runbook's files are built from its own directory, so copy the file in instead",
                    printable_path(&dir.join(&path))
                );
            }
            if top {
                let module = name.strip_suffix(".py").unwrap_or(&name);
                if RESERVED_MODULES.contains(&module) || (name == "app" && kind.is_dir()) {
                    bail!(
                        "{}: the name is the sdk's or the generated bindings' (or would shadow app.py); rename it",
                        printable_path(&dir.join(&path))
                    );
                }
            }
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                if total + entry.metadata()?.len() > MAX_BYTES {
                    return Err(too_many());
                }
                // Read at most what is left of the budget, even if the file
                // grew since its size was looked at.
                let mut bytes = Vec::new();
                std::fs::File::open(dir.join(&path))
                    .and_then(|f| {
                        std::io::Read::read_to_end(
                            &mut std::io::Read::take(f, MAX_BYTES - total + 1),
                            &mut bytes,
                        )
                    })
                    .with_context(|| format!("cannot read {}", printable_path(&dir.join(&path))))?;
                total += bytes.len() as u64;
                if total > MAX_BYTES {
                    return Err(too_many());
                }
                out.push((path.to_string_lossy().into_owned(), bytes));
            }
        }
    }
    out.sort();
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

/// Where a Python runbook's builds and componentize-py go. For a runbook
/// inside the checkout this binary was built from, its target directory
/// (`CARGO_TARGET_DIR`, else `target/` at its root), as cargo does for the
/// Rust ones. Anywhere else, the user's cache directory
/// (`~/.cache/runbook`), private to the user: never a directory that came
/// with the runbook, which could carry a "componentize-py" or a prebuilt
/// component of its own.
fn build_root(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    // Only the checkout this binary was built from: a runbook's own tree can
    // look like a checkout (those two files and a `target/` of its choice).
    let built_from = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).canonicalize();
    let checkout = dir.ancestors().find(|a| {
        built_from.as_deref().is_ok_and(|c| c == *a)
            && a.join("sdk/wit/runbook.wit").is_file()
            && a.join("runbooks/Cargo.toml").is_file()
    });
    if let Some(root) = checkout {
        return Ok(std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target")));
    }
    let Some(cache) = dirs::cache_dir().map(|c| c.join("runbook")) else {
        bail!(
            "there is no cache directory to build Python runbooks in (set HOME or XDG_CACHE_HOME)"
        );
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&cache)
        .with_context(|| format!("cannot create {}", printable_path(&cache)))?;
    if !crate::cache::private_dir(&cache) {
        bail!(
            "{} is not a directory private to this user (a link, another owner, or writable by others): fix its ownership and mode (0700), or set XDG_CACHE_HOME",
            printable_path(&cache)
        );
    }
    Ok(cache)
}

/// The componentize-py to build with: `RUNBOOK_COMPONENTIZE_PY` if set, else
/// the one in `root`'s venv, installed there first if missing (from PyPI,
/// one of [`WHEEL_HASHES`], never built from source).
fn componentize_py(root: &Path, say: &mut dyn FnMut(&str)) -> anyhow::Result<PathBuf> {
    let given = std::env::var_os("RUNBOOK_COMPONENTIZE_PY").map(PathBuf::from);
    let venv = root.join(format!("componentize-py-{COMPONENTIZE_PY}"));
    let bin = given
        .clone()
        .unwrap_or_else(|| venv.join("bin/componentize-py"));
    if given.is_none() && !bin.is_file() {
        let python = std::env::var_os("RUNBOOK_PYTHON").unwrap_or_else(|| "python3".into());
        say(&format!(
            "componentize-py {COMPONENTIZE_PY} is not installed: installing it into {} from PyPI (once; {} -m venv, then pip install componentize-py=={COMPONENTIZE_PY}, a wheel checked by its sha256)",
            printable_path(&venv),
            Path::new(&python).display()
        ));
        let status = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .stdout(to_stderr())
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
        let requirements = venv.join("requirements.txt");
        let mut pinned = format!("componentize-py=={COMPONENTIZE_PY}");
        for hash in WHEEL_HASHES {
            pinned.push_str(&format!(" --hash=sha256:{hash}"));
        }
        std::fs::write(&requirements, pinned + "\n")
            .with_context(|| format!("cannot write {}", printable_path(&requirements)))?;
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(["--require-hashes", "--only-binary=:all:", "-r"])
            .arg(&requirements)
            .stdout(to_stderr())
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
        .stdin(Stdio::null())
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

/// A child's stdout sent to this process's stderr: what pip and venv print
/// is progress for the operator, never the command's output.
fn to_stderr() -> Stdio {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
            return Stdio::from(fd);
        }
    }
    Stdio::null()
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
