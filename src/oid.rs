//! Git object ids without libgit2: parsing a hex id and hashing an object, in pure Rust.
//!
//! Every git2 function that makes an id (`Oid::from_str`, `Oid::from_bytes`,
//! `Oid::hash_object`, `Oid::hash_file`) first initialises libgit2 — and with it OpenSSL, which
//! costs milliseconds — and git2's own start-up writes to the environment, which is only sound
//! while the process has a single thread. kst only initialises libgit2 when a run uses a
//! repository ([`crate::git::setup`]); ids are made here instead, so a sync of local folders
//! never touches libgit2. The results are libgit2's: the same parsing rules
//! (`git_oid_fromstrn`: 1 to 40 hex digits of either case, the rest zero) and the same
//! hashing — `<kind> <size>\0<bytes>` through SHA-1 *with collision detection* (sha1dc, as
//! libgit2 is built), so a file crafted to collide is refused here as libgit2 refuses it.

use std::io::Read;
use std::path::Path;

use git2::{ObjectType, Oid};

/// An id from its 20 raw bytes (`None` for any other length).
pub fn from_bytes(bytes: &[u8]) -> Option<Oid> {
    let id: [u8; 20] = bytes.try_into().ok()?;
    Some(from_array(id))
}

fn from_array(id: [u8; 20]) -> Oid {
    let raw = libgit2_sys::git_oid { id };
    // SAFETY: `from_raw` copies the struct the pointer points to, which lives until it returns;
    // no libgit2 function is called.
    unsafe { <Oid as git2::Binding>::from_raw(&raw) }
}

/// Parse a hex id as `git2::Oid::from_str` does: 1 to 40 hex digits (either case), the
/// missing digits taken as zeros; `None` for anything else.
pub fn parse(hex: &str) -> Option<Oid> {
    let digits = hex.as_bytes();
    if digits.is_empty() || digits.len() > 40 {
        return None;
    }
    let mut id = [0u8; 20];
    for (i, &c) in digits.iter().enumerate() {
        let v = (c as char).to_digit(16)? as u8;
        id[i / 2] |= if i % 2 == 0 { v << 4 } else { v };
    }
    Some(from_array(id))
}

/// A SHA-1 hasher that refuses a collision attack (libgit2's "SHA1 collision attack
/// detected").
struct Hasher(sha1_checked::Sha1);

impl Hasher {
    fn new(kind: ObjectType, len: u64) -> Hasher {
        use sha1_checked::Digest;
        let mut h = sha1_checked::Sha1::new();
        h.update(format!("{} {len}\0", kind_name(kind)).as_bytes());
        Hasher(h)
    }

    fn update(&mut self, bytes: &[u8]) {
        use sha1_checked::Digest;
        self.0.update(bytes);
    }

    fn finish(self) -> Result<Oid, CollisionDetected> {
        match self.0.try_finalize() {
            sha1_checked::CollisionResult::Ok(out) => Ok(from_array(
                out.as_slice().try_into().expect("SHA-1 is 20 bytes"),
            )),
            _ => Err(CollisionDetected),
        }
    }
}

/// The bytes hashed are one half of a SHA-1 collision attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SHA1 collision attack detected")]
pub struct CollisionDetected;

fn kind_name(kind: ObjectType) -> &'static str {
    match kind {
        ObjectType::Blob => "blob",
        ObjectType::Tree => "tree",
        ObjectType::Commit => "commit",
        ObjectType::Tag => "tag",
        // Not object kinds: nothing in kst hashes them (libgit2 refuses them too).
        ObjectType::Any => unreachable!("hashing an object of no kind"),
    }
}

/// The id of the object of `kind` with content `bytes` (`git hash-object -t kind`).
pub fn hash(kind: ObjectType, bytes: &[u8]) -> Result<Oid, CollisionDetected> {
    let mut h = Hasher::new(kind, bytes.len() as u64);
    h.update(bytes);
    h.finish()
}

/// The blob id of the file at `path` (`git hash-object path`, without filters), read in
/// pieces. The file is opened as libgit2 opens it; one that changes size while it is read is
/// an error, not an id of bytes it never held.
pub fn hash_file(path: &Path) -> std::io::Result<Oid> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut h = Hasher::new(ObjectType::Blob, len);
    let mut buf = vec![0u8; 64 << 10];
    let mut left = len;
    let changed = || std::io::Error::other("the file changed while it was hashed");
    while left > 0 {
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => return Err(changed()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        left -= n as u64;
    }
    if file.read(&mut buf[..1])? != 0 {
        return Err(changed());
    }
    h.finish().map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use git2::{ObjectType, Oid};

    /// The same ids as libgit2's, for every kind, for the empty object and for one longer
    /// than a hashing block.
    #[test]
    fn ids_are_libgit2s() {
        let long: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        for kind in [
            ObjectType::Blob,
            ObjectType::Tree,
            ObjectType::Commit,
            ObjectType::Tag,
        ] {
            for bytes in [&b""[..], b"x", b"hello\n", &long] {
                assert_eq!(
                    super::hash(kind, bytes).unwrap(),
                    Oid::hash_object(kind, bytes).unwrap(),
                    "{kind:?} of {} bytes",
                    bytes.len()
                );
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        for len in [0usize, 1, 65_536, 200_001] {
            std::fs::write(&file, &long.repeat(21)[..len]).unwrap();
            assert_eq!(
                super::hash_file(&file).unwrap(),
                Oid::hash_file(ObjectType::Blob, &file).unwrap(),
                "a file of {len} bytes"
            );
        }
        assert!(super::hash_file(&dir.path().join("missing")).is_err());
    }

    /// Parsing is `Oid::from_str`'s, short and upper-case ids included; `from_bytes` takes
    /// exactly 20 bytes.
    #[test]
    fn parsing_is_libgit2s() {
        for s in [
            "3fb3c16bdb86cf899165d2c66063bbe3d795fd8a",
            "3FB3C16BDB86CF899165D2C66063BBE3D795FD8A",
            "abc",
            "a",
            "0",
            "",
            "3fb3c16bdb86cf899165d2c66063bbe3d795fd8a0",
            "3fb3c16bdb86cf899165d2c66063bbe3d795fd8g",
            "xyz",
            " abc",
            "é",
        ] {
            assert_eq!(super::parse(s), Oid::from_str(s).ok(), "{s:?}");
        }
        let id = Oid::from_str("3fb3c16bdb86cf899165d2c66063bbe3d795fd8a").unwrap();
        assert_eq!(super::from_bytes(id.as_bytes()), Some(id));
        assert_eq!(super::from_bytes(&[0; 19]), None);
        assert_eq!(super::from_bytes(&[0; 21]), None);
    }
}
