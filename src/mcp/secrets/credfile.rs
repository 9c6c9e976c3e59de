//! A credentials file (`credentials.yaml`, `secrets.files`): a YAML mapping of secret values.
//!
//! It holds plain-text secrets, so, like ssh with a private key, kst refuses one that other
//! users can read (group or world permission bits), and no error ever quotes its content: a
//! parse error names the file, the line and the column only.

use std::path::Path;

use serde_yaml_ng::Value as Yaml;

use super::{Secret, shown};

/// Larger than any plausible credentials file; read no further.
const MAX_BYTES: u64 = 1024 * 1024;

pub(super) struct CredFile {
    root: Yaml,
}

impl CredFile {
    /// `Ok(None)` when the file does not exist (the environment may provide everything).
    pub(super) fn load(path: &Path) -> Result<Option<CredFile>, String> {
        let at = shown(&path.display().to_string());
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read the credentials file {at}: {e}")),
        };
        if !meta.is_file() {
            return Err(format!(
                "the credentials file {at} is not a regular file; replace it with a YAML file"
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(format!(
                    "the credentials file {at} can be read by other users (mode {mode:04o}); it holds secrets, so kst does not use it: run `chmod 600 {at}`"
                ));
            }
        }
        if meta.len() > MAX_BYTES {
            return Err(format!(
                "the credentials file {at} is larger than {MAX_BYTES} bytes; it is not read"
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the credentials file {at}: {}", e.kind()))?;
        if text.trim().is_empty() {
            return Ok(Some(CredFile { root: Yaml::Null }));
        }
        let root: Yaml = serde_yaml_ng::from_str(&text).map_err(|e| {
            // Only the position: the parser's message may quote a piece of the file.
            match e.location() {
                Some(l) => format!(
                    "the credentials file {at} is not valid YAML (line {}, column {}); fix it by hand",
                    l.line(),
                    l.column()
                ),
                None => format!("the credentials file {at} is not valid YAML; fix it by hand"),
            }
        })?;
        if !matches!(root, Yaml::Mapping(_) | Yaml::Null) {
            return Err(format!(
                "the credentials file {at} is not a mapping of keys to values; write `KEY: value` lines"
            ));
        }
        Ok(Some(CredFile { root }))
    }

    /// The value at `path` (each key matched in any case), when it is a string or a number.
    pub(super) fn get(&self, path: &[&str]) -> Option<Secret> {
        if path.is_empty() {
            return None;
        }
        let mut cur = &self.root;
        for seg in path {
            let Yaml::Mapping(m) = cur else { return None };
            cur = m
                .iter()
                .find(|(k, _)| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(seg)))
                .map(|(_, v)| v)?;
        }
        let v = match cur {
            Yaml::String(s) => s.clone(),
            Yaml::Number(n) => n.to_string(),
            _ => return None,
        };
        (!v.is_empty()).then_some(Secret(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_nested_keys_in_any_case() {
        let cf = CredFile {
            root: serde_yaml_ng::from_str(
                "KST_GH_PAT: a\nvercel:\n  Token: b\nn: 12345\nlist: [x]\n",
            )
            .unwrap(),
        };
        assert_eq!(cf.get(&["kst_gh_pat"]).unwrap().expose(), "a");
        assert_eq!(cf.get(&["VERCEL", "token"]).unwrap().expose(), "b");
        assert_eq!(cf.get(&["n"]).unwrap().expose(), "12345");
        assert!(cf.get(&["list"]).is_none());
        assert!(cf.get(&["vercel"]).is_none());
        assert!(cf.get(&["vercel", "token", "x"]).is_none());
    }
}
