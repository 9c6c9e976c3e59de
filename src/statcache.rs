//! The stat cache: a machine-local memory of installed files' stat data and blob ids, so that
//! a sync that changes nothing reads no file contents (SPEC 14), the way git's index makes
//! `git status` cheap.
//!
//! To decide whether an installed skill is intact, `plan` recomputes its tree id from disk.
//! With this cache a file whose `lstat` data (size, mtime, ctime, inode, device, mode) is exactly
//! what was recorded when its contents were last hashed is not read again: its recorded blob id
//! is used.
//!
//! **Folder listings** (git's "untracked cache" idea, issue 15): each walked folder's own stat
//! data are recorded with its entries (name, mode, id) and the tree id they hash to, in a file
//! of their own beside the records (`<file>.dirs`). A folder whose `lstat` data (taken on the
//! open folder) equal the recorded ones is not listed again: its names come from the record,
//! and every entry is still `lstat`ed (a file by its stat data as above, a sub-folder walked
//! the same way). Adding, removing or renaming an entry moves its folder's mtime and ctime, so
//! an added, removed or renamed file is always seen. The recorded tree id is reused only when
//! every entry's mode and id are again the recorded ones (exactly the id hashing would give:
//! it is a function of those alone); otherwise the tree is hashed. Folders obey the racy rule
//! below: a listing is recorded only when the folder's mtime and ctime are older than the
//! stamp taken before its names were read, so a folder changed again within the tick of its
//! last change is listed from disk on every run until it settles. Walks open each sub-folder
//! relative to its parent and never through a symlink (`tree::disk_tree_id`), so a recorded
//! listing cannot lead outside the folder walked.
//!
//! **Racy files** (git's "racy git" problem, Documentation/technical/racy-git.txt): a file
//! changed twice within one timestamp tick, the second time after we hashed it, keeps its stat
//! data. So an entry is only recorded when the file's mtime *and* ctime are strictly older than
//! a stamp taken from the file system's clock before any content was read in this run (on a
//! file system with whole-second timestamps, at least two seconds older). A file touched in the
//! same tick as the stamp, or with a timestamp in the future, is not recorded and is re-hashed on
//! every sync until it settles.
//!
//! Layout: one file per skills folder, `<cache root>/stat/<hash16 of the folder's path>`, and
//! beside it `<hash16>.dirs` for the folder listings (both are written the same way),
//! written atomically (temp file + rename) only when it changed. It is a cache: never part of the
//! lock, never needed for correctness of anything but speed. A missing, unreadable or malformed
//! file is an empty cache, and an old version of it is still right (an entry only ever says
//! "these stat data had these contents"). `kst verify` does not use it: verify proves bytes.
//!
//! Known limit, shared with git: on a network file system whose server clock runs behind this
//! machine's, the racy rule is only as good as the clocks' agreement; and the folder listings
//! assume, as git's untracked cache does, a file system that moves a folder's mtime when an
//! entry is added, removed or renamed (every POSIX file system does).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result};
use git2::Oid;

use crate::tree::{BlobIds, FileAt, Listing};

/// Largest stat cache file read; a bigger one is ignored (the cache is an optimisation).
const MAX_FILE: u64 = 256 << 20;

const MAGIC: &[u8; 8] = b"KSTSTAT1";
const DIRS_MAGIC: &[u8; 8] = b"KSTDIRS1";

/// What `lstat` says about a file, as far as telling a change goes (git's `stat_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatData {
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub ino: u64,
    pub dev: u64,
    pub mode: u32,
}

impl StatData {
    pub fn of(meta: &fs::Metadata) -> StatData {
        StatData {
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
            mode: meta.mode(),
        }
    }

    /// The same from a `stat` buffer filled in by the C library (`fsat.rs`), field for field
    /// as [`StatData::of`] reads them from a `Metadata`.
    #[allow(clippy::unnecessary_cast)] // the field types differ between systems
    pub fn of_stat(st: &libc::stat) -> StatData {
        StatData {
            size: st.st_size as u64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
            ino: st.st_ino as u64,
            dev: st.st_dev as u64,
            mode: st.st_mode as u32,
        }
    }

