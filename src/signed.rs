//! Signed pins (SPEC 16): `trust: { allowed-signers: FILE }` makes every git pin of a source
//! prove who made it. The pinned commit's SSH signature (its `gpgsig` header), or for a tag pin
//! the annotated tag's, must verify (namespace `git`) against a key listed in FILE, which is in
//! ssh's `allowed_signers` format. The signer's key fingerprint (`SHA256:…`) goes into the
//! lock, and `kst verify` checks it again offline.
//!
//! Verification is pure Rust (the `ssh-key` crate); `ssh-keygen` is never run. Nothing of the
//! allowed-signers file or of a signature is ever quoted in a message: the file may be any file.

use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository};
use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::request::Requested;

/// The sshsig namespace git signs commits and tags in.
pub const NAMESPACE: &str = "git";

/// The largest allowed-signers file read.
pub const SIGNERS_CAP: u64 = 1 << 20;

/// A parsed `allowed_signers` file.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    /// Where it was read from, for messages.
    pub file: PathBuf,
    keys: Vec<Allowed>,
}

#[derive(Debug, Clone)]
struct Allowed {
    key: PublicKey,
    /// `namespaces="…"`: the key signs only in these; `None`: in every namespace.
    namespaces: Option<Vec<String>>,
}

impl AllowedSigners {
    /// Read `file` (a regular file under [`SIGNERS_CAP`]; with `within`, inside that folder
    /// after resolving symlinks) and parse it.
    pub fn read(file: &Path, within: Option<&Path>) -> Result<AllowedSigners, String> {
        let text = crate::fsx::read_input(file, SIGNERS_CAP, within).map_err(|e| match e {
            crate::fsx::ReadError::Outside(root) => format!(
                "{} is outside the project {}; in the project scope the allowed-signers file \
                 must be inside the project (or run with --global)",
                file.display(),
                root.display()
            ),
            e => format!("cannot read allowed-signers file {}: {e}", file.display()),
        })?;
        AllowedSigners::parse(file, &text)
    }

    /// Parse the text of an `allowed_signers` file: one key a line, `principals [options]
    /// keytype base64 [comment]`; blank lines and `#` comments are skipped. Options kst does
    /// not enforce (`cert-authority`, `valid-after`, `valid-before`) are refused, never
    /// ignored: a key limited in time must not be trusted forever.
    pub fn parse(file: &Path, text: &str) -> Result<AllowedSigners, String> {
        let bad = |line: usize, why: &str| {
            format!(
                "{}:{line}: {why} (format: `principals [namespaces=\"git\"] keytype base64-key`, \
                 as for `git config gpg.ssh.allowedSignersFile`)",
                file.display()
            )
        };
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (_principals, rest) = token(line).ok_or_else(|| bad(n, "no key"))?;
            let rest = rest.trim_start();
            let (options, key_text) = if starts_with_key_type(rest) {
                (None, rest)
            } else {
                let (opts, after) = token(rest).ok_or_else(|| bad(n, "no key"))?;
                (Some(opts), after.trim_start())
            };
            let mut namespaces = None;
            for opt in options.map(split_options).unwrap_or_default() {
                let (name, value) = match opt.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), Some(v.trim_matches('"'))),
                    None => (opt.to_ascii_lowercase(), None),
                };
                match (name.as_str(), value) {
                    ("namespaces", Some(v)) => {
                        namespaces = Some(v.split(',').map(|s| s.trim().to_string()).collect());
                    }
                    ("cert-authority", _) => {
                        return Err(bad(
                            n,
                            "cert-authority keys are not supported; list the signing keys themselves",
                        ));
                    }
                    ("valid-after" | "valid-before", _) => {
                        return Err(bad(
                            n,
                            "valid-after/valid-before are not supported; remove the key or the limit",
                        ));
                    }
                    _ => return Err(bad(n, "unknown option")),
                }
            }
            if key_text.is_empty() {
                return Err(bad(n, "no key"));
            }
            let key = PublicKey::from_openssh(key_text)
                .map_err(|_| bad(n, "the key does not parse as an OpenSSH public key"))?;
            keys.push(Allowed { key, namespaces });
        }
        Ok(AllowedSigners {
            file: file.to_path_buf(),
            keys,
        })
    }

    /// Is the key with this fingerprint (`SHA256:…`) allowed to sign in the `git` namespace?
    pub fn allows_fingerprint(&self, fingerprint: &str) -> bool {
        self.keys.iter().any(|a| {
            a.key.fingerprint(HashAlg::Sha256).to_string() == fingerprint
                && a.namespaces
                    .as_ref()
                    .is_none_or(|ns| ns.iter().any(|n| n == NAMESPACE))
        })
    }

    /// Is `key` allowed to sign in the `git` namespace?
    fn allows(&self, key: &ssh_key::public::KeyData) -> bool {
        self.keys.iter().any(|a| {
            a.key.key_data() == key
                && a.namespaces
                    .as_ref()
                    .is_none_or(|ns| ns.iter().any(|n| n == NAMESPACE))
        })
    }
}

