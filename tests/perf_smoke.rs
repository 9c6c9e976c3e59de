//! The performance work, checked for correctness (never for speed: SPEC 14 keeps timings out of
//! the test suite). A no-op sync must not read installed files (the stat cache), must still see
//! every change — including one made in the same instant as the cache entry (git's racy rule) —
//! and the benchmark harness must run.
//!
//! "Reads no file" is proven by the kernel: an inotify watch on every installed folder reports
//! each file kst opens.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kasetto::statcache::StatData;
use serde_json::Value as Json;

use crate::support::*;

#[allow(dead_code)] // `main` and the flag parser are for `cargo bench`
#[path = "../benches/harness.rs"]
pub(crate) mod harness;

const SKILLS: &str = ".claude/skills";

/// A local pack with skills `alpha` (nested files and an executable) and `beta`, installed into
/// the project's `.claude/skills`, then synced once more so the stat cache knows every file.
fn installed(env: &TestEnv) {
    let pack = env.project_path("pack/skills");
    for name in ["alpha", "beta"] {
        write_file(
            pack.join(name).join("SKILL.md"),
            skill_md(name, &format!("The {name} skill")),
        );
        write_file(
            pack.join(name).join("reference/guide.md"),
            "# guide\nline\n",
        );
        write_file(pack.join(name).join("reference/deep/notes.md"), "notes\n");
    }
    write_executable(pack.join("alpha/scripts/run.sh"), "#!/bin/sh\necho alpha\n");
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\n",
    );
    sync(env, "install");
    settle(env);
    sync(env, "warm the stat cache");
}

/// Wait until the file system's clock has moved past the last change of every file under the
/// test's folders, by kst's own racy rule ([`StatData::settled`]), so nothing written so far is
/// racy for the next sync. A condition checked on a probe file's timestamp, not a guess at the
/// timestamp tick: a few milliseconds on ext4 or tmpfs, two seconds on a whole-second file
/// system. Only the kernel-set ctime is waited for, so a file whose mtime a test put in the
/// future stays racy, as intended.
pub(crate) fn settle(env: &TestEnv) {
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
    newest_ctime(env.root(), &mut newest);
    let last = StatData {
        size: 0,
        mtime: newest,
        ctime: newest,
        ino: 0,
        dev: 0,
        mode: 0,
    };
    let probe = env.path("settle-probe");
    loop {
        // A new file: its mtime is the file system's "now", as kst's own clock probe reads it.
        let _ = fs::remove_file(&probe);
        fs::write(&probe, b"now").unwrap();
        let m = fs::metadata(&probe).unwrap();
        if last.settled((m.mtime(), m.mtime_nsec())) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `kst sync --json`, which must succeed; the document.
fn sync(env: &TestEnv, what: &str) -> Json {
    let out = env.kst().args(["sync", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: kst sync failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// skill name → action, from a sync document.
fn actions(doc: &Json) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn all_unchanged() -> Vec<(String, String)> {
    vec![
        ("alpha".into(), "unchanged".into()),
        ("beta".into(), "unchanged".into()),
    ]
}

/// An inotify watch on every folder under a root, reporting the files opened below it.
pub(crate) struct OpenWatch {
    fd: i32,
    dirs: std::collections::HashMap<i32, PathBuf>,
}

impl OpenWatch {
    pub(crate) fn new(root: &Path) -> OpenWatch {
        // SAFETY: plain system calls on a descriptor we own.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let mut w = OpenWatch {
            fd,
            dirs: Default::default(),
        };
        w.add(root);
        w
    }

    fn add(&mut self, dir: &Path) {
        let c = CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path and our own inotify descriptor.
        let wd = unsafe {
            libc::inotify_add_watch(self.fd, c.as_ptr(), libc::IN_OPEN | libc::IN_ACCESS)
        };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        self.dirs.insert(wd, dir.to_path_buf());
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                self.add(&e.path());
            }
        }
    }

    /// Files (not folders: listing a folder opens it) opened or read since the last call.
    pub(crate) fn opened(&self) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a buffer we own, of the length we pass.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let mut at = 0;
            while at < n as usize {
                let field =
                    |i: usize| u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap());
                let (wd, mask, len) = (field(0) as i32, field(4), field(12) as usize);
                let name = &buf[at + 16..at + 16 + len];
                let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(len)];
                if mask & libc::IN_ISDIR == 0 && !name.is_empty() {
                    let n = std::ffi::OsStr::from_bytes(name);
                    out.insert(self.dirs[&wd].join(n));
                }
                at += 16 + len;
            }
        }
        out
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor we opened.
        unsafe { libc::close(self.fd) };
    }
}