    /// Whether these are a regular file's.
    #[allow(clippy::unnecessary_cast)] // `mode_t` is narrower than u32 on some systems
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT as u32 == libc::S_IFREG as u32
    }

    /// May a blob id hashed from this file after `stamp` (the file system's clock) be trusted
    /// later on the strength of these stat data alone? Only if the file's last change is
    /// strictly older than the stamp: any later write then moves mtime or ctime. Whole-second
    /// timestamps (both nanosecond parts zero) suggest a coarse file system (ext3, HFS+, FAT
    /// with two-second steps), where "older" has to mean by two seconds.
    pub fn settled(&self, stamp: (i64, i64)) -> bool {
        let coarse = self.mtime.1 == 0 && self.ctime.1 == 0;
        if coarse {
            self.mtime.0 + 2 <= stamp.0 && self.ctime.0 + 2 <= stamp.0
        } else {
            self.mtime < stamp && self.ctime < stamp
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    stat: StatData,
    id: Oid,
}

/// The maps of a loaded cache are looked up once per file of a no-op: a fast hasher, seeded
/// per process.
type Hasher = foldhash::fast::RandomState;

/// A skill's files: path inside the skill → record.
type Section = HashMap<Box<str>, Record, Hasher>;

/// A skill's folders: path inside the skill (`""`: the skill's own) → its listing.
type Dirs = HashMap<Box<str>, Listing, Hasher>;

/// The stat cache of one skills folder, for one run.
pub struct StatCache {
    file: PathBuf,
    /// The probe whose mtime is "now" on the file system's clock.
    clock: PathBuf,
    /// As loaded: skill name → its files.
    old: OnceLock<HashMap<String, Section>>,
    /// Sections checked in this run (the next version of the file); None: as loaded.
    fresh: Mutex<HashMap<String, Option<Section>>>,
    /// The folders' listings, kept in a file of their own beside `file` (`<file>.dirs`).
    dirs_file: PathBuf,
    /// As loaded: skill name → its folders' listings.
    old_dirs: OnceLock<HashMap<String, Dirs>>,
    /// Skills whose folders were walked in this run; None: as loaded.
    fresh_dirs: Mutex<HashMap<String, Option<Dirs>>>,
    /// Set before the first file's contents are read in this run.
    stamp: OnceLock<Option<(i64, i64)>>,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

impl StatCache {
    /// The stat cache of the skills folder `folder`, kept under `cache_root`. Nothing is read
    /// until the first lookup.
    pub fn for_folder(cache_root: &Path, folder: &Path) -> StatCache {
        Self::keyed(cache_root, folder.as_os_str().as_encoded_bytes())
    }

    /// The stat cache of the local source folder `folder` (sections keyed by each skill's path
    /// inside it), kept under `cache_root`, apart from any skills folder's even when the source
    /// is one: the two never share a file.
    pub fn for_source(cache_root: &Path, folder: &Path) -> StatCache {
        let mut key = b"local source\0".to_vec();
        key.extend_from_slice(folder.as_os_str().as_encoded_bytes());
        Self::keyed(cache_root, &key)
    }

    /// A stat cache of its own for `what` at `path` (the commands of a local source folder, the
    /// rendered files and blocks of one scope: `files.rs`), apart from every other: two kinds
    /// or two scopes never share a file, so neither drops the other's sections.
    pub fn for_items(cache_root: &Path, what: &str, path: &Path) -> StatCache {
        let mut key = what.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(path.as_os_str().as_encoded_bytes());
        Self::keyed(cache_root, &key)
    }

    fn keyed(cache_root: &Path, key: &[u8]) -> StatCache {
        let key = crate::oid::hash(git2::ObjectType::Blob, key)
            .expect("hashing an in-memory buffer cannot fail")
            .to_string();
        let dir = cache_root.join("stat");
        StatCache {
            dirs_file: dir.join(format!("{}.dirs", &key[..16])),
            old_dirs: OnceLock::new(),
            fresh_dirs: Mutex::new(HashMap::new()),
            file: dir.join(&key[..16]),
            clock: dir.join("clock"),
            old: OnceLock::new(),
            fresh: Mutex::new(HashMap::new()),
            stamp: OnceLock::new(),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        }
    }

    fn old(&self) -> &HashMap<String, Section> {
        // A cache may be restored from elsewhere (a CI cache): only a regular file, bounded.
        self.old.get_or_init(
            || match crate::fsx::read_input_bytes(&self.file, MAX_FILE, None) {
                Ok(bytes) => decode(&bytes).unwrap_or_else(|| {
                    tracing::debug!("ignoring malformed stat cache {}", self.file.display());
                    HashMap::new()
                }),
                Err(_) => HashMap::new(),
            },
        )
    }

    fn old_dirs(&self) -> &HashMap<String, Dirs> {
        self.old_dirs.get_or_init(|| {
            match crate::fsx::read_input_bytes(&self.dirs_file, MAX_FILE, None) {
                Ok(bytes) => decode_dirs(&bytes).unwrap_or_else(|| {
                    tracing::debug!("ignoring malformed stat cache {}", self.dirs_file.display());
                    HashMap::new()
                }),
                Err(_) => HashMap::new(),
            }
        })
    }

    /// Blob ids for the files of the installed skill `name`, and its folders' listings. Call
    /// [`SkillIds::keep`] once the whole skill was listed, so its records go into the next
    /// version of the cache.
    pub fn skill(&self, name: &str) -> SkillIds<'_> {
        SkillIds {
            cache: self,
            name: name.to_string(),
            old: self.old().get(name),
            old_dirs: self.old_dirs().get(name),
            run: Mutex::new(SkillRun::default()),
        }
    }

    /// The file system's "now", from the mtime of a probe file touched in the stat folder;
    /// taken once, before the first content read of the run. None if it cannot be had (then
    /// nothing new is recorded).
    fn stamp(&self) -> Option<(i64, i64)> {
        *self.stamp.get_or_init(|| match probe_clock(&self.clock) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::debug!("stat cache clock unavailable ({e:#}); not recording");
                None
            }
        })
    }

    /// Take the stamp now: call before reading any content whose stat data may be recorded
    /// with [`StatCache::put`] in this run.
    pub fn begin_reading(&self) {
        self.stamp();
    }

    /// The section `name` as loaded (None: not in the cache).
    pub fn recorded(&self, name: &str) -> Option<Records<'_>> {
        self.old().get(name).map(Records)
    }

    /// Keep the section `name` as loaded in the next version of the cache (it was found true
    /// in this run).
    pub fn keep_as_loaded(&self, name: &str) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        self.fresh
            .lock()
            .expect("stat cache lock")
            .insert(name.to_string(), None);
    }

    /// Record the section `name`: each file's stat data, taken before its contents were read
    /// after [`StatCache::begin_reading`], and an id standing for what those contents were
    /// found to be. All or nothing: if any file is racy by the stamp (or there is no stamp),
    /// nothing is recorded and false is returned.
    pub fn put(&self, name: &str, records: Vec<(String, StatData, Oid)>) -> bool {
        self.misses.fetch_add(1, Ordering::Relaxed);
        let Some(stamp) = *self.stamp.get().unwrap_or(&None) else {
            return false;
        };
        if !records.iter().all(|(_, stat, _)| stat.settled(stamp)) {
            return false;
        }
        let section: Section = records
            .into_iter()
            .map(|(rel, stat, id)| (rel.into_boxed_str(), Record { stat, id }))
            .collect();
        self.fresh
            .lock()
            .expect("stat cache lock")
            .insert(name.to_string(), Some(section));
        true
    }

    /// (hits, misses) so far: files whose id came from the cache, and files that were read.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Write the next version (the skills checked in this run) if it differs from the loaded
    /// one. Best effort: a cache that cannot be written only costs speed.
    pub fn save(&self) {
        let (hits, misses) = self.counts();
        if hits + misses > 0 {
            tracing::debug!(
                "stat cache {}: {hits} files unchanged, {misses} read",
                self.file.display()
            );
        }
        self.save_dirs();
        let fresh = std::mem::take(&mut *self.fresh.lock().expect("stat cache lock"));
        let Some(next) = next_version(fresh, self.old()) else {
            return;
        };
        if let Err(e) = write_file(&self.file, &encode(&next)) {
            tracing::debug!("cannot write stat cache {}: {e:#}", self.file.display());
        }
    }
}

