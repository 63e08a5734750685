//! The configuration file: what an organisation sets once (trusted signers, a
//! default operator policy, the journal directory, limits), so an operator at
//! 3 a.m. does not have to remember it.
//!
//! Read from `RUNBOOK_CONFIG` if set, else `$XDG_CONFIG_HOME/runbook/config.toml`
//! (default `~/.config/runbook/config.toml`). Keys are the flags' names;
//! a flag given on the command line overrides the file. Relative paths in the
//! file are relative to the file's directory, and `~/` is the home directory.
//! Unknown keys are errors: a misspelt `trusted-signer` must not silently
//! leave components unchecked.
//!
//! ```toml
//! trusted-signers = "/etc/runbook/allowed_signers"
//! sign-journal = "~/.ssh/id_ed25519"
//! policy = "operator-policy.toml"
//! journal-dir = "~/incidents/journals"
//!
//! [limits]
//! deadline = 600
//! max-memory-mib = 128
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::transcript::{printable, printable_path};

/// The most the host reads of a configuration file.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The configuration file's contents. Every key is optional.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// An `allowed_signers` file: `runbook run` refuses a component without a
    /// valid signature by a signer it lists (`--trusted-signers`).
    pub trusted_signers: Option<PathBuf>,
    /// An SSH private key that signs every run's journal (`--sign-journal`).
    pub sign_journal: Option<PathBuf>,
    /// The default operator policy (`--policy`).
    pub policy: Option<PathBuf>,
    /// Where journals go when `--journal` is not given.
    pub journal_dir: Option<PathBuf>,
    /// Default limits of a run.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// The `[limits]` table: defaults for the limit flags of `runbook run`.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// `--deadline`, seconds.
    pub deadline: Option<u64>,
    /// `--max-memory-mib`.
    pub max_memory_mib: Option<usize>,
    /// `--max-calls`.
    pub max_calls: Option<u32>,
    /// `--max-arg-bytes`.
    pub max_arg_bytes: Option<usize>,
    /// `--max-log-bytes`.
    pub max_log_bytes: Option<usize>,
    /// `--max-fuel`.
    pub max_fuel: Option<u64>,
}

/// Where the configuration was looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `RUNBOOK_CONFIG` named it.
    Env,
    /// The XDG default place.
    Default,
}

/// The configuration in effect, and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file looked at.
    pub path: PathBuf,
    /// How that file was chosen.
    pub origin: Origin,
    /// Whether it exists (a missing default file means defaults only).
    pub present: bool,
    /// Its contents, paths resolved.
    pub config: Config,
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// The default place: `$XDG_CONFIG_HOME/runbook/config.toml`, or
/// `~/.config/runbook/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| dirs::home_dir().map(|h| h.join(".config")))?;
    Some(base.join("runbook/config.toml"))
}

/// Load the configuration in effect. A file `RUNBOOK_CONFIG` names must exist;
/// the default file may be absent (then every value is its default).
pub fn load() -> Result<Loaded, ConfigError> {
    let (path, origin) = match std::env::var_os("RUNBOOK_CONFIG").filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), Origin::Env),
        None => match default_path() {
            Some(p) => (p, Origin::Default),
            None => {
                return Ok(Loaded {
                    path: PathBuf::from("~/.config/runbook/config.toml"),
                    origin: Origin::Default,
                    present: false,
                    config: Config::default(),
                });
            }
        },
    };
    let text = match read_capped(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && origin == Origin::Default => {
            return Ok(Loaded {
                path,
                origin,
                present: false,
                config: Config::default(),
            });
        }
        Err(e) => {
            let why = match origin {
                Origin::Env => "RUNBOOK_CONFIG names it; fix the path or unset RUNBOOK_CONFIG",
                Origin::Default => "fix its permissions or remove it",
            };
            return Err(ConfigError(format!(
                "cannot read the configuration file {}: {e} ({why})",
                printable_path(&path)
            )));
        }
    };
    let config = parse(&path, &text)?;
    Ok(Loaded {
        path,
        origin,
        present: true,
        config,
    })
}

fn read_capped(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} KiB",
            MAX_CONFIG_BYTES >> 10
        )));
    }
    Ok(text)
}

/// Parse the text of the configuration file at `path`, resolving its paths.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let mut config: Config = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                format!(":{line}")
            })
            .unwrap_or_default();
        ConfigError(format!(
            "{}{at}: {}; the keys are trusted-signers, sign-journal, policy, journal-dir and a [limits] table (deadline, max-memory-mib, max-calls, max-arg-bytes, max-log-bytes, max-fuel): see `runbook config --help`",
            printable_path(path),
            printable(e.message().trim())
        ))
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    for p in [
        &mut config.trusted_signers,
        &mut config.sign_journal,
        &mut config.policy,
        &mut config.journal_dir,
    ]
    .into_iter()
    .flatten()
    {
        *p = resolve(base, p);
    }
    Ok(config)
}

/// `p` from a file in `base`: `~/` is the home directory, a relative path is
/// relative to `base`.
fn resolve(base: &Path, p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = dirs::home_dir()
    {
        return home.join(rest);
    }
    base.join(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_file_and_home() {
        let c = parse(
            Path::new("/etc/runbook/config.toml"),
            "policy = \"policy.toml\"\ntrusted-signers = \"/abs/signers\"\n[limits]\ndeadline = 60\n",
        )
        .unwrap();
        assert_eq!(c.policy, Some(PathBuf::from("/etc/runbook/policy.toml")));
        assert_eq!(c.trusted_signers, Some(PathBuf::from("/abs/signers")));
        assert_eq!(c.limits.deadline, Some(60));
        let c = parse(Path::new("/x/c.toml"), "journal-dir = \"~/j\"").unwrap();
        assert_eq!(c.journal_dir, dirs::home_dir().map(|h| h.join("j")));
    }

    #[test]
    fn an_unknown_key_is_refused_naming_the_file_and_line() {
        let e = parse(
            Path::new("/etc/runbook/config.toml"),
            "policy = \"p.toml\"\ntrusted-signer = \"/x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("/etc/runbook/config.toml:2: "), "{e}");
        assert!(e.contains("trusted-signer"), "{e}");
    }

    #[test]
    fn a_wrong_type_is_refused() {
        let e = parse(Path::new("c.toml"), "[limits]\ndeadline = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:2: "), "{e}");
    }
}
