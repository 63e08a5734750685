//! Who vouches for a component, and for a journal: OpenSSH signatures.
//!
//! A runbook component is signed with an SSH key into a detached `SSHSIG`
//! signature (`ssh-keygen -Y sign`'s format, namespace [`NAMESPACE`]), and a
//! run checks it against an `allowed_signers` file (git's and `ssh-keygen -Y
//! verify`'s format) before any of the component is parsed. A run's journal
//! is signed the same way over its last line's hash (namespace
//! [`JOURNAL_NAMESPACE`]): the hash chain binds every line to the last, so the
//! signature binds the whole file, and a rewrite with a recomputed chain
//! fails without the key.
//!
//! The cryptography and the key and signature formats are RustCrypto's
//! `ssh-key`; this module reads `allowed_signers` (its options, time windows
//! and namespace patterns, as `ssh-keygen` does) and words the refusals.
//!
//! `cert-authority` lines are not supported: a signature by an OpenSSH
//! certificate is not checked here. Such a line is skipped (a file shared
//! with git may hold them) and named when no other line accepts the key.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// The SSHSIG namespace of a runbook component's signature.
pub const NAMESPACE: &str = "runbook";

/// The SSHSIG namespace of a journal's signature (over its last line's
/// sha256, in hex). Distinct from [`NAMESPACE`], so a component signature can
/// never pass for a journal's, nor the other way round.
pub const JOURNAL_NAMESPACE: &str = "runbook-journal";

/// The signature hash `ssh-keygen -Y sign` uses.
const HASH: HashAlg = HashAlg::Sha512;

/// The most a private key, public key list or signature file may hold: an
/// RSA-16384 private key is about 12 KiB, a signature a few; an
/// allowed_signers file of thousands of keys fits. Bounds what a wrong path
/// (a device, a huge file) makes the host read.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// Who signed: the principals of the `allowed_signers` line that accepted
/// the key (as `ssh-keygen -Y find-principals` prints them), and the key's
/// fingerprint (as `ssh-keygen -l` prints it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// The principals field of the accepting line, e.g. `alice@example.com`.
    pub principal: String,
    /// The key's fingerprint, `SHA256:` and unpadded base64.
    pub fingerprint: String,
}

/// Why a key, a signers file or a signature could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The private key file is not an OpenSSH private key we can use.
    #[error("{path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The private key is protected by a passphrase and none was given.
    #[error(
        "{path} is encrypted with a passphrase: set RUNBOOK_KEY_PASSPHRASE, run on a terminal to be asked, or decrypt a copy with ssh-keygen -p or use an unencrypted key"
    )]
    Encrypted {
        /// The file.
        path: String,
    },
    /// A line of an allowed_signers file is wrong.
    #[error("{path}:{line}: {reason}")]
    AllowedSigners {
        /// The file.
        path: String,
        /// The line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The signature is missing, malformed, or not accepted.
    #[error("{0}")]
    Refused(String),
}