/// The next version of a cache file from what this run kept of it (`fresh`: a new value, or
/// None for "as loaded") and what was loaded (`old`); None when they are the same, so that an
/// unchanged file is not written again.
fn next_version<T: Clone>(
    fresh: HashMap<String, Option<T>>,
    old: &HashMap<String, T>,
) -> Option<HashMap<String, T>> {
    let unchanged = fresh.len() == old.len()
        && fresh
            .iter()
            .all(|(k, v)| v.is_none() && old.contains_key(k));
    if unchanged {
        return None;
    }
    Some(
        fresh
            .into_iter()
            .filter_map(|(name, value)| match value {
                Some(v) => Some((name, v)),
                None => old.get(&name).map(|v| (name, v.clone())),
            })
            .collect(),
    )
}

impl StatCache {
    /// [`StatCache::save`] for the folders' listings: the skills walked in this run, written
    /// if they differ from the loaded ones.
    fn save_dirs(&self) {
        let fresh = std::mem::take(&mut *self.fresh_dirs.lock().expect("stat cache lock"));
        if fresh.is_empty() && self.old_dirs.get().is_none_or(HashMap::is_empty) {
            return;
        }
        let Some(next) = next_version(fresh, self.old_dirs()) else {
            return;
        };
        if let Err(e) = write_file(&self.dirs_file, &encode_dirs(&next)) {
            tracing::debug!(
                "cannot write stat cache {}: {e:#}",
                self.dirs_file.display()
            );
        }
    }
}

/// A section of the cache as loaded: file → (stat data, id).
pub struct Records<'a>(&'a Section);

impl Records<'_> {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, rel: &str) -> Option<(StatData, Oid)> {
        self.0.get(rel).map(|r| (r.stat, r.id))
    }
}

/// A [`BlobIds`] for one skill folder, backed by the stat cache.
pub struct SkillIds<'a> {
    cache: &'a StatCache,
    name: String,
    old: Option<&'a Section>,
    old_dirs: Option<&'a Dirs>,
    run: Mutex<SkillRun<'a>>,
}

/// What one listing of a skill saw: the recorded files it found unchanged (borrowed, so the
/// no-op path allocates nothing) and the files it hashed.
#[derive(Default)]
struct SkillRun<'a> {
    hits: Vec<(&'a str, &'a Record)>,
    hashed: Vec<(Box<str>, Record)>,
    /// Folders whose recorded listing was confirmed, and folders listed anew (settled by the
    /// racy rule; a folder listed again in the same walk keeps its last listing).
    dir_hits: Vec<(&'a str, &'a Listing)>,
    dirs: HashMap<Box<str>, Listing>,
    /// A folder was listed that could not be recorded (racy): the section is not as loaded.
    dirs_dropped: bool,
}

impl SkillIds<'_> {
    /// The skill was listed completely: what it saw makes the next version of its section.
    pub fn keep(self) {
        let run = self.run.into_inner().expect("stat cache lock");
        let same = run.hashed.is_empty() && self.old.is_some_and(|s| s.len() == run.hits.len());
        let section = (!same).then(|| {
            run.hits
                .into_iter()
                .map(|(k, r)| (Box::from(k), *r))
                .chain(run.hashed)
                .collect()
        });
        // A walk that saw no folder (a listing through `read_disk`, single files) says nothing
        // about the skill's folders: what another walk of this run found stays.
        let saw_folders = !run.dirs.is_empty() || !run.dir_hits.is_empty() || run.dirs_dropped;
        if saw_folders {
            let same_dirs = run.dirs.is_empty()
                && !run.dirs_dropped
                && self.old_dirs.is_some_and(|d| d.len() == run.dir_hits.len());
            let dirs = (!same_dirs).then(|| {
                let mut dirs: Dirs = run
                    .dir_hits
                    .into_iter()
                    .map(|(k, l)| (Box::from(k), l.clone()))
                    .collect();
                dirs.extend(run.dirs);
                dirs
            });
            self.cache
                .fresh_dirs
                .lock()
                .expect("stat cache lock")
                .insert(self.name.clone(), dirs);
        }
        self.cache
            .fresh
            .lock()
            .expect("stat cache lock")
            .insert(self.name, section);
    }
}

impl BlobIds for SkillIds<'_> {
    fn listing(&self, rel: &str) -> Option<&Listing> {
        self.old_dirs.and_then(|d| d.get(rel))
    }

    fn before_listing(&self) {
        // The stamp must be taken before the names are read (the racy rule, for folders).
        self.cache.stamp();
    }

    fn listed(&self, rel: &str, now: Option<Listing>) {
        let mut run = self.run.lock().expect("stat cache lock");
        match now {
            None => {
                if let Some((k, l)) = self.old_dirs.and_then(|d| d.get_key_value(rel)) {
                    run.dir_hits.push((k, l));
                }
            }
            // Only a folder whose last change is older than the stamp (taken before its names
            // were read) may be trusted later on its stat data alone.
            Some(l) if self.cache.stamp().is_some_and(|s| l.stat.settled(s)) => {
                run.dirs.insert(rel.into(), l);
            }
            Some(_) => {
                run.dirs.remove(rel);
                run.dirs_dropped = true;
            }
        }
    }

    fn blob_id_at(&self, file: &FileAt, rel: &str, stat: &StatData) -> Result<Oid> {
        self.blob_id_of(rel, *stat, || file.path().into_owned())
    }
}

impl SkillIds<'_> {
    /// [`BlobIds::blob_id`] from stat data had without a `Metadata` (`fsat.rs`); `path` gives
    /// the file's path, only needed to hash it when the cache does not know it.
    pub fn blob_id_of(
        &self,
        rel: &str,
        stat: StatData,
        path: impl FnOnce() -> PathBuf,
    ) -> Result<Oid> {
        if let Some((k, r)) = self.old.and_then(|s| s.get_key_value(rel))
            && r.stat == stat
        {
            self.cache.hits.fetch_add(1, Ordering::Relaxed);
            self.run.lock().expect("stat cache lock").hits.push((k, r));
            return Ok(r.id);
        }
        // The stamp must be taken before the contents are read (see the module doc).
        let stamp = self.cache.stamp();
        self.cache.misses.fetch_add(1, Ordering::Relaxed);
        let path = path();
        tracing::trace!("hashing {}", path.display());
        let id = crate::tree::hash_file(&path)?;
        if stamp.is_some_and(|s| stat.settled(s)) {
            self.run
                .lock()
                .expect("stat cache lock")
                .hashed
                .push((rel.into(), Record { stat, id }));
        }
        Ok(id)
    }
}

