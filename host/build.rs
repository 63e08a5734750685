//! Embeds the shipped runbooks (`runbooks/`) in the `runbook` binary, so an
//! installed binary runs them on a machine with no Rust toolchain and no
//! checkout, and each one's machine code, precompiled here for the runtime's
//! engine configuration, so it never compiles them either.
//!
//! They are built here from source, for wasm32-wasip2, exactly as the host
//! builds them at run time in a checkout (`cargo build --release` in
//! `runbooks/`, the same profile and lock file). Components are reproducible
//! (see the `sdk` symlink in runbooks/Cargo.toml), so the embedded component of
//! a runbook has the sha256 of the one built in any checkout of the same
//! source, and journals recorded with either replay with the other.
//!
//! The inner cargo gets a cleaned environment: the variables cargo sets for a
//! build script (`CARGO_ENCODED_RUSTFLAGS`, `TARGET`, `PROFILE`, ...) or a
//! caller's `RUSTFLAGS` would change what is built and so its sha256. It builds
//! into its own target directory under `OUT_DIR`: the outer cargo holds the
//! lock of the project's target directory while this runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;

#[path = "src/sandbox/engine_config.rs"]
mod engine_config;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let host = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = host.parent().expect("host/ is inside the checkout");
    let runbooks = root.join("runbooks");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));

    let names = runbook_names(&runbooks);
    for path in [
        runbooks.join("Cargo.toml"),
        runbooks.join("Cargo.lock"),
        runbooks.join(".cargo/config.toml"),
        root.join("sdk/src"),
        root.join("sdk/wit"),
        root.join("sdk/Cargo.toml"),
        root.join("rust-toolchain.toml"),
        host.join("src/sandbox/engine_config.rs"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for name in &names {
        println!("cargo:rerun-if-changed={}", runbooks.join(name).display());
    }

    ensure_target();
    let target_dir = out.join("runbooks-target");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(&runbooks)
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| passed_through(&k.to_string_lossy())))
        .args(["build", "--release", "--locked", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    for name in &names {
        cargo.args(["-p", name]);
    }
    let status = cargo
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the shipped runbooks: {e}"));
    assert!(
        status.success(),
        "building the shipped runbooks (runbooks/) for {TARGET} failed ({status}); the compiler's messages are above"
    );

    // Each component's machine code, compiled now with the runtime's own
    // engine configuration (src/sandbox/engine_config.rs): an installed
    // binary never compiles a shipped runbook, not even on its first run.
    let engine = wasmtime::Engine::new(&engine_config::engine_config())
        .expect("the runtime's engine configuration is valid");
    let mut table = String::from(
        "/// The shipped runbooks, built from runbooks/ by host/build.rs: (name,\n\
         /// component, its sha256, its machine code for the runtime's engine).\n\
         pub static EMBEDDED: &[Embedded] = &[\n",
    );
    for name in &names {
        let wasm = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        assert!(wasm.is_file(), "{} was not built", wasm.display());
        let bytes = std::fs::read(&wasm).expect("reading a built runbook");
        let code = engine
            .precompile_component(&bytes)
            .unwrap_or_else(|e| panic!("precompiling {}: {e:?}", wasm.display()));
        let cwasm = out.join(format!("{name}.cwasm"));
        std::fs::write(&cwasm, code).expect("writing a precompiled runbook");
        let sha256: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        table.push_str(&format!(
            "    Embedded {{ name: {name:?}, component: include_bytes!({:?}), sha256: {sha256:?}, precompiled: include_bytes!({:?}) }},\n",
            wasm.display().to_string(),
            cwasm.display().to_string()
        ));
    }
    table.push_str("];\n");
    std::fs::write(out.join("embedded.rs"), table).expect("writing OUT_DIR/embedded.rs");

    python_sdk(&root.join("sdk/python"), &out);
}

/// Embed the Python sdk (`sdk/python/runbook_sdk/*.py` and the entry module
/// `runbook_entry.py`): the host stages it into every Python runbook's build,
/// so the sdk a component carries is the one of this host's WIT.
fn python_sdk(sdk: &Path, out: &Path) {
    println!("cargo:rerun-if-changed={}", sdk.display());
    let package = sdk.join("runbook_sdk");
    let mut files: Vec<String> = std::fs::read_dir(&package)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", package.display()))
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".py"))
        .map(|n| format!("runbook_sdk/{n}"))
        .collect();
    files.push("runbook_entry.py".to_owned());
    files.sort();
    let mut table = String::from(
        "/// The Python sdk, staged into every Python runbook's build: (path, text).\n\
         pub const SDK_FILES: &[(&str, &str)] = &[\n",
    );
    for rel in &files {
        table.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            sdk.join(rel).display().to_string()
        ));
    }
    table.push_str("];\n");
    std::fs::write(out.join("python_sdk.rs"), table).expect("writing OUT_DIR/python_sdk.rs");
}

/// The runbooks of `runbooks/`: its directories with a `runbook.toml`, sorted.
fn runbook_names(runbooks: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(runbooks)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", runbooks.display()))
        .flatten()
        .filter(|e| e.path().join("runbook.toml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// What the inner cargo may see of this environment: where the toolchain and
/// the registry are, how to reach the network, and the jobserver (so it shares
/// the outer build's CPU budget). Nothing that changes the compiled code.
fn passed_through(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "PATH",
        "HOME",
        "TMPDIR",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_NET_OFFLINE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_HTTP_",
        "CARGO_NET_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
    ];
    EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Fail with the command that fixes it when the wasm target is missing.
fn ensure_target() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("running rustc --print sysroot");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    assert!(
        Path::new(&sysroot)
            .join("lib/rustlib")
            .join(TARGET)
            .is_dir(),
        "the runbook binary embeds its shipped runbooks, built for {TARGET}, and that target is not installed: run `rustup target add {TARGET}`, then build again"
    );
}
