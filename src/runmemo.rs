//! The whole-run no-op memo of `kst sync` (SPEC 14, the commands and instructions no-op): when
//! nothing a sync depends on has changed since a sync that found everything up to date, the
//! next one says so after checking one list of stat data, without loading the config or the
//! lock, resolving or planning — git's index check, for a whole run.
//!
//! **What it holds.** One file per *key* in the cache (`runs/<key>`). The key is a hash of
//! everything about the invocation: kst's version and the identity of its executable (path,
//! size, mtime, inode), the working folder, the flags, the printer's verbosity, and the value
//! of every environment variable kst reads ([`crate::envvars::RUN_INPUTS`]). The file lists
//! *witnesses*: paths with the `lstat` data they had (or that they were absent), and for a
//! symlink also the `stat` data of what it leads to. They are:
//!
//! - the config's discovery (`kasetto.yaml` in the working folder, and when it is absent the
//!   user's pointer and global config), every config file read (`extends` parents too), the
//!   lock, and the trust record;
//! - per local source: its folder and every folder between the config's and it (a stranger's
//!   config reads only inside its project, judged through them), and every path its reading
//!   asked about (each folder listed, each file tested or read, through [`Noting`], so what is
//!   witnessed is what discovery looked at, by construction), with every folder between the
//!   source and each; for a skill (listed, or checked against its locked tree id), every entry
//!   of its folder's tree;
//! - every destination of every item (a rendered file, the shared file holding a block, or an
//!   installed skill folder with every entry of its tree), with every folder between the scope
//!   root and it;
//! - for every witness that is a symlink, each step of the path it resolves through that lies
//!   inside the project (in the project scope, or for a stranger's config): whether a link
//!   leads out of the project is part of the result, and a folder on the way swapped for a
//!   link elsewhere leaves the link and its end as they were.
//!
//! **When it is recorded.** Only by a full `kst sync` that found every item unchanged, printed
//! nothing but its summary, wrote nothing, and whose inputs the memo can witness: local
//! sources of skills, commands and instructions only (a git source's pin and cache, an MCP
//! server's secrets and settings files, a remote config, signed pins and the audit gate are not
//! witnessed here, so a config with any of them is never memoised). Every witness must be *settled* by git's racy
//! rule ([`StatData::settled`]) against a stamp of the file system's clock taken before the
//! run read anything: then nothing witnessed changed after the run began, so the run saw what
//! the memo records, and any later change moves an mtime or ctime past the recorded one.
//!
//! **When it is used.** When the key's file exists and every witness is as recorded, the
//! summary the recorded run printed is printed again (with this run's time) and the run ends:
//! a full run would have found the same inputs and so reported the same. Anything else — a
//! missing, foreign or damaged memo, one witness changed — is a full run, which records again.
//! The memo is never consulted for `--update`, `--json`, `-v`, `--audit` or any command but
//! `sync`. Like the stat caches, it trusts the cache folder, which is the user's own
//! (SECURITY.md): a memo planted in a shared cache cannot match a fresh checkout, whose config's
//! and lock's inodes and ctimes nobody can predict.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::discover::{PackView, SkillMd};
use crate::item::Kind;
use crate::statcache::StatData;

const MAGIC: &str = "KSTRUNMEMO1";

/// The largest memo read (a witness line is under 200 bytes plus its path).
const MAX_MEMO: u64 = 64 << 20;

/// The kinds a summary may count, in the order a memo names them.
const KINDS: [Kind; 5] = [
    Kind::Skill,
    Kind::Server,
    Kind::McpPack,
    Kind::Command,
    Kind::Instruction,
];

/// What identifies one invocation of `kst sync`: see the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// The key of this invocation, from what the caller says about its flags (`flags`: every
    /// flag's value, spelled so that different flags differ). None when it cannot be had.
    pub fn of(flags: &str) -> Option<Key> {
        let mut h = Sha256::new();
        let mut put = |b: &[u8]| {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        };
        put(MAGIC.as_bytes());
        put(env!("CARGO_PKG_VERSION").as_bytes());
        let exe = std::env::current_exe().ok()?;
        put(exe.as_os_str().as_bytes());
        put(stat_line(&StatData::of(&std::fs::metadata(&exe).ok()?)).as_bytes());
        put(std::env::current_dir().ok()?.as_os_str().as_bytes());
        put(flags.as_bytes());
        for name in crate::envvars::RUN_INPUTS {
            put(name.as_bytes());
            match std::env::var_os(name) {
                Some(v) => put(&[&[1u8][..], v.as_bytes()].concat()),
                None => put(&[0]),
            }
        }
        let hex: String = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(Key(hex))
    }

    fn file(&self) -> Option<PathBuf> {
        Some(crate::dirs::cache_root().ok()?.join("runs").join(&self.0))
    }
}