/// Touch the probe and read back its mtime: the file system's clock, in its own granularity.
/// The file system's "now" (see [`StatCache`]'s stamp), from the probe file in the cache at
/// `cache_root`: for another user of the racy rule (the whole-run memo, `runmemo.rs`).
pub fn fs_clock(cache_root: &Path) -> Option<(i64, i64)> {
    probe_clock(&cache_root.join("stat").join("clock"))
        .map_err(|e| tracing::debug!("file system clock unavailable ({e:#})"))
        .ok()
}

fn probe_clock(path: &Path) -> Result<(i64, i64)> {
    fs::create_dir_all(path.parent().expect("probe has a parent"))?;
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; a null `times` sets both timestamps to the current time.
    let rc = unsafe { libc::futimens(f.as_raw_fd(), std::ptr::null()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("futimens");
    }
    let m = f.metadata()?;
    Ok((m.mtime(), m.mtime_nsec()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("stat file has a parent");
    fs::create_dir_all(dir)?;
    let tmp = crate::fsx::temp_sibling(path, "tmp");
    let result = (|| -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        // No fsync: after a crash an old or missing version is still a correct cache.
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

// Format (little-endian): magic, section count, then per section: name length (u32), name,
// record count (u32), then per record: path length (u32), path, size (u64), mtime s (i64),
// ns (i64), ctime s (i64), ns (i64), ino (u64), dev (u64), mode (u32), blob id (20 bytes).

fn encode(sections: &HashMap<String, Section>) -> Vec<u8> {
    let records: usize = sections.values().map(HashMap::len).sum();
    let mut out = Vec::with_capacity(16 + records * 110);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for (name, files) in sections {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(files.len() as u32).to_le_bytes());
        for (rel, r) in files {
            let s = &r.stat;
            out.extend_from_slice(&(rel.len() as u32).to_le_bytes());
            out.extend_from_slice(rel.as_bytes());
            for v in [s.size, s.mtime.0 as u64, s.mtime.1 as u64] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [s.ctime.0 as u64, s.ctime.1 as u64, s.ino, s.dev] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&s.mode.to_le_bytes());
            out.extend_from_slice(r.id.as_bytes());
        }
    }
    out
}

// The folders' file (little-endian): magic, section count, then per section: name length (u32),
// name, folder count (u32), then per folder: path length (u32), path, its stat data as a
// record's, tree id (20 bytes, zeros: none), entry count (u32), then per entry: name length
// (u32), name, mode (u32), id (20 bytes, zeros: an empty folder).

fn put_stat(out: &mut Vec<u8>, s: &StatData) {
    for v in [s.size, s.mtime.0 as u64, s.mtime.1 as u64] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [s.ctime.0 as u64, s.ctime.1 as u64, s.ino, s.dev] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&s.mode.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_id(out: &mut Vec<u8>, id: Option<Oid>) {
    out.extend_from_slice(id.unwrap_or(Oid::ZERO_SHA1).as_bytes());
}

fn encode_dirs(sections: &HashMap<String, Dirs>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(DIRS_MAGIC);
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for (name, dirs) in sections {
        put_str(&mut out, name);
        out.extend_from_slice(&(dirs.len() as u32).to_le_bytes());
        for (rel, l) in dirs {
            put_str(&mut out, rel);
            put_stat(&mut out, &l.stat);
            put_id(&mut out, l.tree);
            out.extend_from_slice(&(l.len() as u32).to_le_bytes());
            for (name, mode, id) in l.iter() {
                put_str(&mut out, name);
                out.extend_from_slice(&mode.to_le_bytes());
                put_id(&mut out, id);
            }
        }
    }
    out
}

fn decode_dirs(bytes: &[u8]) -> Option<HashMap<String, Dirs>> {
    let mut r = Reader(bytes);
    if r.take(DIRS_MAGIC.len())? != DIRS_MAGIC {
        return None;
    }
    let id = |r: &mut Reader| -> Option<Option<Oid>> {
        let bytes = r.take(20)?;
        if bytes.iter().all(|&b| b == 0) {
            return Some(None);
        }
        Some(Some(crate::oid::from_bytes(bytes)?))
    };
    let n = r.u32()? as usize;
    let mut sections = HashMap::with_capacity(n.min(1 << 16));
    let mut scratch: Vec<(&str, u32, Option<Oid>)> = Vec::new();
    for _ in 0..n {
        let name = r.str()?.to_string();
        let count = r.u32()? as usize;
        let mut dirs = Dirs::with_capacity_and_hasher(count.min(1 << 16), Hasher::default());
        for _ in 0..count {
            let rel: Box<str> = r.str()?.into();
            let stat = r.stat()?;
            let tree = id(&mut r)?;
            let k = r.u32()? as usize;
            scratch.clear();
            for _ in 0..k {
                let name = r.str()?;
                // A name is opened relative to its folder: one plain component, or the whole
                // file is malformed (a cache restored from elsewhere is not trusted with paths).
                if matches!(name, "" | "." | "..") || name.contains(['/', '\0']) {
                    return None;
                }
                let mode = r.u32()?;
                let id = id(&mut r)?;
                scratch.push((name, mode, id));
            }
            dirs.insert(rel, Listing::new(stat, scratch.iter().copied(), tree));
        }
        sections.insert(name, dirs);
    }
    r.0.is_empty().then_some(sections)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
    fn stat(&mut self) -> Option<StatData> {
        let size = self.u64()?;
        let mtime = (self.u64()? as i64, self.u64()? as i64);
        let ctime = (self.u64()? as i64, self.u64()? as i64);
        let (ino, dev, mode) = (self.u64()?, self.u64()?, self.u32()?);
        Some(StatData {
            size,
            mtime,
            ctime,
            ino,
            dev,
            mode,
        })
    }
}

fn decode(bytes: &[u8]) -> Option<HashMap<String, Section>> {
    let mut r = Reader(bytes);
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let n = r.u32()? as usize;
    let mut sections = HashMap::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let name = r.str()?.to_string();
        let count = r.u32()? as usize;
        let mut files = Section::with_capacity_and_hasher(count.min(1 << 16), Hasher::default());
        for _ in 0..count {
            let rel: Box<str> = r.str()?.into();
            let size = r.u64()?;
            let mtime = (r.u64()? as i64, r.u64()? as i64);
            let ctime = (r.u64()? as i64, r.u64()? as i64);
            let (ino, dev, mode) = (r.u64()?, r.u64()?, r.u32()?);
            let id = crate::oid::from_bytes(r.take(20)?)?;
            let stat = StatData {
                size,
                mtime,
                ctime,
                ino,
                dev,
                mode,
            };
            files.insert(rel, Record { stat, id });
        }
        sections.insert(name, files);
    }
    r.0.is_empty().then_some(sections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{self, Budget, Caps};
    use std::time::{Duration, SystemTime};

    struct Setup {
        _tmp: tempfile::TempDir,
        cache: PathBuf,
        folder: PathBuf,
    }

    /// A skills folder with one skill `demo` of three files, and an empty cache root.
    fn setup() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let folder = tmp.path().join("skills");
        let skill = folder.join("demo");
        fs::create_dir_all(skill.join("ref")).unwrap();
        fs::write(skill.join("SKILL.md"), "---\nname: demo\n---\n").unwrap();
        fs::write(skill.join("ref/a.md"), "alpha\n").unwrap();
        fs::write(skill.join("ref/b.md"), "bravo\n").unwrap();
        settle(&folder);
        Setup {
            cache: tmp.path().join("cache"),
            folder,
            _tmp: tmp,
        }
    }

    /// Wait until the file system's clock (read as kst reads it, from a probe) has moved past
    /// the last change (ctime) of every file under `root`, by the racy rule itself, so that
    /// what was written is no longer racy. A checked condition, not a guess at the tick; a
    /// file whose mtime was put in the future stays racy.
    fn settle(root: &Path) {
        fn newest_ctime(dir: &Path, newest: &mut (i64, i64)) {
            for e in fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let m = fs::symlink_metadata(e.path()).unwrap();
                *newest = (*newest).max((m.ctime(), m.ctime_nsec()));
                if m.is_dir() {
                    newest_ctime(&e.path(), newest);
                }
            }
        }
        let mut newest = (0, 0);
        newest_ctime(root, &mut newest);
        let last = StatData {
            size: 0,
            mtime: newest,
            ctime: newest,
            ino: 0,
            dev: 0,
            mode: 0,
        };
        let probe = root.with_file_name("settle-probe");
        while !last.settled(probe_clock(&probe).unwrap()) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Set a file's mtime to `secs` seconds from now (negative: in the past).
    fn age(path: &Path, secs: i64) {
        let t = if secs >= 0 {
            SystemTime::now() + Duration::from_secs(secs as u64)
        } else {
            SystemTime::now() - Duration::from_secs((-secs) as u64)
        };
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    /// One run: list the skill through a fresh cache, save it, and return (tree id, hits,
    /// misses).
    fn run(s: &Setup) -> (Oid, usize, usize) {
        let cache = StatCache::for_folder(&s.cache, &s.folder);
        let ids = cache.skill("demo");
        let id = tree::disk_tree_id(
            &s.folder.join("demo"),
            &mut Budget::new(Caps::from_env()),
            &ids,
        )
        .unwrap();
        ids.keep();
        cache.save();
        let (h, m) = cache.counts();
        (id, h, m)
    }

    fn plain_id(s: &Setup) -> Oid {
        tree::read_disk(&s.folder.join("demo"), &mut Budget::new(Caps::from_env()))
            .unwrap()
            .id
    }

    #[test]
    fn unchanged_files_are_not_read_again() {
        let s = setup();
        let (id1, h1, m1) = run(&s);
        assert_eq!((h1, m1), (0, 3));
        assert_eq!(id1, plain_id(&s));
        let (id2, h2, m2) = run(&s);
        assert_eq!((h2, m2), (3, 0), "the second run reads nothing");
        assert_eq!(id2, id1);
    }

    #[test]
    fn a_same_size_edit_with_the_mtime_put_back_is_seen() {
        let s = setup();
        let f = s.folder.join("demo/ref/a.md");
        run(&s);
        let before = fs::metadata(&f).unwrap().modified().unwrap();
        fs::write(&f, "ALPHA\n").unwrap();
        fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(before)
            .unwrap();
        let (id, _, misses) = run(&s);
        assert_eq!(misses, 1, "ctime moved: the file is read again");
        assert_eq!(id, plain_id(&s));
    }

    #[test]
    fn added_and_removed_files_change_the_tree() {
        let s = setup();
        let (id1, ..) = run(&s);
        fs::write(s.folder.join("demo/new.md"), "new\n").unwrap();
        let (id2, ..) = run(&s);
        assert_ne!(id2, id1);
        assert_eq!(id2, plain_id(&s));
        fs::remove_file(s.folder.join("demo/new.md")).unwrap();
        fs::remove_file(s.folder.join("demo/ref/b.md")).unwrap();
        let (id3, ..) = run(&s);
        assert_eq!(id3, plain_id(&s));
    }

    #[test]
    fn racy_files_are_not_recorded() {
        // A file whose mtime is not older than the stamp (here: in the future) is hashed on
        // every run, and its neighbours are still cached.
        let s = setup();
        let f = s.folder.join("demo/ref/a.md");
        age(&f, 3600);
        assert_eq!(run(&s).2, 3);
        assert_eq!(run(&s).2, 1);
        assert_eq!(run(&s).2, 1);
        // Once it is in the past, it settles.
        age(&f, -10);
        settle(&s.folder);
        assert_eq!(run(&s).2, 1);
        assert_eq!(run(&s).2, 0);
    }

    #[test]
    fn the_racy_rule() {
        let stat = |m: (i64, i64), c: (i64, i64)| StatData {
            size: 1,
            mtime: m,
            ctime: c,
            ino: 1,
            dev: 1,
            mode: 0o100644,
        };
        let stamp = (100, 500);
        // Strictly older (mtime and ctime): trusted.
        assert!(stat((100, 499), (100, 499)).settled(stamp));
        assert!(stat((99, 900), (100, 1)).settled(stamp));
        // Same tick as the stamp, or later: racy.
        assert!(!stat((100, 500), (100, 400)).settled(stamp));
        assert!(!stat((100, 400), (100, 500)).settled(stamp));
        assert!(!stat((101, 0), (101, 1)).settled(stamp));
        // Whole-second timestamps: a coarse file system, two seconds of margin.
        assert!(!stat((99, 0), (99, 0)).settled(stamp));
        assert!(stat((98, 0), (98, 0)).settled(stamp));
    }

    /// Set a file's mtime to exactly `t` (seconds, nanoseconds), as `touch -d` would; its
    /// ctime becomes the kernel's now, which no call can set.
    fn set_mtime_exactly(path: &Path, t: (i64, i64)) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        let times = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: t.0 as libc::time_t,
                tv_nsec: t.1 as libc::c_long,
            },
        ];
        // SAFETY: a valid NUL-terminated path and two timespecs, as utimensat(2) requires.
        let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
        assert_eq!(rc, 0, "utimensat: {}", std::io::Error::last_os_error());
    }

    /// A cache restored from elsewhere may hold a FIFO where the stat cache was: it is
    /// ignored (everything is hashed again), never waited on (the guard fails the test
    /// instead of hanging it).
    #[test]
    fn a_fifo_stat_cache_is_ignored_not_waited_on() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = StatCache::for_folder(tmp.path(), &tmp.path().join("skills"));
        fs::create_dir_all(cache.file.parent().unwrap()).unwrap();
        let c = std::ffi::CString::new(cache.file.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(cache.old().len()).unwrap());
        let entries = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("reading a FIFO stat cache hung");
        assert_eq!(entries, 0);
    }

    /// List the skill once with the file system's "now" pinned to `stamp`, starting from an
    /// empty cache, and return the files the cache recorded.
    fn recorded_at(s: &Setup, stamp: (i64, i64)) -> Vec<String> {
        let cache = StatCache::for_folder(&s.cache, &s.folder);
        let _ = fs::remove_file(&cache.file);
        cache.stamp.set(Some(stamp)).unwrap();
        let ids = cache.skill("demo");
        tree::disk_tree_id(
            &s.folder.join("demo"),
            &mut Budget::new(Caps::from_env()),
            &ids,
        )
        .unwrap();
        ids.keep();
        cache.save();
        let sections = decode(&fs::read(&cache.file).unwrap()).unwrap();
        let mut names: Vec<String> = sections["demo"].keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    }

    /// The racy rule on its own, at its exact boundary: stat data stay the same throughout, so
    /// only the rule decides whether a file is recorded (and later trusted without reading).
    /// A file whose mtime or ctime is in the stamp's tick is not recorded; one a nanosecond
    /// older is.
    #[test]
    fn the_racy_rule_decides_what_is_recorded() {
        let s = setup();
        let a = s.folder.join("demo/ref/a.md");
        let all = ["SKILL.md", "ref/a.md", "ref/b.md"];
        let others = ["SKILL.md", "ref/b.md"];
        // Every mtime well in the past (with a nanosecond part: not a coarse file system).
        let past = (StatData::of(&fs::metadata(&a).unwrap()).ctime.0 - 100, 123);
        for f in all {
            set_mtime_exactly(&s.folder.join("demo").join(f), past);
        }
        let ctime = StatData::of(&fs::metadata(&a).unwrap()).ctime;
        let later = |t: (i64, i64), ns: i64| {
            let n = t.0 as i128 * 1_000_000_000 + t.1 as i128 + ns as i128;
            (
                n.div_euclid(1_000_000_000) as i64,
                n.rem_euclid(1_000_000_000) as i64,
            )
        };
        // By ctime: `a.md` changed in the stamp's tick, and a nanosecond before it.
        assert_eq!(recorded_at(&s, later(ctime, 3_600_000_000_000)), all);
        assert!(
            !recorded_at(&s, ctime).contains(&"ref/a.md".to_string()),
            "ctime in the stamp's tick"
        );
        assert!(recorded_at(&s, later(ctime, 1)).contains(&"ref/a.md".to_string()));
        // By mtime, with every ctime an hour older than the stamp.
        let stamp = later(ctime, 3_600_000_000_000);
        set_mtime_exactly(&a, stamp);
        assert_eq!(recorded_at(&s, stamp), others, "mtime in the stamp's tick");
        set_mtime_exactly(&a, later(stamp, 1));
        assert_eq!(recorded_at(&s, stamp), others, "mtime after the stamp");
        set_mtime_exactly(&a, later(stamp, -1));
        assert_eq!(recorded_at(&s, stamp), all, "mtime a nanosecond older");
    }

    /// Sections put whole (the commands and instructions fast path): only with a stamp taken
    /// before the reads, only when every file is settled by it, and kept as loaded.
    #[test]
    fn a_section_is_put_whole_or_not_at_all() {
        let s = setup();
        let stat = |f: &str| StatData::of(&fs::symlink_metadata(s.folder.join(f)).unwrap());
        let id = Oid::hash_object(git2::ObjectType::Blob, b"x").unwrap();
        let records = |files: &[&str]| -> Vec<(String, StatData, Oid)> {
            files.iter().map(|f| (f.to_string(), stat(f), id)).collect()
        };
        let cache = StatCache::for_items(&s.cache, "rendered", &s.folder);
        // No stamp taken before the reads: nothing may be recorded.
        assert!(!cache.put("item", records(&["demo/SKILL.md"])));
        cache.begin_reading();
        // One racy file (mtime in the future) and the whole section is refused.
        age(&s.folder.join("demo/ref/a.md"), 3600);
        assert!(!cache.put("item", records(&["demo/SKILL.md", "demo/ref/a.md"])));
        assert!(cache.put("item", records(&["demo/SKILL.md", "demo/ref/b.md"])));
        cache.save();
        let again = StatCache::for_items(&s.cache, "rendered", &s.folder);
        let r = again.recorded("item").expect("the section was saved");
        assert_eq!(r.len(), 2);
        assert_eq!(r.get("demo/SKILL.md"), Some((stat("demo/SKILL.md"), id)));
        // Kept as loaded: the next version still has it; a section not seen is dropped.
        again.keep_as_loaded("item");
        again.save();
        let third = StatCache::for_items(&s.cache, "rendered", &s.folder);
        assert!(third.recorded("item").is_some());
        third.save();
        let fourth = StatCache::for_items(&s.cache, "rendered", &s.folder);
        assert!(fourth.recorded("item").is_none());
        // Kept apart from the skills folder's cache of the same path.
        assert_ne!(fourth.file, StatCache::for_folder(&s.cache, &s.folder).file);
    }

    #[test]
    fn a_malformed_cache_is_an_empty_cache() {
        let s = setup();
        run(&s);
        let file = StatCache::for_folder(&s.cache, &s.folder).file;
        let bytes = fs::read(&file).unwrap();
        for cut in [0, 5, 8, 20, bytes.len() - 1] {
            fs::write(&file, &bytes[..cut]).unwrap();
            assert_eq!(run(&s).2, 3, "truncated at {cut}: everything is read");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        fs::write(&file, extra).unwrap();
        assert_eq!(run(&s).2, 3);
    }

    #[test]
    fn encoding_round_trips() {
        let mut files = Section::default();
        files.insert(
            "a/b.md".into(),
            Record {
                stat: StatData {
                    size: 7,
                    mtime: (-5, 999_999_999),
                    ctime: (1 << 40, 3),
                    ino: u64::MAX,
                    dev: 42,
                    mode: 0o100755,
                },
                id: Oid::hash_object(git2::ObjectType::Blob, b"x").unwrap(),
            },
        );
        let mut sections = HashMap::new();
        sections.insert("skill".to_string(), files);
        sections.insert("empty".to_string(), Section::default());
        assert_eq!(decode(&encode(&sections)), Some(sections));
    }

    /// Counts the folders whose names were read from disk (not taken from their listing).
    struct CountListings<'a, 'b> {
        ids: &'a SkillIds<'b>,
        read: std::sync::atomic::AtomicUsize,
    }

    impl BlobIds for CountListings<'_, '_> {
        fn blob_id_at(&self, file: &FileAt, rel: &str, stat: &StatData) -> Result<Oid> {
            self.ids.blob_id_at(file, rel, stat)
        }
        fn listing(&self, rel: &str) -> Option<&Listing> {
            self.ids.listing(rel)
        }
        fn before_listing(&self) {
            self.read.fetch_add(1, Ordering::Relaxed);
            self.ids.before_listing()
        }
        fn listed(&self, rel: &str, now: Option<Listing>) {
            self.ids.listed(rel, now)
        }
    }

    /// One run as [`run`], with the file system's "now" pinned to `stamp` if given: (tree id,
    /// folders read from disk, files read).
    fn run_listing(s: &Setup, stamp: Option<(i64, i64)>) -> (Oid, usize, usize) {
        let cache = StatCache::for_folder(&s.cache, &s.folder);
        if let Some(t) = stamp {
            cache.stamp.set(Some(t)).unwrap();
        }
        let ids = cache.skill("demo");
        let counting = CountListings {
            ids: &ids,
            read: Default::default(),
        };
        let id = tree::disk_tree_id(
            &s.folder.join("demo"),
            &mut Budget::new(Caps::from_env()),
            &counting,
        )
        .unwrap();
        let read = counting.read.into_inner();
        ids.keep();
        cache.save();
        (id, read, cache.counts().1)
    }

    /// The folders' listings come from the cache while each folder's stat data are unchanged
    /// (two folders here: the skill's and `ref`); a file added, removed or renamed in either
    /// moves that folder's mtime, and the folder is read from disk again: the tree id is
    /// always the one a full listing gives.
    #[test]
    fn a_folder_listing_is_reused_only_while_the_folder_is_unchanged() {
        let s = setup();
        let (id1, read, _) = run_listing(&s, None);
        assert_eq!(read, 2, "a cold run reads both folders");
        assert_eq!(id1, plain_id(&s));
        let (id2, read, files) = run_listing(&s, None);
        assert_eq!(
            (id2, read, files),
            (id1, 0, 0),
            "a no-op reads no folder, no file"
        );
        let demo = s.folder.join("demo");
        let changes: [(&str, &dyn Fn()); 6] = [
            ("added in ref", &|| {
                fs::write(demo.join("ref/c.md"), "charlie\n").unwrap()
            }),
            ("removed in ref", &|| {
                fs::remove_file(demo.join("ref/c.md")).unwrap()
            }),
            ("renamed in ref", &|| {
                fs::rename(demo.join("ref/b.md"), demo.join("ref/B.md")).unwrap()
            }),
            ("added at the top", &|| {
                fs::write(demo.join("new.md"), "n\n").unwrap()
            }),
            ("folder added", &|| {
                fs::create_dir(demo.join("sub")).unwrap()
            }),
            ("file in the new folder", &|| {
                fs::write(demo.join("sub/x.md"), "x\n").unwrap()
            }),
        ];
        let mut last = id1;
        for (what, change) in changes {
            change();
            settle(&s.folder);
            let (id, read, _) = run_listing(&s, None);
            assert_eq!(
                id,
                plain_id(&s),
                "{what}: the tree id is the full listing's"
            );
            assert!(read >= 1, "{what}: the changed folder is read again");
            if what != "folder added" {
                assert_ne!(id, last, "{what}");
            }
            last = id;
            let (again, read, _) = run_listing(&s, None);
            assert_eq!(
                (again, read),
                (id, 0),
                "{what}: settled, the next run reads none"
            );
        }
    }

    /// A folder whose mtime or ctime is in the stamp's tick (it may change again within the
    /// tick without its stat data moving) is read from disk on the next run, not taken from
    /// a listing; its neighbours' listings are still kept.
    #[test]
    fn a_racy_folder_listing_is_not_trusted() {
        let s = setup();
        let ref_dir = s.folder.join("demo/ref");
        // `ref` changed last (after every file and the skill's folder).
        fs::write(ref_dir.join("tmp"), "").unwrap();
        fs::remove_file(ref_dir.join("tmp")).unwrap();
        let ctime = StatData::of(&fs::symlink_metadata(&ref_dir).unwrap()).ctime;
        // Stamp in the tick of `ref`'s last change: its listing is racy.
        let (id, read, _) = run_listing(&s, Some(ctime));
        assert_eq!((id, read), (plain_id(&s), 2));
        let (_, read, _) = run_listing(&s, None);
        assert_eq!(read, 1, "the racy folder is read again, the other is not");
        let (_, read, _) = run_listing(&s, None);
        assert_eq!(read, 0, "settled by now: recorded");
        // With its mtime put in the future, it is racy on every run.
        let later = SystemTime::now() + Duration::from_secs(3600);
        fs::File::open(&ref_dir)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(run_listing(&s, None).1, 1);
        assert_eq!(run_listing(&s, None).1, 1);
    }

    /// The listing of a folder whose stat data do not move on a change: the recorded tree id
    /// is only reused when every entry's id is again the recorded one (a file edited with its
    /// folder untouched gives a new id from the recorded names).
    #[test]
    fn an_edited_file_changes_the_tree_of_a_recorded_listing() {
        let s = setup();
        run_listing(&s, None);
        fs::write(s.folder.join("demo/ref/a.md"), "ALPHA!\n").unwrap();
        let (id, read, files) = run_listing(&s, None);
        assert_eq!((id, read, files), (plain_id(&s), 0, 1));
    }

    #[test]
    fn folder_listings_round_trip_and_a_malformed_file_is_ignored() {
        let s = setup();
        run_listing(&s, None);
        let cache = StatCache::for_folder(&s.cache, &s.folder);
        let bytes = fs::read(&cache.dirs_file).unwrap();
        let decoded = decode_dirs(&bytes).unwrap();
        assert_eq!(decoded["demo"].len(), 2);
        assert_eq!(encode_dirs(&decoded).len(), bytes.len());
        assert_eq!(decode_dirs(&encode_dirs(&decoded)), Some(decoded));
        for cut in [0, 5, 8, 20, bytes.len() - 1] {
            fs::write(&cache.dirs_file, &bytes[..cut]).unwrap();
            assert_eq!(run_listing(&s, None).1, 2, "truncated at {cut}");
        }
        // A listing naming anything but one plain name (a cache restored from elsewhere,
        // forged to lead a walk out of its folder) makes the whole file malformed.
        for bad in ["..", ".", "", "a/b", "a\0b"] {
            let mut forged = decoded_again(&s);
            let l = forged.get_mut("demo").unwrap().get_mut("").unwrap();
            let mut entries: Vec<(String, u32, Option<Oid>)> =
                l.iter().map(|(n, m, i)| (n.to_string(), m, i)).collect();
            entries[0].0 = bad.to_string();
            *l = Listing::new(
                l.stat,
                entries.iter().map(|(n, m, i)| (n.as_str(), *m, *i)),
                l.tree,
            );
            assert!(decode_dirs(&encode_dirs(&forged)).is_none(), "{bad:?}");
        }
    }

    /// The folders' file as a fresh run writes it.
    fn decoded_again(s: &Setup) -> HashMap<String, Dirs> {
        let cache = StatCache::for_folder(&s.cache, &s.folder);
        let _ = fs::remove_file(&cache.dirs_file);
        run_listing(s, None);
        decode_dirs(&fs::read(&cache.dirs_file).unwrap()).unwrap()
    }

    /// The stat data read relative to an open folder are those `std::fs` reads: the two kinds
    /// of walk (listing a local source before a write, checking it on a no-op) share records.
    #[test]
    fn stat_data_agree_between_walks() {
        let s = setup();
        let f = s.folder.join("demo/ref/a.md");
        let cache = StatCache::for_folder(&s.cache, &s.folder);
        run_listing(&s, None);
        let ids = cache.skill("demo");
        let (_, r) = ids.old.unwrap().get_key_value("ref/a.md").unwrap();
        assert_eq!(r.stat, StatData::of(&fs::symlink_metadata(&f).unwrap()));
    }

    /// A listing without folder records (`read_disk`, as a local source is listed before a
    /// write) neither drops the listings a walk of the same run recorded nor writes a folders'
    /// file of its own.
    #[test]
    fn a_walk_without_listings_keeps_the_folders_recorded() {
        let s = setup();
        run_listing(&s, None);
        let cache = StatCache::for_folder(&s.cache, &s.folder);
        let walked = cache.skill("demo");
        tree::disk_tree_id(
            &s.folder.join("demo"),
            &mut Budget::new(Caps::from_env()),
            &walked,
        )
        .unwrap();
        walked.keep();
        let listed = cache.skill("demo");
        tree::read_disk_with(
            &s.folder.join("demo"),
            &mut Budget::new(Caps::from_env()),
            &listed,
        )
        .unwrap();
        listed.keep();
        cache.save();
        assert_eq!(
            run_listing(&s, None).1,
            0,
            "the listings are still recorded"
        );
        // A cache whose sections are never walked as folders has no folders' file.
        let items = StatCache::for_items(&s.cache, "rendered", &s.folder);
        let ids = items.skill("items");
        let f = s.folder.join("demo/SKILL.md");
        ids.blob_id(&f, "demo/SKILL.md", &fs::symlink_metadata(&f).unwrap())
            .unwrap();
        ids.keep();
        items.save();
        assert!(items.file.exists());
        assert!(!items.dirs_file.exists());
    }

    #[test]
    fn an_unchanged_cache_is_not_rewritten() {
        let s = setup();
        run(&s);
        let file = StatCache::for_folder(&s.cache, &s.folder).file;
        let before = fs::metadata(&file).unwrap();
        run(&s);
        let after = fs::metadata(&file).unwrap();
        assert_eq!(
            before.ino(),
            after.ino(),
            "no new file was renamed into place"
        );
    }
}