pub(crate) fn set_mtime(path: &Path, t: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn noop_sync_reads_no_installed_file() {
    let env = TestEnv::new();
    installed(&env);
    let watch = OpenWatch::new(&env.project_path(SKILLS));
    let doc = sync(&env, "no-op");
    assert_eq!(actions(&doc), all_unchanged());
    assert_eq!(watch.opened(), BTreeSet::new(), "a no-op sync opened files");

    // The watch does see reads: verify proves bytes, so it reads every file.
    env.kst().arg("verify").assert().success();
    assert!(
        watch
            .opened()
            .contains(&env.project_path(SKILLS).join("alpha/SKILL.md")),
        "the watch saw nothing (is inotify working?)"
    );
}

#[test]
fn a_file_whose_stat_data_changed_is_read_again_and_only_it() {
    let env = TestEnv::new();
    installed(&env);
    let touched = env.project_path(SKILLS).join("beta/reference/guide.md");
    set_mtime(&touched, SystemTime::now() - Duration::from_secs(60));
    settle(&env);
    let watch = OpenWatch::new(&env.project_path(SKILLS));
    assert_eq!(actions(&sync(&env, "after touch")), all_unchanged());
    assert_eq!(watch.opened(), BTreeSet::from([touched]));
    // Hashed once, recorded again: the next sync reads nothing.
    assert_eq!(actions(&sync(&env, "again")), all_unchanged());
    assert_eq!(watch.opened(), BTreeSet::new());
}

#[test]
fn a_racy_file_is_read_on_every_sync() {
    // A file whose mtime is not older than the moment kst would record it (here: in the
    // future) may still change without its stat data moving, so it is never trusted.
    let env = TestEnv::new();
    installed(&env);
    let racy = env.project_path(SKILLS).join("alpha/SKILL.md");
    set_mtime(&racy, SystemTime::now() + Duration::from_secs(3600));
    settle(&env);
    let watch = OpenWatch::new(&env.project_path(SKILLS));
    for round in 0..3 {
        assert_eq!(actions(&sync(&env, "racy")), all_unchanged());
        assert_eq!(
            watch.opened(),
            BTreeSet::from([racy.clone()]),
            "round {round}"
        );
    }
}

#[test]
fn a_same_size_edit_in_the_same_instant_is_repaired() {
    // The stat cache was just written; the edit keeps the size and even the mtime, as an edit
    // within one timestamp tick would. It must still be seen.
    let env = TestEnv::new();
    installed(&env);
    let file = env.project_path(SKILLS).join("alpha/reference/guide.md");
    let before = fs::read(&file).unwrap();
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    let mut edited = before.clone();
    edited[0] = b'X';
    fs::write(&file, &edited).unwrap();
    set_mtime(&file, mtime);
    let doc = sync(&env, "after the edit");
    assert_eq!(
        actions(&doc),
        vec![
            ("alpha".into(), "repaired".into()),
            ("beta".into(), "unchanged".into())
        ]
    );
    assert_eq!(fs::read(&file).unwrap(), before, "the edit was undone");

    // And an edit that moves the mtime, immediately after a sync.
    fs::write(&file, &edited).unwrap();
    let doc = sync(&env, "after the second edit");
    assert_eq!(actions(&doc)[0], ("alpha".into(), "repaired".into()));
    assert_eq!(fs::read(&file).unwrap(), before);
}

#[test]
fn added_and_removed_files_are_repairs_even_when_cached() {
    let env = TestEnv::new();
    installed(&env);
    let skill = env.project_path(SKILLS).join("beta");
    write_file(skill.join("extra.md"), "not from the pack\n");
    assert_eq!(actions(&sync(&env, "extra file"))[1].1, "repaired");
    assert!(!skill.join("extra.md").exists());
    fs::remove_file(skill.join("reference/deep/notes.md")).unwrap();
    assert_eq!(actions(&sync(&env, "missing file"))[1].1, "repaired");
    assert!(skill.join("reference/deep/notes.md").is_file());
}

#[test]
fn the_stat_cache_is_machine_local_and_never_in_the_lock() {
    let env = TestEnv::new();
    installed(&env);
    let lock = fs::read(env.project_path("kasetto.lock")).unwrap();
    let stat_files: Vec<_> = fs::read_dir(env.cache().join("stat"))
        .expect("the stat cache lives under the cache root")
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(!stat_files.is_empty());
    // Without it, a sync is still right (it hashes everything) and rebuilds it.
    fs::remove_dir_all(env.cache().join("stat")).unwrap();
    assert_eq!(actions(&sync(&env, "no stat cache")), all_unchanged());
    assert_eq!(fs::read(env.project_path("kasetto.lock")).unwrap(), lock);
    assert!(env.cache().join("stat").is_dir());
    // A damaged one is ignored.
    for f in fs::read_dir(env.cache().join("stat")).unwrap() {
        fs::write(f.unwrap().path(), b"garbage").unwrap();
    }
    assert_eq!(actions(&sync(&env, "damaged stat cache")), all_unchanged());
    assert_eq!(fs::read(env.project_path("kasetto.lock")).unwrap(), lock);
}

#[test]
fn the_benchmark_harness_runs_and_prints_the_table() {
    let args = harness::Args {
        repos: 2,
        skills: 3,
        files: 4,
        large: 1,
        large_kib: 16,
        runs: 1,
        cold_runs: 1,
        // One file system and a ×2 scale step keep it small; the shapes are all there.
        disks: vec![harness::Disk::Shm],
        scale: 2,
        commands: 5,
        instructions: 3,
        ..harness::Args::default()
    };
    let table = harness::run(&args).unwrap_or_else(|e| panic!("harness: {e:#}"));
    for row in [
        "cold sync, 2 repos, git://",
        "cold sync, 2 repos, http://",
        "git clone --depth 1, one after another",
        "git clone --depth 1, all at once",
        "spread ×1, shm: warm no-op sync, 6 skills / 24 files",
        "monorepo ×1, shm: warm no-op sync, 6 skills / 24 files",
        "local ×1, shm: warm no-op sync, 6 skills / 24 files",
        "monorepo ×2, shm: warm no-op sync, 12 skills / 48 files",
        "local ×2, shm: offline re-sync into empty folders, 48 files",
        "git status --porcelain",
        "spread ×1, shm: offline re-sync into empty folders, 24 files",
        "cp -r",
        "scale: monorepo no-op, 2× the skills",
        "scale: local offline re-sync, 2× the skills",
        "files, shm: warm no-op sync, 5 commands + 3 instructions into 3 agents",
        "peak RSS, any kst run above",
        "peak RSS, the scale step's runs",
    ] {
        assert!(table.contains(row), "no {row:?} in:\n{table}");
    }
}

#[test]
fn https_fetches_verify_certificates_with_the_bundle_read_at_the_first_connection() {
    // libgit2 starts with an empty CA bundle (git/setup.rs) and gets the real one just before
    // the first connection: an untrusted server is still refused, a trusted one accepted.
    let env = TestEnv::new();
    let server = crate::remote_config::tls_server(&env.path("tls"));
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: https://localhost:{}/pack.git\n    skills: \"*\"\n",
            server.port
        ),
    );
    let untrusted = env.kst().arg("sync").output().unwrap();
    let err = String::from_utf8_lossy(&untrusted.stderr).to_lowercase();
    assert!(!untrusted.status.success());
    assert!(
        err.contains("certificate"),
        "not refused for its certificate: {err}"
    );

    // Trusted through SSL_CERT_FILE: the TLS handshake succeeds, and the (static) server then
    // fails as a git server, which is not a certificate error.
    let trusted = env
        .kst()
        .arg("sync")
        .env("SSL_CERT_FILE", &server.ca)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&trusted.stderr).to_lowercase();
    assert!(!trusted.status.success());
    assert!(
        !err.contains("certificate"),
        "the trusted CA was not used: {err}"
    );
    assert!(err.contains("localhost"), "{err}");
}
