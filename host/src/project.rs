//! Finding runbooks: by name in the project's `runbooks/` workspace (built from
//! source when the component is missing or older than its sources), or by path
//! to a `.wasm` component.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, bail};

use crate::manifest::is_runbook_name;
use crate::transcript::{printable, printable_path};

/// The WebAssembly target runbooks are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// A checkout of the project: the directory that holds `runbooks/Cargo.toml`.
#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
}

impl Project {
    /// The project at `dir` (the checkout, or its `runbooks/` directory), or
    /// else found from `RUNBOOK_PROJECT`, the current directory and its
    /// parents, or the directory of the running executable and its parents.
    pub fn find(dir: Option<&Path>) -> anyhow::Result<Project> {
        if let Some(dir) = dir {
            return Project::at(dir).with_context(|| {
                format!(
                    "--runbooks {}: no runbooks/Cargo.toml there; give the project checkout",
                    dir.display()
                )
            });
        }
        if let Some(dir) = std::env::var_os("RUNBOOK_PROJECT") {
            return Project::at(Path::new(&dir)).with_context(|| {
                format!(
                    "RUNBOOK_PROJECT={}: no runbooks/Cargo.toml there",
                    Path::new(&dir).display()
                )
            });
        }
        let mut starts = vec![];
        if let Ok(cwd) = std::env::current_dir() {
            starts.push(cwd);
        }
        if let Ok(exe) = std::env::current_exe() {
            starts.push(exe);
        }
        for start in starts {
            for dir in start.ancestors() {
                if let Some(p) = Project::at(dir) {
                    return Ok(p);
                }
            }
        }
        bail!(
            "cannot find the runbook project (a directory with runbooks/Cargo.toml): run from the checkout, pass --runbooks DIR, or give a path to a .wasm"
        )
    }

    /// A checkout has both the runbooks workspace and the WIT contract (a
    /// directory of test runbooks alone is not one).
    fn at(dir: &Path) -> Option<Project> {
        let root = if dir.file_name()? == "runbooks" && dir.join("Cargo.toml").is_file() {
            dir.parent()?
        } else {
            dir
        };
        (root.join("runbooks/Cargo.toml").is_file() && root.join("sdk/wit/runbook.wit").is_file())
            .then(|| Project {
                root: root.to_owned(),
            })
    }

    /// The checkout's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The names of the runbooks in the project.
    pub fn runbooks(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.join("runbooks"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("runbook.toml").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
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

    /// The component of runbook `name`, built first if it is missing or older
    /// than its sources (the runbook crate, the sdk, the WIT contract).
    /// `say` reports what is being done.
    pub fn component(&self, name: &str, say: &mut dyn FnMut(&str)) -> anyhow::Result<PathBuf> {
        if !is_runbook_name(name) {
            bail!(
                "'{}' is not a runbook name (lowercase letters, digits and '-')",
                printable(name)
            );
        }
        let crate_dir = self.root.join("runbooks").join(name);
        if !crate_dir.join("runbook.toml").is_file() {
            bail!(
                "no runbook named '{name}' in {}; the runbooks there are: {}",
                self.root.join("runbooks").display(),
                self.runbooks().join(", ")
            );
        }
        let wasm = self.wasm_path(name);
        let built = std::fs::metadata(&wasm).and_then(|m| m.modified()).ok();
        let sources = [
            crate_dir,
            self.root.join("sdk/src"),
            self.root.join("sdk/wit"),
            self.root.join("sdk/Cargo.toml"),
            self.root.join("runbooks/Cargo.toml"),
            self.root.join("runbooks/Cargo.lock"),
        ];
        let newest = sources.iter().filter_map(|p| newest_mtime(p)).max();
        let stale = match (built, newest) {
            (None, _) => true,
            (Some(b), Some(n)) => n > b,
            (Some(_), None) => false,
        };
        if stale {
            self.build(name, say)?;
            // cargo leaves the file alone when only a lock file or a comment
            // changed; mark it fresh so the next run does not build again.
            std::fs::File::options()
                .append(true)
                .open(&wasm)
                .and_then(|f| f.set_modified(SystemTime::now()))
                .with_context(|| format!("cannot update {}", wasm.display()))?;
        }
        Ok(wasm)
    }

    fn build(&self, name: &str, say: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
        ensure_target(say)?;
        say(&format!(
            "building runbook '{name}' from source (cargo build --release --target {TARGET})"
        ));
        let status = Command::new(cargo())
            .current_dir(self.root.join("runbooks"))
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
            .context("cannot run cargo to build the runbook; is the Rust toolchain installed?")?;
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

/// Read a runbook given as a name (found in `project`) or a path to a `.wasm`.
/// Returns how to name it in messages, and its bytes. The operator chooses
/// here; for a name taken from untrusted input (a journal) use
/// [`read_named_runbook`], which never reads a path.
pub fn read_runbook(
    spec: &str,
    project: Option<&Path>,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<(String, Vec<u8>)> {
    let as_path = Path::new(spec);
    // A runbook crate outside the project (`runbook new` writes one).
    if as_path.join("runbook.toml").is_file() && as_path.join("Cargo.toml").is_file() {
        let wasm = build_crate(as_path, say)?;
        let bytes = read_component(&wasm)?;
        return Ok((printable_path(as_path), bytes));
    }
    if let Some(path) = component_file(spec) {
        let bytes = read_component(path)?;
        return Ok((printable_path(path), bytes));
    }
    read_named_runbook(spec, project, say)
}

/// The component file `spec` names, if [`read_runbook`] reads it as a path
/// to a `.wasm` (not a runbook crate, which is built, nor a name).
pub fn component_file(spec: &str) -> Option<&Path> {
    let as_path = Path::new(spec);
    if as_path.join("runbook.toml").is_file() && as_path.join("Cargo.toml").is_file() {
        return None;
    }
    (spec.ends_with(".wasm") || spec.contains(std::path::MAIN_SEPARATOR) || as_path.is_file())
        .then_some(as_path)
}

/// Read the runbook called `name` from the project's `runbooks/` (built if
/// needed). `name` must be a runbook name; it is never taken as a path.
pub fn read_named_runbook(
    name: &str,
    project: Option<&Path>,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<(String, Vec<u8>)> {
    if !is_runbook_name(name) {
        bail!(
            "'{}' is not a runbook name (lowercase letters, digits and '-'); give a runbook name, or a path to a .wasm",
            printable(name)
        );
    }
    let project = Project::find(project)?;
    let wasm = project.component(name, say)?;
    let bytes = read_component(&wasm)?;
    Ok((format!("runbook '{name}'"), bytes))
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