/// What a summary counted, as the memo keeps it: the items found up to date, and how many of
/// each kind (the report's `Summary` is made from it again, with the run's own time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub unchanged: usize,
    pub kinds: std::collections::BTreeMap<Kind, usize>,
}

/// A memo found true: what the recorded run reported.
#[derive(Debug)]
pub struct Hit {
    pub counts: Counts,
    pub scope: String,
    pub lock: String,
}

/// The memo of `key`, if every witness is as recorded.
pub fn check(key: &Key) -> Option<Hit> {
    let bytes = crate::fsx::read_input_bytes(&key.file()?, MAX_MEMO, None).ok()?;
    let (hit, groups) = parse(&bytes, key)?;
    if !all_as_recorded(&groups) {
        return None;
    }
    crate::failpoint::count(crate::failpoint::Counter::RunMemoHit);
    Some(hit)
}

/// A memo's header and witnesses, when it is whole and of `key`.
fn parse<'a>(bytes: &'a [u8], key: &Key) -> Option<(Hit, Vec<Group<'a>>)> {
    let mut rest: &[u8] = bytes;
    let mut line = || {
        let at = rest.iter().position(|&b| b == b'\n')?;
        let (l, r) = rest.split_at(at);
        rest = &r[1..];
        std::str::from_utf8(l).ok()
    };
    if line()? != format!("{MAGIC} {}", key.0) {
        return None;
    }
    let scope = line()?.strip_prefix("scope ")?.to_string();
    let lock = unescape(line()?.strip_prefix("lock ")?)?;
    let summary = parse_summary(line()?.strip_prefix("summary ")?)?;
    // The body's length, so that a memo cut short (between two folders) is not a shorter list.
    let len: usize = line()?.strip_prefix("body ")?.parse().ok()?;
    if rest.len() != len {
        return None;
    }
    let groups = parse_groups(rest)?;
    // A memo without witnesses was not written by `finish` (it always has the config).
    if groups.is_empty() {
        return None;
    }
    let hit = Hit {
        counts: summary,
        scope,
        lock: String::from_utf8_lossy(&lock).into_owned(),
    };
    Some((hit, groups))
}

/// An entry's name in its folder and what it was.
type Entry<'a> = (&'a [u8], Seen);

/// Part of a folder's entries, for one thread: the folder and those entries.
type Piece<'a, 'b> = (&'a [u8], &'b [Entry<'a>]);

/// The witnesses of one folder: each entry's name and what it was.
struct Group<'a> {
    dir: &'a [u8],
    entries: Vec<Entry<'a>>,
}

/// Whether every witness is as recorded: each folder opened once and its entries looked up
/// by name in it (as `lstat` of the whole path would, with one name to resolve instead of
/// the path), spread over a few threads as git's index preload does — a no-op's time is these
/// stat calls.
fn all_as_recorded(groups: &[Group]) -> bool {
    let total: usize = groups.iter().map(|g| g.entries.len()).sum();
    let threads = cpus().clamp(1, 4).min(total.div_ceil(500));
    if threads <= 1 {
        return groups
            .iter()
            .all(|g| group_as_recorded(g.dir, &g.entries, None));
    }
    // Cut the list into `threads` runs of about equal numbers of entries.
    let per = total.div_ceil(threads);
    let mut chunks: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut room = per;
    for g in groups {
        let mut entries: &[Entry] = &g.entries;
        while !entries.is_empty() {
            if room == 0 {
                chunks.push(Vec::new());
                room = per;
            }
            let take = entries.len().min(room);
            let (now, later) = entries.split_at(take);
            chunks.last_mut().expect("a chunk").push((g.dir, now));
            entries = later;
            room -= take;
        }
    }
    let differs = AtomicBool::new(false);
    let run = |chunk: &[Piece]| {
        for (dir, entries) in chunk {
            if differs.load(Ordering::Relaxed) || !group_as_recorded(dir, entries, Some(&differs)) {
                differs.store(true, Ordering::Relaxed);
                return;
            }
        }
    };
    std::thread::scope(|s| {
        let (first, others) = chunks.split_first().expect("a chunk");
        for c in others {
            s.spawn(|| run(c));
        }
        run(first);
    });
    !differs.load(Ordering::Relaxed)
}

/// The CPUs this process may run on: one system call (`available_parallelism` also reads the
/// cgroup's files, a dozen more, which is a tenth of this whole check on a small project).
fn cpus() -> usize {
    // SAFETY: a zeroed set is valid; the call fills it for this process (pid 0).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return 1;
    }
    // SAFETY: `set` was filled above.
    (unsafe { libc::CPU_COUNT(&set) }) as usize
}

