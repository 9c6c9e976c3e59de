//! Content hashes of server definitions, and a small content-addressed store of the definitions
//! kst wrote, in placeholder form, under the cache (`<cache>/mcp/sha256-<hex>.json`).
//!
//! The lock records only a hash. To tell whether an entry in a settings file is still what kst
//! wrote after the pack changed upstream, kst needs the old definition back: the store keeps it,
//! keyed by that hash, and checks the hash again when reading (a tampered file is ignored).
//! Definitions are stored with their `${kst_NAME}` placeholders, never with secret values.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `v` with every object's keys sorted, so equal definitions hash equally.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn canonical_text(def: &Map<String, Value>) -> String {
    serde_json::to_string(&canonical(&Value::Object(def.clone()))).expect("JSON serialises")
}

/// `sha256:<hex>` of a definition's canonical JSON (sorted keys, no spaces).
pub fn hash(def: &Map<String, Value>) -> String {
    let digest = Sha256::digest(canonical_text(def).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn path_for(root: &Path, hash: &str) -> Option<PathBuf> {
    let hex = hash.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| root.join("mcp").join(format!("sha256-{hex}.json")))
}

/// Remember a definition (best effort: the store is an optimisation for later syncs).
pub fn put(cache_root: &Path, def: &Map<String, Value>) {
    let h = hash(def);
    let Some(p) = path_for(cache_root, &h) else {
        return;
    };
    if p.exists() {
        return;
    }
    if let Err(e) = crate::fsx::write_atomic(&p, canonical_text(def).as_bytes(), Some(0o600)) {
        tracing::debug!("cannot store MCP definition {h}: {e:#}");
    }
}

/// The definition with this hash, if this machine stored it and it is intact.
pub fn get(cache_root: &Path, hash_: &str) -> Option<Map<String, Value>> {
    let p = path_for(cache_root, hash_)?;
    // A cache may be restored from elsewhere (a CI cache): only a regular file, bounded.
    let text = crate::fsx::read_input(&p, crate::fsx::SETTINGS_CAP, None).ok()?;
    let def: Map<String, Value> = serde_json::from_str(&text).ok()?;
    (hash(&def) == hash_).then_some(def)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_ignores_key_order_and_store_round_trips() {
        let a = json!({"command": "x", "env": {"A": "1", "B": "2"}});
        let b = json!({"env": {"B": "2", "A": "1"}, "command": "x"});
        let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
        assert_eq!(hash(a), hash(b));
        assert!(hash(a).starts_with("sha256:") && hash(a).len() == 71);
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(get(tmp.path(), &hash(a)), None);
        put(tmp.path(), a);
        assert_eq!(get(tmp.path(), &hash(a)).as_ref(), Some(a));
        assert_eq!(get(tmp.path(), "sha256:../../etc"), None);
        // A tampered entry is ignored.
        let p = path_for(tmp.path(), &hash(a)).unwrap();
        std::fs::write(&p, r#"{"command":"evil"}"#).unwrap();
        assert_eq!(get(tmp.path(), &hash(a)), None);
    }

    /// A cache restored from elsewhere may hold a FIFO where a definition was: it is ignored,
    /// never waited on (the guard fails the test instead of hanging it).
    #[test]
    fn a_fifo_in_the_store_is_ignored_not_waited_on() {
        let def = json!({"command": "x"});
        let def = def.as_object().unwrap().clone();
        let tmp = tempfile::tempdir().unwrap();
        let p = path_for(tmp.path(), &hash(&def)).unwrap();
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let root = tmp.path().to_path_buf();
        let h = hash(&def);
        std::thread::spawn(move || tx.send(get(&root, &h)).unwrap());
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("reading a FIFO in the store hung");
        assert_eq!(got, None);
    }

    // Found by cargo-mutants (docs/testing.md): the store path is built from a lock's hash,
    // which a hostile lock controls; only exactly 64 hex digits make a path.
    #[test]
    fn only_a_real_hash_names_a_stored_file() {
        let root = Path::new("/cache");
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            path_for(root, &format!("sha256:{hex}")),
            Some(root.join(format!("mcp/sha256-{hex}.json")))
        );
        let escape = format!("{:/<64}", "/../../../../../etc/x");
        assert_eq!(escape.len(), 64);
        for bad in [
            format!("sha256:{escape}"),
            "sha256:abc".to_string(),
            format!("sha256:{hex}0"),
            hex.clone(),
            format!("sha1:{hex}"),
        ] {
            assert_eq!(path_for(root, &bad), None, "{bad:?}");
        }
    }
}
