//! `secrets:` (SPEC 10c): where MCP secrets come from and what a missing one does. It names
//! where secrets are, never a value; resolving them is `mcp::secrets`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What a placeholder without a value does to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMissing {
    /// The server fails (`!`, exit 1); nothing is written for it. Kasetto spells it `error`.
    Fail,
    /// The server is written with the placeholder left as it is, with a warning (Kasetto's
    /// `warn`); the next sync with the secret set fills it in.
    Warn,
    /// The server is not written, with a warning; what kst wrote before stays
    /// (`--allow-missing-secrets`).
    Skip,
}

impl<'de> Deserialize<'de> for OnMissing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "fail" | "error" => Ok(OnMissing::Fail),
            "warn" => Ok(OnMissing::Warn),
            "skip" => Ok(OnMissing::Skip),
            _ => Err(serde::de::Error::custom(format!(
                "unknown on_missing {:?}; use fail, warn or skip",
                s.escape_debug().to_string()
            ))),
        }
    }
}

/// `secrets:` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecrets {
    #[serde(default, alias = "on-missing")]
    on_missing: Option<OnMissing>,
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    keepass: Option<RawKeePass>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeePass {
    database: String,
    #[serde(default, alias = "key-file")]
    key_file: Option<String>,
}

/// `secrets:`, with its paths made absolute. It names where secrets are, never a value.
#[derive(Debug, Clone, Default)]
pub struct SecretsConfig {
    pub on_missing: Option<OnMissing>,
    /// Extra credentials files, searched after `credentials.yaml`.
    pub files: Vec<PathBuf>,
    pub keepass: Option<KeePass>,
}

#[derive(Debug, Clone)]
pub struct KeePass {
    pub database: PathBuf,
    pub key_file: Option<PathBuf>,
}

/// `~/x` → HOME, relative → the config's folder; a remote config may only name absolute or
/// `~/` paths.
fn config_path(raw: &str, label: &str, base: Option<&Path>) -> crate::error::Result<PathBuf> {
    if raw.is_empty() || raw.chars().any(|c| c.is_control()) {
        return Err(crate::error::Error::usage(format!(
            "{label}: secrets: {:?} is not a usable path",
            raw.escape_debug().to_string()
        )));
    }
    if let Some(rest) = raw.strip_prefix("~/") {
        return Ok(crate::dirs::home()?.join(rest));
    }
    let p = Path::new(raw);
    match base {
        _ if p.is_absolute() => Ok(p.to_path_buf()),
        Some(b) => Ok(b.join(p)),
        None => Err(crate::error::Error::usage(format!(
            "{label}: a remote config cannot name a relative secrets path ({raw:?}); use an absolute or ~/ path"
        ))),
    }
}

impl RawSecrets {
    /// Validate and make paths absolute (relative to `base`, the config's folder).
    pub fn build(self, label: &str, base: Option<&Path>) -> crate::error::Result<SecretsConfig> {
        let mut files = Vec::new();
        for f in &self.files {
            files.push(config_path(f, label, base)?);
        }
        let keepass = match self.keepass {
            None => None,
            Some(k) => Some(KeePass {
                database: config_path(&k.database, label, base)?,
                key_file: match k.key_file {
                    Some(kf) => Some(config_path(&kf, label, base)?),
                    None => None,
                },
            }),
        };
        Ok(SecretsConfig {
            on_missing: self.on_missing,
            files,
            keepass,
        })
    }
}

impl SecretsConfig {
    /// `child` over `parent` (`extends`): settings replace, files add up (parent's first).
    pub fn merge(parent: Option<Self>, child: Option<Self>) -> Option<Self> {
        match (parent, child) {
            (p, None) => p,
            (None, c) => c,
            (Some(p), Some(c)) => {
                let mut files = p.files;
                for f in c.files {
                    if !files.contains(&f) {
                        files.push(f);
                    }
                }
                Some(SecretsConfig {
                    on_missing: c.on_missing.or(p.on_missing),
                    files,
                    keepass: c.keepass.or(p.keepass),
                })
            }
        }
    }
}