/// The first whitespace-separated token of `s` (double quotes group), and the rest.
fn token(s: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Some((&s[..i], &s[i..])),
            _ => {}
        }
    }
    (!s.is_empty()).then_some((s, ""))
}

/// `a,b="x,y",c` → `["a", "b=\"x,y\"", "c"]`.
fn split_options(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|o| !o.is_empty()).collect()
}

fn starts_with_key_type(s: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// Which object carried the signature of a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedObject {
    Commit,
    Tag,
}

/// A verified signature: the signer's key fingerprint (`SHA256:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub fingerprint: String,
    pub object: SignedObject,
}

/// Verify the pin `commit` (asked for as `requested`) against `allowed`: for a tag pin whose
/// annotated tag is in the cache and points to `commit`, the tag's signature; otherwise the
/// commit's. The error says which object, why, and which allowed-signers file.
pub fn verify_pin(
    repo: &Repository,
    commit: Oid,
    requested: &Requested,
    allowed: &AllowedSigners,
) -> anyhow::Result<Signer> {
    let (object, signed) = signature_of(repo, commit, requested);
    let what = match object {
        SignedObject::Commit => format!("commit {commit}"),
        SignedObject::Tag => format!("the annotated tag pointing to commit {commit} ({requested})"),
    };
    let fail = |why: String| {
        anyhow::anyhow!(
            "signed pin refused: {what} {why}; allowed signers: {}. Nothing of this source was \
             installed: pin a commit signed by an allowed key, or add the signer's key to that file",
            allowed.file.display()
        )
    };
    let (sig, data) = signed.map_err(fail)?;
    if !allowed.allows(sig.public_key()) {
        return Err(fail(format!(
            "is signed by key {}, which is not an allowed signer (in namespace \"{NAMESPACE}\")",
            sig.public_key().fingerprint(HashAlg::Sha256)
        )));
    }
    check(&sig, &data).map_err(fail)?;
    Ok(Signer {
        fingerprint: sig.public_key().fingerprint(HashAlg::Sha256).to_string(),
        object,
    })
}

/// The signature of a pin, checked against the key it names only (not against any allowed
/// list): what `kst verify` compares with the lock's recorded fingerprint, offline.
pub fn signer_of(repo: &Repository, commit: Oid, requested: &Requested) -> Result<Signer, String> {
    let (object, signed) = signature_of(repo, commit, requested);
    let (sig, data) = signed?;
    check(&sig, &data)?;
    Ok(Signer {
        fingerprint: sig.public_key().fingerprint(HashAlg::Sha256).to_string(),
        object,
    })
}

/// The namespace and the cryptographic signature.
fn check(sig: &SshSig, data: &[u8]) -> Result<(), String> {
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "is signed in namespace {:?}, not \"{NAMESPACE}\"",
            crate::escape::escape_line(sig.namespace())
        ));
    }
    PublicKey::from(sig.public_key().clone())
        .verify(NAMESPACE, data, sig)
        .map_err(|_| "has a signature that does not verify (the object was changed after signing, or the signature is forged)".to_string())
}

type Signed = Result<(SshSig, Vec<u8>), String>;

/// Which object signs the pin, and its parsed signature with the signed bytes.
fn signature_of(repo: &Repository, commit: Oid, requested: &Requested) -> (SignedObject, Signed) {
    if let Requested::Tag(t) = requested
        && let Some(tag) = annotated_tag(repo, t, commit)
    {
        return (SignedObject::Tag, tag_signature(repo, tag));
    }
    (SignedObject::Commit, commit_signature(repo, commit))
}