/// A private key, read and (if it was encrypted) decrypted.
pub struct SigningKey {
    key: PrivateKey,
    path: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("path", &self.path)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl SigningKey {
    /// Read the OpenSSH private key at `path` (as `ssh-keygen` writes it),
    /// decrypting it with `passphrase` if it is encrypted. An encrypted key
    /// without a passphrase is [`SigningError::Encrypted`].
    pub fn read(path: &Path, passphrase: Option<&str>) -> Result<SigningKey, SigningError> {
        let shown = crate::transcript::printable_path(path);
        let text = read_capped(path)?;
        let key_error = |reason: String| SigningError::Key {
            path: shown.clone(),
            reason,
        };
        let text = String::from_utf8(text).map_err(|_| {
            key_error("not an OpenSSH private key (not text); give the private key file ssh-keygen wrote, e.g. ~/.ssh/id_ed25519".into())
        })?;
        if text.contains("-----BEGIN SSH SIGNATURE-----") || text.starts_with("ssh-") {
            return Err(key_error(
                "this is a public key or a signature, not a private key; give the private key file (without .pub)".into(),
            ));
        }
        let key = PrivateKey::from_openssh(text.trim()).map_err(|e| {
            key_error(format!(
                "not an OpenSSH private key ({e}); give the private key file ssh-keygen wrote (-----BEGIN OPENSSH PRIVATE KEY-----), or convert a PEM key with ssh-keygen -p -f FILE"
            ))
        })?;
        let key = if key.is_encrypted() {
            let Some(passphrase) = passphrase else {
                return Err(SigningError::Encrypted { path: shown });
            };
            key.decrypt(passphrase).map_err(|e| {
                key_error(format!(
                    "cannot decrypt the key ({e}): the passphrase is wrong, or the cipher is not supported; decrypt a copy with ssh-keygen -p or use an unencrypted key"
                ))
            })?
        } else {
            key
        };
        Ok(SigningKey { key, path: shown })
    }

    /// The key's fingerprint, `SHA256:...`.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// Sign `msg` for `namespace`: an armored `SSHSIG` (`-----BEGIN SSH
    /// SIGNATURE-----`), as `ssh-keygen -Y sign -n NAMESPACE` writes it.
    pub fn sign(&self, namespace: &str, msg: &[u8]) -> Result<String, SigningError> {
        let sig = match self.key.key_data() {
            ssh_key::private::KeypairData::Rsa(pair) => {
                sign_rsa(self.key.public_key().key_data(), pair, namespace, msg)
            }
            _ => self.key.sign(namespace, HASH, msg),
        };
        let sig = sig.map_err(|e| SigningError::Key {
            path: self.path.clone(),
            reason: format!(
                "cannot sign with this key ({e}); use an ed25519, ECDSA or RSA key made by ssh-keygen (security-key types are not supported)"
            ),
        })?;
        sig.to_pem(LineEnding::LF)
            .map_err(|e| SigningError::Refused(format!("cannot encode the signature: {e}")))
    }
}

/// An RSA signature as `ssh-keygen -Y sign` makes it (PKCS#1 v1.5 over
/// SHA-512, `rsa-sha2-512`). ssh-key 0.6.7 would do the same but builds the
/// private key from the primes p and p, which the rsa crate rejects
/// (RustCrypto/SSH#387): the key is built here from p and q.
fn sign_rsa(
    public: &ssh_key::public::KeyData,
    pair: &ssh_key::private::RsaKeypair,
    namespace: &str,
    msg: &[u8],
) -> ssh_key::Result<SshSig> {
    use rsa::signature::{SignatureEncoding, Signer};
    let int = |m: &ssh_key::Mpint| {
        m.as_positive_bytes()
            .map(rsa::BigUint::from_bytes_be)
            .ok_or(ssh_key::Error::Crypto)
    };
    let key = rsa::RsaPrivateKey::from_components(
        int(&pair.public.n)?,
        int(&pair.public.e)?,
        int(&pair.private.d)?,
        vec![int(&pair.private.p)?, int(&pair.private.q)?],
    )
    .map_err(|_| ssh_key::Error::Crypto)?;
    let signed = SshSig::signed_data(namespace, HASH, msg)?;
    let data = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(key)
        .try_sign(&signed)
        .map_err(|_| ssh_key::Error::Crypto)?
        .to_vec();
    let signature = ssh_key::Signature::new(
        ssh_key::Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        data,
    )?;
    SshSig::new(public.clone(), namespace, HASH, signature)
}

/// One accepted line of an allowed_signers file.
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    principals: String,
    cert_authority: bool,
    namespaces: Option<String>,
    valid_after: Option<(jiff::Timestamp, String)>,
    valid_before: Option<(jiff::Timestamp, String)>,
    key: PublicKey,
}

/// An `allowed_signers` file: who may sign, with which key, for which
/// namespaces, and when (see `ssh-keygen(1)`, ALLOWED SIGNERS).
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    path: String,
    entries: Vec<Entry>,
}