fn group_as_recorded(dir: &[u8], entries: &[Entry], stop: Option<&AtomicBool>) -> bool {
    let dir = Path::new(std::ffi::OsStr::from_bytes(dir));
    // A folder of a few entries costs less looked up by path than opened and closed (two
    // more system calls); the answer is the same (`lstat` of the path resolves the folder as
    // opening it does).
    let opened = if entries.len() > 2 {
        crate::fsat::Dir::open(dir, true)
    } else {
        Err(std::io::Error::from(ErrorKind::Unsupported))
    };
    for (i, (name, seen)) in entries.iter().enumerate() {
        if i % 64 == 63 && stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            return false;
        }
        let follow = seen.follows();
        let now = match &opened {
            Ok(d) => match d.stat_name(name, follow) {
                Ok(s) if follow => Some(Seen::S(s)),
                Ok(s) => Some(Seen::L(s)),
                Err(e) if e.kind() == ErrorKind::NotFound && follow => Some(Seen::NoS),
                Err(e) if e.kind() == ErrorKind::NotFound => Some(Seen::NoL),
                Err(_) => None,
            },
            // A small folder, or one that is gone or not a folder: each entry as a path.
            Err(_) => observe(&dir.join(std::ffi::OsStr::from_bytes(name)), follow),
        };
        if now != Some(*seen) {
            return false;
        }
    }
    true
}

/// The witnesses after the header: groups of `dir`, then its entries (see [`encode`]).
fn parse_groups(mut b: &[u8]) -> Option<Vec<Group<'_>>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        (b.len() >= n).then(|| {
            let (h, t) = b.split_at(n);
            *b = t;
            h
        })
    }
    fn u32_(b: &mut &[u8]) -> Option<u32> {
        Some(u32::from_le_bytes(take(b, 4)?.try_into().ok()?))
    }
    fn u64_(b: &mut &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(take(b, 8)?.try_into().ok()?))
    }
    let mut groups = Vec::new();
    while !b.is_empty() {
        let n = u32_(&mut b)? as usize;
        let dir = take(&mut b, n)?;
        let count = u32_(&mut b)? as usize;
        let mut entries = Vec::with_capacity(count.min(b.len() / 5));
        for _ in 0..count {
            let tag = take(&mut b, 1)?[0];
            let n = u32_(&mut b)? as usize;
            let name = take(&mut b, n)?;
            let mut stat = || -> Option<StatData> {
                let size = u64_(&mut b)?;
                let mut num = || u64_(&mut b).map(|v| v as i64);
                let (mtime, ctime) = ((num()?, num()?), (num()?, num()?));
                Some(StatData {
                    size,
                    mtime,
                    ctime,
                    ino: u64_(&mut b)?,
                    dev: u64_(&mut b)?,
                    mode: u32_(&mut b)?,
                })
            };
            let seen = match tag {
                b'L' => Seen::L(stat()?),
                b'S' => Seen::S(stat()?),
                b'A' => Seen::NoL,
                b'a' => Seen::NoS,
                _ => return None,
            };
            entries.push((name, seen));
        }
        groups.push(Group { dir, entries });
    }
    Some(groups)
}

/// What one path was found to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// `lstat` data.
    L(StatData),
    /// `stat` data (what a symlink leads to).
    S(StatData),
    /// Absent (`lstat`: nothing there).
    NoL,
    /// Absent through the symlink (`stat`: it leads nowhere).
    NoS,
}

impl Seen {
    fn follows(self) -> bool {
        matches!(self, Seen::S(_) | Seen::NoS)
    }
}

/// What `path` is now (None: it cannot be told, e.g. a permission error).
fn observe(path: &Path, follow: bool) -> Option<Seen> {
    let m = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    };
    match (m, follow) {
        (Ok(m), false) => Some(Seen::L(StatData::of(&m))),
        (Ok(m), true) => Some(Seen::S(StatData::of(&m))),
        (Err(e), false) if e.kind() == ErrorKind::NotFound => Some(Seen::NoL),
        (Err(e), true) if e.kind() == ErrorKind::NotFound => Some(Seen::NoS),
        (Err(_), _) => None,
    }
}

fn stat_line(s: &StatData) -> String {
    format!(
        "{} {} {} {} {} {} {} {:o}",
        s.size, s.mtime.0, s.mtime.1, s.ctime.0, s.ctime.1, s.ino, s.dev, s.mode
    )
}

/// A path's bytes on one line: `\` and newline escaped, anything not UTF-8 as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1)? {
            b'\\' => out.push(b'\\'),
            b'n' => out.push(b'\n'),
            b'x' => {
                let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => return None,
        }
        i += 2;
    }
    Some(out)
}

fn summary_line(s: &Counts) -> String {
    let kinds: Vec<String> = KINDS
        .iter()
        .map(|k| s.kinds.get(k).copied().unwrap_or(0).to_string())
        .collect();
    format!("{} {}", s.unchanged, kinds.join(" "))
}

fn parse_summary(line: &str) -> Option<Counts> {
    let mut f = line.split(' ').map(|n| n.parse::<usize>().ok());
    let mut s = Counts {
        unchanged: f.next()??,
        ..Counts::default()
    };
    for k in KINDS {
        let n = f.next()??;
        if n > 0 {
            s.kinds.insert(k, n);
        }
    }
    f.next().is_none().then_some(s)
}

