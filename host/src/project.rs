//! Finding runbooks. A runbook named on the command line comes from, in this
//! order: the runbooks directory you work in (a checkout's `runbooks/`, built
//! from source when its component is missing or older than its sources, so an
//! author runs their change), else the runbooks embedded in the binary
//! ([`crate::embedded`]). A path names a `.wasm` component or a runbook crate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::manifest::is_runbook_name;
use crate::transcript::{printable, printable_path};

/// The WebAssembly target runbooks are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// A runbooks directory of a checkout of the project: a cargo workspace of
/// runbook crates (`runbooks/`, or the test runbooks of `tests/runbooks/`)
/// whose `sdk` symlink leads to the checkout's sdk.
#[derive(Debug, Clone)]
pub struct Project {
    /// The checkout's root (holds `sdk/` and the target directory).
    root: PathBuf,
    /// The runbooks directory (the cargo workspace of runbook crates).
    dir: PathBuf,
}

impl Project {
    /// The runbooks directory at `dir` (a checkout, its `runbooks/`, or another
    /// runbooks directory of it), or else found from `RUNBOOK_PROJECT`, then
    /// the current directory and its parents. `Ok(None)`: none was asked for
    /// and the current directory is in none (runbooks then come from the
    /// binary).
    pub fn find(dir: Option<&Path>) -> anyhow::Result<Option<Project>> {
        if let Some(dir) = dir {
            return Project::at(dir).map(Some).with_context(|| {
                format!(
                    "--runbooks {}: not a runbooks directory (a checkout with runbooks/Cargo.toml and sdk/, or a directory of runbook crates with an sdk link); give the project checkout",
                    printable_path(dir)
                )
            });
        }
        if let Some(dir) = std::env::var_os("RUNBOOK_PROJECT") {
            return Project::at(Path::new(&dir)).map(Some).with_context(|| {
                format!(
                    "RUNBOOK_PROJECT={}: not a runbooks directory (a checkout with runbooks/Cargo.toml and sdk/)",
                    printable_path(Path::new(&dir))
                )
            });
        }
        let Ok(cwd) = std::env::current_dir() else {
            return Ok(None);
        };
        Ok(cwd.ancestors().find_map(Project::at))
    }

    /// The checkout at `dir`, or the runbooks directory `dir` of one.
    fn at(dir: &Path) -> Option<Project> {
        if dir.join("runbooks/Cargo.toml").is_file() && dir.join("sdk/wit/runbook.wit").is_file() {
            return Some(Project {
                root: dir.to_owned(),
                dir: dir.join("runbooks"),
            });
        }
        if dir.join("Cargo.toml").is_file() && dir.join("sdk/wit/runbook.wit").is_file() {
            let sdk = dir.join("sdk").canonicalize().ok()?;
            let root = sdk.parent()?;
            return root.join("runbooks/Cargo.toml").is_file().then(|| Project {
                root: root.to_owned(),
                dir: dir.to_owned(),
            });
        }
        None
    }

    /// The checkout's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The runbooks directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The names of the runbooks in the runbooks directory.
    pub fn runbooks(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("runbook.toml").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// Whether the runbooks directory has a runbook called `name`.
    pub fn has(&self, name: &str) -> bool {
        is_runbook_name(name) && self.dir.join(name).join("runbook.toml").is_file()
    }

    /// Where the component of runbook `name` is built.
    pub fn wasm_path(&self, name: &str) -> PathBuf {
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join("target"));
        target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", name.replace('-', "_")))
    }

    /// The component of runbook `name` if it is built and no older than its
    /// sources (the runbook crate, the sdk, the WIT contract, the lock file).
    pub fn fresh_component(&self, name: &str) -> Option<PathBuf> {
        let wasm = self.wasm_path(name);
        let built = std::fs::metadata(&wasm).and_then(|m| m.modified()).ok()?;
        let sources = [
            self.dir.join(name),
            self.root.join("sdk/src"),
            self.root.join("sdk/wit"),
            self.root.join("sdk/Cargo.toml"),
            self.dir.join("Cargo.toml"),
            self.dir.join("Cargo.lock"),
        ];
        let newest = sources.iter().filter_map(|p| newest_mtime(p)).max();
        match newest {
            Some(n) if n > built => None,
            _ => Some(wasm),
        }
    }