impl AllowedSigners {
    /// Read and check the allowed_signers file at `path`; a wrong line is an
    /// error naming it, as `ssh-keygen -Y verify` refuses such a file.
    pub fn read(path: &Path) -> Result<AllowedSigners, SigningError> {
        let shown = crate::transcript::printable_path(path);
        let bytes = read_capped(path)?;
        let text = String::from_utf8(bytes).map_err(|_| SigningError::Read {
            path: shown.clone(),
            reason: "not UTF-8 text (an allowed_signers file is text: principals, options, key)"
                .into(),
        })?;
        AllowedSigners::parse(&shown, &text)
    }

    /// Check allowed_signers text; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<AllowedSigners, SigningError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |reason: String| SigningError::AllowedSigners {
                path: path.to_owned(),
                line: line_no,
                reason,
            };
            entries.push(parse_line(line_no, line).map_err(error)?);
        }
        Ok(AllowedSigners {
            path: path.to_owned(),
            entries,
        })
    }

    /// How many keys the file lists (certificate authorities included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file lists no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Check `armored` (an `SSHSIG`, read from the file named `sig_path`)
    /// over `msg` (named `what`): it must be for `namespace`, by a key this
    /// file lists for that namespace at this time, and match `msg`. Returns
    /// who signed, or a refusal that says why and how to fix it.
    pub fn verify(
        &self,
        namespace: &str,
        msg: &[u8],
        what: &str,
        armored: &[u8],
        sig_path: &str,
    ) -> Result<Signer, SigningError> {
        self.verify_at(
            namespace,
            msg,
            what,
            armored,
            sig_path,
            jiff::Timestamp::now(),
        )
    }

    fn verify_at(
        &self,
        namespace: &str,
        msg: &[u8],
        what: &str,
        armored: &[u8],
        sig_path: &str,
        now: jiff::Timestamp,
    ) -> Result<Signer, SigningError> {
        let refuse = |m: String| Err(SigningError::Refused(m));
        let sig = match SshSig::from_pem(armored) {
            Ok(s) => s,
            Err(e) => {
                return refuse(format!(
                    "{sig_path} is not an SSH signature ({e}); make one with `runbook sign` or `ssh-keygen -Y sign -n {namespace}`"
                ));
            }
        };
        if sig.namespace() != namespace {
            return refuse(format!(
                "{sig_path} is signed for namespace '{}', not '{namespace}': it vouches for something else; sign with `runbook sign` or `ssh-keygen -Y sign -n {namespace}`",
                crate::transcript::printable(sig.namespace())
            ));
        }
        let key = PublicKey::from(sig.public_key().clone());
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if let Err(e) = key.verify(namespace, msg, &sig) {
            return refuse(format!(
                "{sig_path} does not match {what} ({e}): {what} changed after it was signed, or the signature is for another file"
            ));
        }
        let listed: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.key.key_data() == sig.public_key())
            .collect();
        if listed.is_empty() {
            return refuse(format!(
                "{sig_path} is signed by key {fingerprint}, which {} does not list: add the signer's public key there if you trust it",
                self.path
            ));
        }
        let mut reasons = Vec::new();
        for e in listed {
            let at = format!("{}:{}", self.path, e.line);
            if e.cert_authority {
                reasons.push(format!(
                    "{at} lists it as a cert-authority, which is not supported (only a signer's own key is); list the key without cert-authority"
                ));
                continue;
            }
            if let Some(patterns) = &e.namespaces
                && !match_pattern_list(namespace, patterns)
            {
                reasons.push(format!(
                    "{at} allows it only for namespaces \"{patterns}\", not '{namespace}'"
                ));
                continue;
            }
            if let Some((after, shown)) = &e.valid_after
                && now < *after
            {
                reasons.push(format!(
                    "{at} lists it as valid only after {shown} (valid-after): not yet valid"
                ));
                continue;
            }
            if let Some((before, shown)) = &e.valid_before
                && now > *before
            {
                reasons.push(format!(
                    "{at} lists it as valid only before {shown} (valid-before): it expired"
                ));
                continue;
            }
            return Ok(Signer {
                principal: e.principals.clone(),
                fingerprint,
            });
        }
        refuse(format!(
            "{sig_path} is signed by key {fingerprint}, but no line of {} accepts it now: {}",
            self.path,
            reasons.join("; ")
        ))
    }
}