/// A full run of `kst sync` that may record the memo: its key and the stamp taken before it
/// read anything.
pub struct Recording {
    key: Key,
    stamp: (i64, i64),
}

impl Recording {
    /// Call before the run reads anything (the stamp comes first: the racy rule). None when
    /// the file system's clock cannot be had (then nothing is recorded).
    pub fn begin(key: Key) -> Option<Recording> {
        // A cache not made yet is made private and tagged by its first real user (`Cache`),
        // not here: a first run records nothing.
        let root = crate::dirs::cache_root().ok().filter(|r| r.is_dir())?;
        let stamp = crate::statcache::fs_clock(&root)?;
        Some(Recording { key, stamp })
    }

    /// Record the memo: the run found everything up to date and printed `summary` alone, and
    /// `witnesses` are every path its result depends on. Best effort, and nothing is recorded
    /// when a witness cannot be told or is not settled.
    pub fn finish(self, witnesses: Witnesses, summary: &Counts, scope: &str, lock: &Path) {
        let Some(file) = self.key.file() else {
            return;
        };
        let written = (|| -> anyhow::Result<bool> {
            let dir = file.parent().expect("a memo file has a folder");
            std::fs::create_dir_all(dir)?;
            // Private (0600) and moved into place whole: a reader never sees half a memo.
            let tmp = tempfile::NamedTempFile::new_in(dir)?;
            let mut out = std::io::BufWriter::new(tmp.as_file());
            if self
                .render(witnesses, summary, scope, lock, &mut out, MAX_MEMO)?
                .is_none()
            {
                return Ok(false);
            }
            out.into_inner().map_err(|e| e.into_error())?;
            tmp.persist(&file)?;
            Ok(true)
        })();
        if let Err(e) = written {
            tracing::debug!("run memo not written: {e:#}");
        }
    }

    /// Write the memo to `out`; None (nothing worth keeping written) when a witness cannot be
    /// told or is not settled. The witnesses are observed and written folder by folder, so
    /// that what is kept in memory is the paths alone: at 10,000 skills there are hundreds of
    /// thousands.
    fn render(
        &self,
        witnesses: Witnesses,
        summary: &Counts,
        scope: &str,
        lock: &Path,
        out: &mut std::io::BufWriter<&std::fs::File>,
        cap: u64,
    ) -> anyhow::Result<Option<()>> {
        use std::io::{Seek, SeekFrom, Write};
        let head = format!(
            "{MAGIC} {}\nscope {scope}\nlock {}\nsummary {}\nbody ",
            self.key.0,
            escape(lock.as_os_str().as_bytes()),
            summary_line(summary)
        );
        // The body's length, as 20 digits filled in once the body is written behind it.
        out.write_all(head.as_bytes())?;
        out.write_all(format!("{:020}\n", 0).as_bytes())?;
        let body_at = head.len() as u64 + 21;
        let confines = witnesses.confines;
        let mut paths: Vec<PathBuf> = witnesses.paths.into_iter().collect();
        paths.sort_unstable_by(|a, b| split(a).cmp(&split(b)));
        let mut body: u64 = 0;
        // `check` reads no memo over its cap: one over it would be written by every full run
        // and read by none (each run stays a full one either way).
        let over = |body: u64| {
            let over = body_at + body > cap;
            if over {
                tracing::debug!("run memo not recorded: over {cap} bytes");
            }
            over
        };
        // What observing adds (an absent path's folder, the steps of a symlink's resolution),
        // written after the rest, each once.
        let mut added: HashSet<PathBuf> = HashSet::new();
        let mut todo: Vec<PathBuf> = Vec::new();
        let mut more: Vec<PathBuf> = Vec::new();
        let known = |p: &Path| paths.binary_search_by(|q| split(q).cmp(&split(p))).is_ok();
        let observe_into = |path: &Path,
                            group: &mut Vec<(Seen, Option<Seen>)>,
                            more: &mut Vec<PathBuf>|
         -> Option<()> {
            let first = observe(path, false)?;
            let mut second = None;
            match first {
                Seen::L(s) if s.mode & libc::S_IFMT == libc::S_IFLNK => {
                    second = Some(observe(path, true)?);
                    // Where the link leads is judged by the path it resolves through (a link
                    // leading out of the project is refused): each step of that path inside a
                    // confining folder is witnessed too, so a folder on the way swapped for a
                    // link elsewhere is seen though the link and its end are as they were.
                    for step in resolution(path) {
                        if confines.iter().any(|c| step != *c && step.starts_with(c)) {
                            more.push(step);
                        }
                    }
                }
                // An absent path's folder is witnessed too: a path created and removed while
                // the run read leaves the folder changed after the stamp.
                Seen::NoL => more.extend(
                    path.parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .map(Path::to_path_buf),
                ),
                _ => {}
            }
            for s in [Some(first), second].into_iter().flatten() {
                if let Seen::L(st) | Seen::S(st) = s
                    && !st.settled(self.stamp)
                {
                    tracing::debug!("run memo not recorded: {} is racy", path.display());
                    return None;
                }
            }
            group.push((first, second));
            Some(())
        };
        let mut seen: Vec<(Seen, Option<Seen>)> = Vec::new();
        for chunk in paths.chunk_by(|a, b| split(a).0 == split(b).0) {
            seen.clear();
            for p in chunk {
                if observe_into(p, &mut seen, &mut more).is_none() {
                    return Ok(None);
                }
            }
            let names = chunk.iter().map(|p| split(p).1);
            body += write_group(out, split(&chunk[0]).0, names.zip(seen.iter().copied()))?;
            if over(body) {
                return Ok(None);
            }
        }
        loop {
            for m in more.drain(..) {
                if !known(&m) && added.insert(m.clone()) {
                    todo.push(m);
                }
            }
            let Some(p) = todo.pop() else {
                break;
            };
            seen.clear();
            if observe_into(&p, &mut seen, &mut more).is_none() {
                return Ok(None);
            }
            let (dir, name) = split(&p);
            body += write_group(out, dir, std::iter::once(name).zip(seen.iter().copied()))?;
            if over(body) {
                return Ok(None);
            }
        }
        out.flush()?;
        let file = out.get_mut();
        file.seek(SeekFrom::Start(body_at - 21))?;
        file.write_all(format!("{body:020}").as_bytes())?;
        Ok(Some(()))
    }
}

