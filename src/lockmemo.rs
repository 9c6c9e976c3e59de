//! A memo of the parsed lock: the lock's YAML parsed once, reused while the file is the same.
//!
//! Every command reads the lock, and a lock of a few thousand items is a few hundred KiB of
//! YAML: libyaml takes most of a warm no-op's time scanning it (docs/performance.md, the
//! commands and instructions no-op). The lock kst parsed last is kept in the cache as JSON,
//! which parses an order of magnitude faster, and is used again when
//!
//! - the lock's text is byte for byte the text it was parsed from (the memo keeps that text and
//!   compares it: the lock is read on every run anyway, so no racy-timestamp rule is needed;
//!   hashing it instead cost more than a fifth of a large no-op), and
//! - the lock file's stat data (size, mtime, ctime, inode, device, mode) are unchanged: a memo
//!   planted in a shared CI cache by someone who knows a public lock's text cannot match a
//!   fresh checkout, whose inode and ctime nobody can predict.
//!
//! The memo is then checked like a parsed lock ([`Lock::validated`]). A missing, unreadable,
//! foreign or damaged memo is a miss: the YAML is parsed and the memo written afresh (in the
//! cache, atomically; a failure to write only costs speed). It is never the lock: `kst verify`
//! and every write of the lock work from the YAML's content as before.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::lock::Lock;
use crate::statcache::StatData;

const MAGIC: &str = "KSTLOCKMEMO1";

/// The largest memo read (a lock is capped at [`crate::fsx::LOCK_CAP`]; the memo holds its
/// text and its JSON, about the same size again).
const MAX_MEMO: u64 = 4 * crate::fsx::LOCK_CAP;

/// What identifies one lock file in its present state, as written on the memo's first line,
/// followed by the text (`len` bytes) and the parsed lock as JSON.
fn header(path: &Path, text: &str) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let s = StatData::of(&meta);
    Some(format!(
        "{MAGIC} {} {} {} {}.{} {}.{} {} {} {}\n",
        env!("CARGO_PKG_VERSION"),
        text.len(),
        s.size,
        s.mtime.0,
        s.mtime.1,
        s.ctime.0,
        s.ctime.1,
        s.ino,
        s.dev,
        s.mode
    ))
}

/// Where the memo of the lock at `path` is kept: one per lock file.
fn memo_file(path: &Path) -> Option<PathBuf> {
    let root = crate::dirs::cache_root().ok()?;
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let key: String = Sha256::digest(real.as_os_str().as_encoded_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(root.join("stat").join(format!("lock-{key}")))
}

/// The lock parsed from `text` (the content of the lock at `path`, just read), if the memo
/// was made from exactly this text of this file. Not yet checked: see [`Lock::validated`].
pub fn load(path: &Path, text: &str) -> Option<Lock> {
    let file = memo_file(path)?;
    // A regular file under the cap, opened without blocking (as every input is, `fsx`).
    let bytes = crate::fsx::read_input_bytes(&file, MAX_MEMO, None).ok()?;
    let want = header(path, text)?;
    let json = bytes
        .strip_prefix(want.as_bytes())?
        .strip_prefix(text.as_bytes())?;
    serde_json::from_slice(json).ok()
}

/// Remember that `text` (the lock at `path`) parses to `lock`.
pub fn store(path: &Path, text: &str, lock: &Lock) {
    let (Some(file), Some(mut out)) = (memo_file(path), header(path, text)) else {
        return;
    };
    let Ok(json) = serde_json::to_string(lock) else {
        return;
    };
    out.push_str(text);
    out.push_str(&json);
    if let Err(e) = crate::fsx::write_atomic(&file, out.as_bytes(), Some(0o600)) {
        tracing::debug!("lock memo not written ({e:#})");
    }
}