/// One non-comment line: `principals [options] keytype base64 [comment]`.
fn parse_line(line_no: usize, line: &str) -> Result<Entry, String> {
    let (principals, rest) = token(line)?;
    let rest = rest.trim_start();
    if principals.is_empty() || rest.is_empty() || rest.starts_with('#') {
        return Err(
            "a line is `PRINCIPALS [OPTIONS] KEYTYPE BASE64 [COMMENT]`: the key is missing".into(),
        );
    }
    // As ssh-keygen: a key where one parses, else options and then the key.
    let (options, key_text) = match PublicKey::from_openssh(rest) {
        Ok(_) => (None, rest),
        Err(_) => {
            let (options, after) = token(rest)?;
            (Some(options), after.trim_start())
        }
    };
    let key = PublicKey::from_openssh(key_text).map_err(|e| {
        format!(
            "not a public key ({e}): after the principals (and options), give the key as in a .pub file, e.g. `ssh-ed25519 AAAA... comment`"
        )
    })?;
    let mut entry = Entry {
        line: line_no,
        principals,
        cert_authority: false,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key,
    };
    if let Some(options) = options {
        parse_options(&options, &mut entry)?;
    }
    if let (Some((after, a)), Some((before, b))) = (&entry.valid_after, &entry.valid_before)
        && before <= after
    {
        return Err(format!(
            "valid-before {b} is not later than valid-after {a}: the key would never be valid"
        ));
    }
    Ok(entry)
}

/// The next whitespace-delimited token of `s`, with double quotes kept
/// together (and removed), and the rest of `s`.
fn token(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Ok((out, &s[i..])),
            c => out.push(c),
        }
    }
    if quoted {
        return Err("a double quote is not closed".into());
    }
    Ok((out, ""))
}

/// Options, comma-separated: `cert-authority`, `namespaces="..."`,
/// `valid-after="..."`, `valid-before="..."` (names in any case, as
/// ssh-keygen reads them). Quotes were removed by [`token`], so a value
/// holding commas (`namespaces="git,runbook"`) is split by its quotes here.
fn parse_options(options: &str, entry: &mut Entry) -> Result<(), String> {
    // `token` dropped the quotes: split on commas that start a new option
    // (`name=` or a bare option name), keeping a value's own commas.
    let mut parts: Vec<String> = Vec::new();
    for piece in options.split(',') {
        let lower = piece.to_ascii_lowercase();
        let starts_option = [
            "cert-authority",
            "namespaces=",
            "valid-after=",
            "valid-before=",
        ]
        .iter()
        .any(|o| lower.starts_with(o));
        match parts.last_mut() {
            Some(last)
                if !starts_option && last.to_ascii_lowercase().starts_with("namespaces=") =>
            {
                last.push(',');
                last.push_str(piece);
            }
            _ => parts.push(piece.to_owned()),
        }
    }
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.to_ascii_lowercase(), Some(v)),
            None => (part.to_ascii_lowercase(), None),
        };
        match (name.as_str(), value) {
            ("cert-authority", None) => entry.cert_authority = true,
            ("namespaces", Some(v)) => entry.namespaces = Some(v.to_owned()),
            ("valid-after", Some(v)) => entry.valid_after = Some((parse_time(v)?, v.to_owned())),
            ("valid-before", Some(v)) => entry.valid_before = Some((parse_time(v)?, v.to_owned())),
            _ => {
                return Err(format!(
                    "unknown option '{}': the options are cert-authority, namespaces=\"...\", valid-after=\"...\" and valid-before=\"...\"",
                    crate::transcript::printable(&part)
                ));
            }
        }
    }
    Ok(())
}