/// A path's folder and name as bytes (`/a/b` → `/a`, `b`; `/a` → `/`, `a`), trailing slashes
/// aside: a `..` or `.` stays a name, looked up in its folder as the path would resolve it.
fn split(p: &Path) -> (&[u8], &[u8]) {
    let mut b = p.as_os_str().as_bytes();
    while b.len() > 1 && b.ends_with(b"/") {
        b = &b[..b.len() - 1];
    }
    match b.iter().rposition(|&c| c == b'/') {
        Some(0) => (&b[..1], &b[1..]),
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b"".as_slice(), b),
    }
}

/// One folder's witnesses in the memo's binary form: the folder's path and number of entries
/// (u32 little-endian lengths), per entry a tag (`L`, `S`, `A`bsent, `a`bsent through a
/// symlink), its name and for the first two the stat data (size, mtime, ctime, inode, device:
/// u64/i64; mode: u32); a symlink's `stat` follows its `lstat`. Returns the bytes written.
fn write_group<'n>(
    out: &mut impl std::io::Write,
    dir: &[u8],
    entries: impl Iterator<Item = (&'n [u8], (Seen, Option<Seen>))> + Clone,
) -> std::io::Result<u64> {
    let mut buf = Vec::new();
    let len = |buf: &mut Vec<u8>, n: usize| buf.extend((n as u32).to_le_bytes());
    len(&mut buf, dir.len());
    buf.extend(dir);
    let count: usize = entries
        .clone()
        .map(|(_, (_, second))| 1 + usize::from(second.is_some()))
        .sum();
    len(&mut buf, count);
    for (name, (first, second)) in entries {
        for s in [Some(first), second].into_iter().flatten() {
            buf.push(match s {
                Seen::L(_) => b'L',
                Seen::S(_) => b'S',
                Seen::NoL => b'A',
                Seen::NoS => b'a',
            });
            len(&mut buf, name.len());
            buf.extend(name);
            if let Seen::L(st) | Seen::S(st) = s {
                buf.extend(st.size.to_le_bytes());
                for t in [st.mtime.0, st.mtime.1, st.ctime.0, st.ctime.1] {
                    buf.extend(t.to_le_bytes());
                }
                buf.extend(st.ino.to_le_bytes());
                buf.extend(st.dev.to_le_bytes());
                buf.extend(st.mode.to_le_bytes());
            }
        }
    }
    out.write_all(&buf)?;
    Ok(buf.len() as u64)
}

/// The paths a run's result depends on, gathered for [`Recording::finish`].
#[derive(Debug, Default)]
pub struct Witnesses {
    paths: HashSet<PathBuf>,
    /// The folders the run confines what it reads and writes to (the project, in the project
    /// scope or for a stranger's config): a symlink witnessed is followed through them.
    confines: Vec<PathBuf>,
}