/// The annotated tag `refs/tags/<name>` in the cache, when it peels to `commit`.
fn annotated_tag(repo: &Repository, name: &str, commit: Oid) -> Option<Oid> {
    let r = repo.find_reference(&format!("refs/tags/{name}")).ok()?;
    let target = r.target()?;
    let tag = repo.find_tag(target).ok()?;
    let peeled = tag.target().ok()?.peel_to_commit().ok()?;
    (peeled.id() == commit).then_some(target)
}

fn commit_signature(repo: &Repository, commit: Oid) -> Signed {
    let (sig, data) = repo
        .extract_signature(&commit, None)
        .map_err(|e| match e.code() {
            git2::ErrorCode::NotFound => "is not signed".to_string(),
            _ => format!("cannot be read from the cache ({})", e.message()),
        })?;
    Ok((parse_sig(&sig)?, data.to_vec()))
}

/// A tag object's signature is appended to its message: as git does, the last line that opens
/// a signature (`-----BEGIN SSH SIGNATURE-----`, or a PGP/X.509 one) starts it, and everything
/// before that line is what was signed.
fn tag_signature(repo: &Repository, tag: Oid) -> Signed {
    let odb = repo
        .odb()
        .map_err(|e| format!("cannot be read from the cache ({})", e.message()))?;
    let obj = odb
        .read(tag)
        .map_err(|e| format!("cannot be read from the cache ({})", e.message()))?;
    if obj.kind() != ObjectType::Tag {
        return Err("is not a tag object".into());
    }
    let raw = obj.data();
    const BEGINS: [&[u8]; 4] = [
        b"-----BEGIN SSH SIGNATURE-----",
        b"-----BEGIN PGP SIGNATURE-----",
        b"-----BEGIN PGP MESSAGE-----",
        b"-----BEGIN SIGNED MESSAGE-----",
    ];
    let start = (0..raw.len())
        .rev()
        .find(|&i| {
            (i == 0 || raw[i - 1] == b'\n') && BEGINS.iter().any(|b| raw[i..].starts_with(b))
        })
        .ok_or_else(|| "is not signed".to_string())?;
    Ok((parse_sig(&raw[start..])?, raw[..start].to_vec()))
}

fn parse_sig(armored: &[u8]) -> Result<SshSig, String> {
    if !armored.starts_with(b"-----BEGIN SSH SIGNATURE-----") {
        return Err(
            "is signed, but not with an SSH signature (GPG and X.509 signatures are not accepted)"
                .into(),
        );
    }
    SshSig::from_pem(armored).map_err(|_| "has an SSH signature that does not parse".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";

    fn parse(text: &str) -> Result<AllowedSigners, String> {
        AllowedSigners::parse(Path::new("/p/allowed_signers"), text)
    }

    #[test]
    fn allowed_signers_lines() {
        let a = parse(&format!(
            "# team\n\ndev@x.invalid {KEY} laptop\n\"a b\",c@x namespaces=\"git,file\" {KEY}\n"
        ))
        .unwrap();
        assert_eq!(a.keys.len(), 2);
        assert!(a.keys[0].namespaces.is_none());
        assert_eq!(
            a.keys[1].namespaces.as_deref(),
            Some(&["git".to_string(), "file".to_string()][..])
        );
        let only_file = parse(&format!("dev namespaces=\"file\" {KEY}\n")).unwrap();
        assert!(!only_file.allows(only_file.keys[0].key.key_data()));
        assert!(a.allows(a.keys[0].key.key_data()));
    }

    #[test]
    fn refused_lines_name_the_line_not_the_content() {
        for (text, why) in [
            (format!("dev cert-authority {KEY}"), "cert-authority"),
            (
                format!("dev valid-before=\"20300101\" {KEY}"),
                "valid-after",
            ),
            (format!("dev frobnicate {KEY}"), "unknown option"),
            (
                "dev ssh-ed25519 AAAAsecretish".to_string(),
                "does not parse",
            ),
            ("lonely".to_string(), "no key"),
        ] {
            let e = parse(&format!("# ok\n{text}\n")).unwrap_err();
            assert!(e.contains("/p/allowed_signers:2:"), "{e}");
            assert!(e.contains(why), "{e}");
            assert!(!e.contains("secretish"), "{e}");
        }
    }
}
