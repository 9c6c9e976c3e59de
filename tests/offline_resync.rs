//! The offline re-sync (SPEC 14: a lock and a warm cache in place, the skills folder deleted,
//! `kst sync --offline` against `cp -r`): what it reads and writes, proved structurally (kst's
//! own read counter, the installed bytes), never by timing; and that each of its shortcuts
//! falls back to the full path when its premise breaks.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::linear_cost::{local_installed, sync_counted};
use crate::perf_smoke::set_mtime;
use crate::support::*;

const SKILLS: &str = ".claude/skills";

/// Every file under `dir` (relative path → bytes), sorted.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn go(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().unwrap().is_dir() {
                go(&e.path(), &rel, out);
            } else {
                out.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    go(dir, "", &mut out);
    out.sort();
    out
}

#[test]
fn a_local_reinstall_reads_each_source_file_only_to_copy_it() {
    // Before: a local skill taken from the lock was listed for its install by hashing every
    // file (one read), then copied (a second read), although the stat cache knew every id.
    let n = 6;
    let env = TestEnv::new();
    local_installed(&env, n);
    std::fs::remove_dir_all(env.project_path(SKILLS)).unwrap();
    let (_, reads) = sync_counted(&env, &["--offline"]);
    assert_eq!(reads, 0, "source files read to hash them on a re-install");
    for i in 0..n {
        let name = format!("skill-{i:03}");
        assert_eq!(
            files_under(&env.project_path(format!("{SKILLS}/{name}"))),
            files_under(&env.project_path(format!("pack/skills/{name}"))),
            "{name} installed differently from its source"
        );
    }
    let v = env.kst().arg("verify").output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn a_local_file_edited_after_resolution_is_never_installed_under_the_old_tree() {
    // The premise of listing a skill taken from the lock through the stat cache: a file whose
    // `lstat` data are the recorded ones still holds the recorded contents. Break it between
    // resolution (which took the skill from the lock) and the listing for its install: a
    // same-size edit with the mtime put back, so only the ctime tells. The file must be hashed
    // again, and the skill refused (it changed while kst was reading it), never installed with
    // the new bytes under the old tree id.
    let env = TestEnv::new();
    local_installed(&env, 2);
    std::fs::remove_dir_all(env.project_path(SKILLS)).unwrap();
    let lock_before = std::fs::read(env.project_path("kasetto.lock")).unwrap();
    let guide = env.project_path("pack/skills/skill-001/reference/guide.md");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kst"));
    child
        .env_clear()
        .envs(env.hermetic_vars())
        .env("KASETTO_FAILPOINT_HOLD", "skills-resolved")
        .current_dir(env.project())
        .args(["sync", "--offline"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = child.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        let got = err.read_line(&mut line).unwrap();
        said.push_str(&line);
        if line.contains("fail point skills-resolved reached") {
            break;
        }
        assert!(got > 0, "the sync ended before its hold:\n{said}");
    }
    let mtime = std::fs::metadata(&guide).unwrap().modified().unwrap();
    std::fs::write(&guide, "# GUIDE\nLINE\n").unwrap();
    set_mtime(&guide, mtime);
    drop(child.stdin.take());
    err.read_to_string(&mut said).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the sync succeeded:\n{said}");
    assert!(
        said.contains("skill-001") && said.contains("changed while kst was reading it"),
        "{said}"
    );
    assert!(
        !env.project_path(format!("{SKILLS}/skill-001")).exists(),
        "a skill that changed while it was read was installed"
    );
    // The other skill is installed, and the lock still records the tree that was compared.
    assert!(
        env.project_path(format!("{SKILLS}/skill-000/SKILL.md"))
            .is_file()
    );
    assert_eq!(
        std::fs::read(env.project_path("kasetto.lock")).unwrap(),
        lock_before
    );
}