/// Every path resolving the absolute `path` looks at, in order, as `realpath` walks it: each
/// component from `/`, and through each symlink met the components of its target in turn (up
/// to 40 links, as the kernel).
fn resolution(path: &Path) -> Vec<PathBuf> {
    fn push(todo: &mut Vec<std::ffi::OsString>, p: &Path) {
        for c in p.components().rev() {
            match c {
                std::path::Component::Normal(n) => todo.push(n.to_owned()),
                std::path::Component::ParentDir => todo.push("..".into()),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    let mut at = PathBuf::from("/");
    let mut todo = Vec::new();
    push(&mut todo, path);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&name);
        out.push(next.clone());
        match std::fs::read_link(&next) {
            Ok(target) => {
                links += 1;
                if links > 40 {
                    break;
                }
                if target.is_absolute() {
                    at = PathBuf::from("/");
                }
                push(&mut todo, &target);
            }
            Err(_) => at = next,
        }
    }
    out
}

impl Witnesses {
    /// A folder the run confines what it reads and writes to (as spelled and as resolved):
    /// a symlink witnessed is followed through it ([`Recording::finish`]).
    pub fn confine(&mut self, folder: &Path) {
        self.confines.push(folder.to_path_buf());
        self.confines.extend(std::fs::canonicalize(folder).ok());
    }

    /// `path` itself.
    pub fn path(&mut self, path: &Path) {
        if !self.paths.contains(path) {
            self.paths.insert(path.to_path_buf());
        }
    }

    /// `path` and every folder between `anchor` (not included) and it; a path not under
    /// `anchor` alone.
    pub fn under(&mut self, anchor: &Path, path: &Path) {
        self.path(path);
        let Ok(rel) = path.strip_prefix(anchor) else {
            return;
        };
        let mut at = anchor.to_path_buf();
        let parts: Vec<_> = rel.components().collect();
        for c in parts.iter().take(parts.len().saturating_sub(1)) {
            at.push(c);
            self.path(&at);
        }
    }

    /// [`Witnesses::under`] for the folder `top`, and everything in it: every entry `lstat`ed
    /// by the walk, never through a symlink below `top` (a tree id is made of the entries' own
    /// types, and a folder's listing changes its stat data). `top` itself is opened as its
    /// reader opens it (`follow_top`): a source skill's folder through a symlink (the tree id of
    /// a linked skill is that of what the link leads to: `tree::disk_tree_id`, `read_disk`), an
    /// installed copy's never (`tree::disk_tree_id_nofollow`). None when a folder cannot be
    /// read.
    pub fn tree(&mut self, anchor: &Path, top: &Path, follow_top: bool) -> Option<()> {
        self.under(anchor, top);
        let meta = if follow_top {
            std::fs::metadata(top)
        } else {
            std::fs::symlink_metadata(top)
        };
        if !meta.ok()?.is_dir() {
            return Some(());
        }
        let mut todo = vec![top.to_path_buf()];
        while let Some(dir) = todo.pop() {
            for e in std::fs::read_dir(&dir).ok()? {
                let e = e.ok()?;
                // Left out of every tree id, at any depth (`tree::read_disk`,
                // `tree::disk_tree_id`): git's bookkeeping in it changes nothing a sync says.
                if e.file_name() == ".git" {
                    continue;
                }
                let path = e.path();
                if e.file_type().ok()?.is_dir() {
                    todo.push(path.clone());
                }
                self.path(&path);
            }
        }
        Some(())
    }

    /// Where the config was looked for ([`crate::config::discover`]): with no `--config` and
    /// no `KASETTO_CONFIG`, `kasetto.yaml` in `cwd`, and when that is absent the user's
    /// pointer and global config.
    pub fn discovery(&mut self, cwd: &Path) {
        let here = cwd.join("kasetto.yaml");
        let found = std::fs::metadata(&here).is_ok_and(|m| m.is_file());
        self.path(&here);
        if !found && let Ok(home) = crate::dirs::config_home() {
            let kdir = home.join("kasetto");
            self.path(&kdir.join("config.yaml"));
            self.path(&kdir.join("kasetto.yaml"));
        }
    }
}

/// What a local source's reading looked at, relative to its folder: single paths, and
/// folders whose whole tree it read (a skill listed or checked against its locked tree id).
#[derive(Debug, Clone)]
pub struct Observed {
    pub root: PathBuf,
    pub rels: Vec<String>,
    pub trees: Vec<String>,
}

impl Observed {
    /// Into `w`: the source folder and every path asked about, with the folders on the way,
    /// and everything in each tree read. None when a tree cannot be walked.
    pub fn witness(&self, w: &mut Witnesses) -> Option<()> {
        w.path(&self.root);
        for rel in &self.rels {
            if !rel.is_empty() {
                w.under(&self.root, &self.root.join(rel));
            }
        }
        // A skill folder is read through a symlink at its top (a pick's `path:` or a `sub-dir`
        // may name one); the pack's root skill is the root itself (not `root/`, which `lstat`
        // would follow). Each once: a skill taken from the lock is noted by discovery and by
        // the selection.
        let mut trees: Vec<&String> = self.trees.iter().collect();
        trees.sort_unstable();
        trees.dedup();
        for rel in trees {
            let top = if rel.is_empty() {
                self.root.clone()
            } else {
                self.root.join(rel)
            };
            w.tree(&self.root, &top, true)?;
        }
        Some(())
    }
}

/// A pack view that notes every path it is asked about, for the memo's witnesses. A question
/// it cannot turn into paths (a listing of a whole tree, a tree taken from the lock) makes
/// what it saw unwitnessable.
pub struct Noting<'a> {
    inner: &'a dyn PackView,
    seen: Mutex<Vec<String>>,
    trees: Mutex<Vec<String>>,
}