/// A time as ssh-keygen takes it: `YYYYMMDD`, `YYYYMMDDHHMM` or
/// `YYYYMMDDHHMMSS`, in UTC with a trailing `Z`, else in the local time zone.
fn parse_time(text: &str) -> Result<jiff::Timestamp, String> {
    let wrong = || {
        format!(
            "'{}' is not a time: give YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z] (Z for UTC, else local time)",
            crate::transcript::printable(text)
        )
    };
    let (digits, utc) = match text.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (text, false),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(wrong());
    }
    let n = |r: std::ops::Range<usize>| digits.get(r).map_or(Ok(0), str::parse::<i16>);
    let field = |r| n(r).map_err(|_| wrong());
    let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
    let small = |v: i16| i8::try_from(v).map_err(|_| wrong());
    let civil = jiff::civil::DateTime::new(
        year,
        small(month)?,
        small(day)?,
        small(hour)?,
        small(minute)?,
        small(second)?,
        0,
    )
    .map_err(|e| format!("{}: {e}", wrong()))?;
    let tz = if utc {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::system()
    };
    tz.to_timestamp(civil)
        .map_err(|e| format!("{}: {e}", wrong()))
}

/// OpenSSH's `match_pattern_list`: comma-separated patterns with `*` and `?`;
/// a matching `!pattern` rejects outright, else any match accepts.
fn match_pattern_list(s: &str, list: &str) -> bool {
    let mut accepted = false;
    for pattern in list.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if glob(s.as_bytes(), pattern.as_bytes()) {
            if negated {
                return false;
            }
            accepted = true;
        }
    }
    accepted
}