    /// The component of runbook `name`, built first if it is missing or older
    /// than its sources. `say` reports what is being done.
    pub fn component(&self, name: &str, say: &mut dyn FnMut(&str)) -> anyhow::Result<PathBuf> {
        if !is_runbook_name(name) {
            bail!(
                "'{}' is not a runbook name (lowercase letters, digits and '-')",
                printable(name)
            );
        }
        if !self.has(name) {
            bail!(
                "no runbook named '{name}' in {}; the runbooks there are: {}",
                printable_path(&self.dir),
                self.runbooks().join(", ")
            );
        }
        if let Some(wasm) = self.fresh_component(name) {
            return Ok(wasm);
        }
        let wasm = self.wasm_path(name);
        self.build(name, say)?;
        // cargo leaves the file alone when only a lock file or a comment
        // changed; mark it fresh so the next run does not build again.
        std::fs::File::options()
            .append(true)
            .open(&wasm)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .with_context(|| format!("cannot update {}", wasm.display()))?;
        Ok(wasm)
    }

    fn build(&self, name: &str, say: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
        ensure_target(say)?;
        say(&format!(
            "building runbook '{name}' from source in {} (cargo build --release --target {TARGET})",
            printable_path(&self.dir)
        ));
        let status = Command::new(cargo())
            .current_dir(&self.dir)
            .args([
                "build",
                "--release",
                "--quiet",
                "--target",
                TARGET,
                "-p",
                name,
            ])
            .status()
            .context("cannot run cargo to build the runbook; is the Rust toolchain installed? (outside a checkout, the runbooks embedded in the binary need none)")?;
        if !status.success() {
            bail!("building runbook '{name}' failed ({status}); the compiler's messages are above");
        }
        Ok(())
    }
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Install the wasm target with rustup if it is missing, saying so.
fn ensure_target(say: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("cannot run rustc; is the Rust toolchain installed?")?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .is_dir()
    {
        return Ok(());
    }
    say(&format!(
        "the {TARGET} target is missing: installing it (rustup target add {TARGET})"
    ));
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .context("cannot run rustup to add the wasm target")?;
    if !status.success() {
        bail!("rustup target add {TARGET} failed ({status}); run it by hand and retry");
    }
    Ok(())
}

fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter(|e| e.file_name() != "target")
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

/// The largest component the host reads. The MFA recovery runbook is about
/// 70 KiB and a Python runbook (componentize-py) about 18 MB; 64 MiB leaves
/// room for bigger runbooks while bounding what the host reads into memory
/// (and hashes, parses, compiles) before it knows the file is a runbook.
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// Build the runbook crate in `dir` (a `runbook.toml` beside a `Cargo.toml`,
/// as `runbook new` writes) for wasm32-wasip2 into `dir/target`, and return
/// its component. Cargo decides whether anything needs building.
pub fn build_crate(dir: &Path, say: &mut dyn FnMut(&str)) -> anyhow::Result<PathBuf> {
    #[derive(serde::Deserialize)]
    struct CargoToml {
        package: Package,
    }
    #[derive(serde::Deserialize)]
    struct Package {
        name: String,
    }
    let shown = printable_path(dir);
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml"))
        .with_context(|| format!("cannot read {shown}/Cargo.toml"))?;
    let package: CargoToml = toml::from_str(&cargo_toml).map_err(|e| {
        anyhow::anyhow!("{shown}/Cargo.toml has no [package] name: {}", e.message())
    })?;
    ensure_target(say)?;
    say(&format!(
        "building runbook crate {shown} (cargo build --release --target {TARGET})"
    ));
    let target_dir = dir.join("target");
    let status = Command::new(cargo())
        .current_dir(dir)
        .args(["build", "--release", "--quiet", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .context("cannot run cargo to build the runbook; is the Rust toolchain installed?")?;
    if !status.success() {
        bail!(
            "building runbook crate {shown} failed ({status}); the compiler's messages are above"
        );
    }
    Ok(target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", package.package.name.replace('-', "_"))))
}

/// Where a runbook's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A runbooks directory of a checkout, built from source.
    Directory(PathBuf),
    /// Embedded in this binary at build time.
    Embedded,
    /// A path given by the operator: a `.wasm`, or a runbook crate.
    Path(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Directory(dir) => write!(f, "{}", printable_path(dir)),
            Source::Embedded => f.write_str("embedded in this binary"),
            Source::Path(path) => write!(f, "{}", printable_path(path)),
        }
    }
}

/// A runbook's component, read.
#[derive(Debug, Clone)]
pub struct Found {
    /// How to name it in messages.
    pub what: String,
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// Where it came from.
    pub source: Source,
}

impl Found {
    /// The sha256 of the component, hex (as journals record it).
    pub fn sha256(&self) -> String {
        Found::sha(&self.bytes)
    }

    /// The sha256 of `bytes`, hex.
    pub fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }
}

/// Read a runbook given as a name (found as [`read_named_runbook`] does) or a
/// path to a `.wasm` or a runbook crate. Returns how to name it in messages,
/// and its bytes. The operator chooses here; for a name taken from untrusted
/// input (a journal) use [`read_named_runbook`], which never reads a path.
pub fn read_runbook(
    spec: &str,
    project: Option<&Path>,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<(String, Vec<u8>)> {
    find_runbook(spec, project, say).map(|f| (f.what, f.bytes))
}

/// [`read_runbook`], saying where the runbook came from.
pub fn find_runbook(
    spec: &str,
    project: Option<&Path>,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<Found> {
    let as_path = Path::new(spec);
    // A Python runbook (runbook.toml beside app.py), built with componentize-py.
    if crate::python::is_python_runbook(as_path) {
        let wasm = crate::python::build(as_path, say)?;
        return Ok(Found {
            what: printable_path(as_path),
            bytes: read_component(&wasm)?,
            source: Source::Path(as_path.to_owned()),
        });
    }
    // A runbook crate outside the project (`runbook new` writes one).
    if as_path.join("runbook.toml").is_file() && as_path.join("Cargo.toml").is_file() {
        let wasm = build_crate(as_path, say)?;
        return Ok(Found {
            what: printable_path(as_path),
            bytes: read_component(&wasm)?,
            source: Source::Path(as_path.to_owned()),
        });
    }
    if let Some(path) = component_file(spec) {
        return Ok(Found {
            what: printable_path(path),
            bytes: read_component(path)?,
            source: Source::Path(path.to_owned()),
        });
    }
    let mut found = named_runbooks(spec, project, say, true)?;
    Ok(found.remove(0))
}

/// The component file `spec` names, if [`read_runbook`] reads it as a path
/// to a `.wasm` (not a runbook crate, which is built, nor a name).
pub fn component_file(spec: &str) -> Option<&Path> {
    let as_path = Path::new(spec);
    if as_path.join("runbook.toml").is_file()
        && (as_path.join("Cargo.toml").is_file() || as_path.join("app.py").is_file())
    {
        return None;
    }
    (spec.ends_with(".wasm") || spec.contains(std::path::MAIN_SEPARATOR) || as_path.is_file())
        .then_some(as_path)
}

/// Read the runbook called `name`: from the runbooks directory you work in
/// (or `project`), built if needed, else from the binary. `name` must be a
/// runbook name; it is never taken as a path.
pub fn read_named_runbook(
    name: &str,
    project: Option<&Path>,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<(String, Vec<u8>)> {
    let mut found = named_runbooks(name, project, say, true)?;
    let f = found.remove(0);
    Ok((f.what, f.bytes))
}

/// Every component of the runbook called `name`, the one that runs first:
/// the runbooks directory's (if there is one and it has `name`), then the
/// embedded one. With `first_only`, stops at the first. A replay looks for
/// the one its journal recorded among them. Never empty.
pub fn named_runbooks(
    name: &str,
    project: Option<&Path>,
    say: &mut dyn FnMut(&str),
    first_only: bool,
) -> anyhow::Result<Vec<Found>> {
    if !is_runbook_name(name) {
        bail!(
            "'{}' is not a runbook name (lowercase letters, digits and '-'); give a runbook name, or a path to a .wasm",
            printable(name)
        );
    }
    // A directory the operator named is the only place looked in.
    let explicit = project.is_some() || std::env::var_os("RUNBOOK_PROJECT").is_some();
    let dir = Project::find(project)?;
    let mut found = vec![];
    if let Some(p) = dir.as_ref().filter(|p| p.has(name)) {
        let wasm = p.component(name, say)?;
        found.push(Found {
            what: format!("runbook '{name}'"),
            bytes: read_component(&wasm)?,
            source: Source::Directory(p.dir().to_owned()),
        });
        if first_only || explicit {
            return Ok(found);
        }
    }
    if let Some(bytes) = crate::embedded::component(name)
        && !explicit
    {
        found.push(Found {
            what: format!("runbook '{name}' (embedded)"),
            bytes: bytes.to_vec(),
            source: Source::Embedded,
        });
    }
    if found.is_empty() {
        let mut places = vec![];
        if let Some(p) = &dir {
            places.push(format!(
                "{} has {}",
                printable_path(p.dir()),
                p.runbooks().join(", ")
            ));
        }
        if !explicit {
            places.push(format!(
                "this binary embeds {}",
                crate::embedded::names().collect::<Vec<_>>().join(", ")
            ));
        }
        bail!(
            "no runbook named '{name}': {}; `runbook list` shows them all, or give a path to a .wasm",
            places.join("; ")
        );
    }
    Ok(found)
}

/// Read the component at `path`: a regular file (not a device such as
/// /dev/zero, a FIFO that would block, or a directory) of at most
/// [`MAX_COMPONENT_BYTES`].
pub fn read_component(path: &Path) -> anyhow::Result<Vec<u8>> {
    let shown = printable_path(path);
    let mut options = std::fs::File::options();
    options.read(true);
    // Opening a FIFO for reading blocks until a writer comes: open without
    // blocking, then look at what was opened (not at the path, which could
    // be swapped in between).
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        rustix::fs::OFlags::NONBLOCK.bits() as i32,
    );
    let file = options
        .open(path)
        .with_context(|| format!("cannot read runbook component {shown}"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read runbook component {shown}"))?;
    if !meta.is_file() {
        bail!(
            "runbook component {shown} is {}, not a regular file; give the path of a .wasm file",
            file_kind(&meta)
        );
    }
    if meta.len() > MAX_COMPONENT_BYTES {
        bail!(too_big(&shown));
    }
    // `take` holds the read to the cap even if the file grows meanwhile.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&file, MAX_COMPONENT_BYTES + 1),
        &mut bytes,
    )
    .with_context(|| format!("cannot read runbook component {shown}"))?;
    if bytes.len() as u64 > MAX_COMPONENT_BYTES {
        bail!(too_big(&shown));
    }
    Ok(bytes)
}

fn too_big(shown: &str) -> String {
    format!(
        "runbook component {shown} is larger than {} MiB, the most the host reads (a runbook component is at most a few MiB); give the path of a runbook's .wasm",
        MAX_COMPONENT_BYTES >> 20
    )
}

/// What kind of file `meta` describes, in words.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let ty = meta.file_type();
    if ty.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_char_device() {
            return "a character device";
        }
        if ty.is_block_device() {
            return "a block device";
        }
        if ty.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ty.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}