impl<'a> Noting<'a> {
    pub fn new(inner: &'a dyn PackView) -> Noting<'a> {
        Noting {
            inner,
            seen: Mutex::new(Vec::new()),
            trees: Mutex::new(Vec::new()),
        }
    }

    fn note(&self, rel: &str) {
        self.seen.lock().expect("noting lock").push(rel.to_string());
    }

    fn note_tree(&self, rel: &str) {
        self.trees
            .lock()
            .expect("noting lock")
            .push(rel.to_string());
    }

    /// What was asked about, plus `also` (paths read around the view, e.g. by the fast path),
    /// under `root`.
    pub fn finish<'s>(self, root: &Path, also: impl IntoIterator<Item = &'s str>) -> Observed {
        let mut rels = self.seen.into_inner().expect("noting lock");
        rels.extend(also.into_iter().map(str::to_string));
        Observed {
            root: root.to_path_buf(),
            rels,
            trees: self.trees.into_inner().expect("noting lock"),
        }
    }
}

impl PackView for Noting<'_> {
    fn is_file(&self, rel: &str) -> bool {
        self.note(rel);
        self.inner.is_file(rel)
    }

    fn subdirs(&self, rel: &str) -> Vec<String> {
        self.note(rel);
        self.inner.subdirs(rel)
    }

    fn files(&self, rel: &str) -> Vec<String> {
        self.note(rel);
        self.inner.files(rel)
    }

    fn read_file(&self, rel: &str) -> Option<Vec<u8>> {
        self.note(rel);
        self.inner.read_file(rel)
    }

    fn list(
        &self,
        rel: &str,
        budget: &mut crate::tree::Budget,
    ) -> anyhow::Result<crate::tree::Tree> {
        self.note_tree(rel);
        self.inner.list(rel, budget)
    }

    /// What the view went by: the whole skill folder when it decided from the folder's tree id
    /// that it is the locked one ([`crate::discover::CachedDiskPack`]), else the `SKILL.md` it
    /// read. (A skill then picked is listed or taken from the lock, which notes its whole tree;
    /// one not picked is known by its folder's name and this `SKILL.md` alone.)
    fn skill_md(&self, skill: &str) -> SkillMd {
        let md = self.inner.skill_md(skill);
        if self.inner.taken_from_lock(skill).is_some() {
            self.note_tree(skill);
        } else {
            self.note(&crate::tree::join_rel(skill, "SKILL.md"));
        }
        md
    }

    fn taken_from_lock(&self, rel: &str) -> Option<git2::Oid> {
        self.note_tree(rel);
        self.inner.taken_from_lock(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(n: u64) -> StatData {
        StatData {
            size: n,
            mtime: (n as i64, 1),
            ctime: (n as i64, 2),
            ino: n + 7,
            dev: 3,
            mode: 0o100644,
        }
    }

    /// The memo's body for (path, what it was) pairs, a symlink's `stat` right after its
    /// `lstat`, one group per path (`render` groups by folder; the reader takes either).
    fn encode_pairs(witnessed: &[(PathBuf, Seen)], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < witnessed.len() {
            let (p, first) = &witnessed[i];
            let second = witnessed
                .get(i + 1)
                .filter(|(q, _)| q == p)
                .map(|(_, s)| *s);
            i += 1 + usize::from(second.is_some());
            let (dir, name) = split(p);
            write_group(out, dir, std::iter::once((name, (*first, second)))).unwrap();
        }
    }

    /// What `write_group` writes, `parse_groups` reads back, folder by folder; any cut of it is
    /// refused (a truncated memo is a full run, never a shorter list of witnesses).
    #[test]
    fn witnesses_round_trip_and_a_cut_memo_is_refused() {
        let witnessed = vec![
            (PathBuf::from("/p/a b/x.md"), Seen::L(stat(1))),
            (PathBuf::from("/p/a b/x.md"), Seen::S(stat(2))),
            (PathBuf::from("/p/gone"), Seen::NoL),
            (PathBuf::from("/p/a b/dangling"), Seen::NoS),
            (
                PathBuf::from(std::ffi::OsStr::from_bytes(b"/p/\xff\n")),
                Seen::L(stat(3)),
            ),
        ];
        let mut out = Vec::new();
        encode_pairs(&witnessed, &mut out);
        let groups = parse_groups(&out).expect("parses");
        let mut back: Vec<(PathBuf, Seen)> = groups
            .iter()
            .flat_map(|g| {
                g.entries.iter().map(|(name, seen)| {
                    let dir = Path::new(std::ffi::OsStr::from_bytes(g.dir));
                    (dir.join(std::ffi::OsStr::from_bytes(name)), *seen)
                })
            })
            .collect();
        let mut want = witnessed.clone();
        back.sort_by(|a, b| a.0.cmp(&b.0));
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(back.len(), want.len());
        for (b, w) in back.iter().zip(&want) {
            assert_eq!(b.0, w.0);
        }
        // Cut inside an entry, it does not parse; cut between folders, it would: the header's
        // body length (`check`) refuses that.
        for cut in 1..out.len() {
            let parsed = parse_groups(&out[..cut]);
            assert!(
                parsed.is_none() || parsed.as_ref().is_some_and(|g| g.len() < groups.len()),
                "a memo cut at {cut} bytes parsed as whole"
            );
        }
        // A tag kst never writes is refused.
        let mut bad = out.clone();
        let at = 4 + "/p".len() + 4;
        bad[at] = b'Z';
        assert!(parse_groups(&bad).is_none());
    }

    /// A whole memo parses; one cut anywhere, of another key, or with a byte changed in its
    /// header does not.
    #[test]
    fn only_a_whole_memo_of_the_key_parses() {
        let key = Key("00112233445566778899aabbccddeeff".into());
        let mut body = Vec::new();
        encode_pairs(
            &[
                (PathBuf::from("/p/a"), Seen::L(stat(1))),
                (PathBuf::from("/q/b"), Seen::L(stat(2))),
            ],
            &mut body,
        );
        let memo = [
            format!(
                "{MAGIC} {}\nscope project\nlock /p/kasetto.lock\nsummary 2 0 0 0 2 0\nbody {}\n",
                key.0,
                body.len()
            )
            .into_bytes(),
            body,
        ]
        .concat();
        let (hit, groups) = parse(&memo, &key).expect("a whole memo parses");
        assert_eq!(
            (hit.scope.as_str(), hit.lock.as_str()),
            ("project", "/p/kasetto.lock")
        );
        assert_eq!(groups.len(), 2);
        for cut in 0..memo.len() {
            assert!(parse(&memo[..cut], &key).is_none(), "cut at {cut} parsed");
        }
        assert!(parse(&memo, &Key("ffeeddccbbaa99887766554433221100".into())).is_none());
        let mut other = memo.clone();
        other[0] = b'X';
        assert!(parse(&other, &key).is_none());
    }

    /// A memo larger than `check` reads (`cap`, [`MAX_MEMO`]) is not rendered: every full run
    /// would otherwise write one (tens of MiB for ten thousand skills of a few dozen files)
    /// that no run ever reads. One byte under the cap it is.
    #[test]
    fn a_memo_over_the_readers_cap_is_not_rendered() {
        let tmp = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..50)
            .map(|i| {
                let p = tmp.path().join(format!("file-{i}"));
                std::fs::write(&p, "x").unwrap();
                p
            })
            .collect();
        let witnesses = || {
            let mut w = Witnesses::default();
            for f in &files {
                w.path(f);
            }
            w
        };
        let rec = Recording {
            key: Key("00112233445566778899aabbccddeeff".into()),
            stamp: (i64::MAX, 0),
        };
        let summary = Counts::default();
        let lock = Path::new("/p/kasetto.lock");
        let render = |cap| {
            let file = tempfile::NamedTempFile::new().unwrap();
            let mut out = std::io::BufWriter::new(file.as_file());
            rec.render(witnesses(), &summary, "project", lock, &mut out, cap)
                .unwrap()?;
            drop(out);
            Some(std::fs::read(file.path()).unwrap())
        };
        let whole = render(u64::MAX).expect("a settled memo is rendered");
        let len = whole.len() as u64;
        assert_eq!(render(len).as_deref(), Some(&whole[..]));
        assert!(
            render(len - 1).is_none(),
            "a memo over the cap was rendered"
        );
    }

    #[test]
    fn paths_escape_to_one_line_and_back() {
        for p in [&b"/a/b"[..], b"/a\\b\nc", b"/\xff\xfe/x", b""] {
            let e = escape(p);
            assert!(!e.contains('\n'));
            assert_eq!(unescape(&e).as_deref(), Some(p));
        }
        assert_eq!(unescape("\\q"), None);
        assert_eq!(unescape("\\x4"), None);
    }

    #[test]
    fn summaries_round_trip() {
        let mut s = Counts {
            unchanged: 700,
            ..Counts::default()
        };
        s.kinds.insert(Kind::Command, 500);
        s.kinds.insert(Kind::Instruction, 200);
        assert_eq!(parse_summary(&summary_line(&s)), Some(s));
        assert!(parse_summary("700 0 0 0 500").is_none());
        assert!(parse_summary("700 0 0 0 500 200 1").is_none());
    }
}