/// `*` (any run) and `?` (any one byte) matching of the whole of `s`.
fn glob(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// Read a small file: a regular file of at most [`MAX_FILE_BYTES`].
pub fn read_capped(path: &Path) -> Result<Vec<u8>, SigningError> {
    let shown = crate::transcript::printable_path(path);
    let fail = |reason: String| SigningError::Read {
        path: shown.clone(),
        reason,
    };
    let mut options = std::fs::File::options();
    options.read(true);
    // A FIFO would block the open until a writer came.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        rustix::fs::OFlags::NONBLOCK.bits() as i32,
    );
    let file = options.open(path).map_err(|e| fail(e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(format!(
            "larger than {} MiB, more than any key, signature or allowed_signers file",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(bytes)
}

/// Where a file's detached signature is looked for: `FILE.sig` beside it.
pub fn signature_path(file: &Path) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".sig");
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The ed25519 example key of ssh-key's documentation (public, for tests only).
    const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACCzPq7zfqLffKoBDe/eo04kH2XxtSmk9D7RQyf1xUqrYgAAAJgAIAxdACAM
XQAAAAtzc2gtZWQyNTUxOQAAACCzPq7zfqLffKoBDe/eo04kH2XxtSmk9D7RQyf1xUqrYg
AAAEC2BsIi0QwW2uFscKTUUXNHLsYX4FxlaSDSblbAj7WR7bM+rvN+ot98qgEN796jTiQf
ZfG1KaT0PtFDJ/XFSqtiAAAAEHVzZXJAZXhhbXBsZS5jb20BAgMEBQ==
-----END OPENSSH PRIVATE KEY-----";
    const PUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

    fn key() -> SigningKey {
        SigningKey {
            key: PrivateKey::from_openssh(KEY).unwrap(),
            path: "key".into(),
        }
    }

    fn at(date: &str) -> jiff::Timestamp {
        parse_time(date).unwrap()
    }

    fn check(signers: &str, ns: &str, now: &str) -> Result<Signer, SigningError> {
        let sig = key().sign(ns, b"bytes").unwrap();
        AllowedSigners::parse("allowed", signers)
            .unwrap()
            .verify_at(
                NAMESPACE,
                b"bytes",
                "c.wasm",
                sig.as_bytes(),
                "c.wasm.sig",
                at(now),
            )
    }

    #[test]
    fn a_listed_key_is_accepted_with_its_principals_and_fingerprint() {
        let s = check(
            &format!("# team\n\nalice@example.com {PUB} laptop\n"),
            NAMESPACE,
            "20250101Z",
        )
        .unwrap();
        assert_eq!(s.principal, "alice@example.com");
        assert_eq!(s.fingerprint, key().fingerprint());
        assert!(s.fingerprint.starts_with("SHA256:"), "{}", s.fingerprint);
    }

    #[test]
    fn options_are_read_and_enforced() {
        let line = |opts: &str| format!("alice {opts} {PUB}\n");
        check(&line(r#"namespaces="git,runbook""#), NAMESPACE, "20250101Z").unwrap();
        let e = check(&line(r#"namespaces="git,file""#), NAMESPACE, "20250101Z").unwrap_err();
        assert!(
            e.to_string().contains(r#"only for namespaces "git,file""#),
            "{e}"
        );
        let e = check(&line(r#"namespaces="*,!runbook""#), NAMESPACE, "20250101Z").unwrap_err();
        assert!(e.to_string().contains("allowed:1"), "{e}");
        let e = check(&line(r#"valid-before="20240101Z""#), NAMESPACE, "20250101Z").unwrap_err();
        assert!(e.to_string().contains("it expired"), "{e}");
        let e = check(
            &line(r#"VALID-AFTER="20260101120000Z""#),
            NAMESPACE,
            "20250101Z",
        )
        .unwrap_err();
        assert!(e.to_string().contains("not yet valid"), "{e}");
        check(
            &line(r#"valid-after="20240101Z",valid-before="202601011200Z""#),
            NAMESPACE,
            "20250101Z",
        )
        .unwrap();
        let e = check(&line("cert-authority"), NAMESPACE, "20250101Z").unwrap_err();
        assert!(
            e.to_string()
                .contains("cert-authority, which is not supported"),
            "{e}"
        );
    }

    #[test]
    fn a_later_line_may_accept_a_key_an_earlier_one_refuses() {
        let signers =
            format!("old valid-before=\"20200101Z\" {PUB}\nnew valid-after=\"20200101Z\" {PUB}\n");
        assert_eq!(
            check(&signers, NAMESPACE, "20250101Z").unwrap().principal,
            "new"
        );
    }

    #[test]
    fn wrong_lines_are_named_by_line() {
        for (text, says) in [
            ("alice\n", "the key is missing"),
            ("alice ssh-ed25519 AAAA\n", "not a public key"),
            (
                &format!("alice bogus=\"1\" {PUB}\n"),
                "unknown option 'bogus=1'",
            ),
            (
                &format!("alice valid-after=\"2024\" {PUB}\n"),
                "'2024' is not a time",
            ),
            (
                &format!("alice valid-after=\"20241301Z\" {PUB}\n"),
                "is not a time",
            ),
            (&format!("\"alice {PUB}\n"), "not closed"),
            (
                &format!("a valid-after=\"20250101Z\",valid-before=\"20240101Z\" {PUB}\n"),
                "never be valid",
            ),
        ] {
            let e = AllowedSigners::parse("allowed", &format!("# c\n{text}")).unwrap_err();
            let e = e.to_string();
            assert!(e.starts_with("allowed:2: "), "{e}");
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn a_signature_for_another_namespace_or_message_is_refused() {
        let signers = format!("alice {PUB}\n");
        let e = check(&signers, "file", "20250101Z")
            .unwrap_err()
            .to_string();
        assert!(e.contains("namespace 'file', not 'runbook'"), "{e}");
        let sig = key().sign(NAMESPACE, b"bytes").unwrap();
        let e = AllowedSigners::parse("allowed", &signers)
            .unwrap()
            .verify(NAMESPACE, b"bytez", "c.wasm", sig.as_bytes(), "c.wasm.sig")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not match c.wasm"), "{e}");
        let e = AllowedSigners::parse("allowed", &signers)
            .unwrap()
            .verify(NAMESPACE, b"bytes", "c.wasm", b"hello", "c.wasm.sig")
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.wasm.sig is not an SSH signature"), "{e}");
    }

    #[test]
    fn patterns_match_as_openssh_does() {
        assert!(match_pattern_list("runbook", "runbook"));
        assert!(match_pattern_list("runbook", "git,run*"));
        assert!(match_pattern_list("runbook", "r?nbook"));
        assert!(!match_pattern_list("runbook", "run"));
        assert!(!match_pattern_list("runbook", "*,!runbook"));
        assert!(!match_pattern_list("runbook-journal", "runbook"));
    }
}
