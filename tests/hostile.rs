//! Hostile pack content (SPEC 13): trees written with raw object writes, because git's own tree
//! builder refuses them. Each must break only its skill, write nothing outside the destination,
//! and name the skill and the entry.

use crate::support::*;

/// A pack with a good skill and a hostile one whose tree `build` writes.
fn pack_with(env: &TestEnv, build: impl FnOnce(&FixtureRepo) -> git2::Oid) -> FixtureRepo {
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let md = repo.write_blob(skill_md("good", "fine").as_bytes());
    let good = repo.write_raw_tree(&[("SKILL.md", MODE_BLOB, md)]);
    let bad = build(&repo);
    let skills = repo.write_raw_tree(&[("bad", MODE_TREE, bad), ("good", MODE_TREE, good)]);
    let root = repo.write_raw_tree(&[("skills", MODE_TREE, skills)]);
    repo.commit_tree("main", root);
    repo
}

fn run(env: &TestEnv, repo: &FixtureRepo) -> String {
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
            repo.file_url()
        ),
    );
    let a = env.kst().arg("sync").assert().code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        env.project_path(".claude/skills/good/SKILL.md").is_file(),
        "the good skill was not installed: {err}"
    );
    assert!(
        !env.project_path(".claude/skills/bad").exists(),
        "the hostile skill was installed: {err}"
    );
    assert!(err.contains("! bad"), "not reported broken: {err}");
    // Nothing but the good skill and our lock anywhere in the project.
    let snap = read_tree_snapshot(env.project());
    for path in snap.keys() {
        assert!(
            path == "."
                || path == "kasetto.yaml"
                || path == "kasetto.lock"
                || path.starts_with(".claude"),
            "unexpected path written: {path}"
        );
    }
    err
}

fn with_entry(name: &[u8], mode: u32, content: &[u8]) -> impl FnOnce(&FixtureRepo) -> git2::Oid {
    let name = name.to_vec();
    let content = content.to_vec();
    move |repo| {
        let md = repo.write_blob(skill_md("bad", "hostile").as_bytes());
        let blob = repo.write_blob(&content);
        repo.write_raw_tree(&[
            (name.as_slice(), mode, blob),
            (b"SKILL.md".as_slice(), MODE_BLOB, md),
        ])
    }
}

#[test]
fn dot_dot_entry_is_refused() {
    let env = TestEnv::new();
    let repo = pack_with(&env, with_entry(b"..", MODE_BLOB, b"x"));
    let err = run(&env, &repo);
    assert!(err.contains("\"..\""), "{err}");
}

#[test]
fn git_folder_aliases_are_refused() {
    for name in [&b".git"[..], b".GIT", b"git~1", b".git::$INDEX_ALLOCATION"] {
        let env = TestEnv::new();
        let repo = pack_with(&env, with_entry(name, MODE_BLOB, b"[core]\n"));
        let err = run(&env, &repo);
        assert!(err.contains("unsafe entry name"), "{name:?}: {err}");
    }
}

#[test]
fn separators_and_reserved_names_are_refused() {
    // Each refused by the name gate with its own reason, not later by an accident of writing.
    for (name, why) in [
        (&b"a/b"[..], "contains a path separator"),
        (b"a\\b", "contains a path separator"),
        (b"CON", "reserved device name"),
        (b"aux.md", "reserved device name"),
    ] {
        let env = TestEnv::new();
        let repo = pack_with(&env, with_entry(name, MODE_BLOB, b"x"));
        let err = run(&env, &repo);
        assert!(
            err.contains("unsafe entry name") && err.contains(why),
            "{name:?}: {err}"
        );
    }
}

#[test]
fn characters_windows_forbids_are_refused() {
    for name in [&b"a<b"[..], b"a>b", b"a\"b", b"a|b", b"a?b", b"a*b"] {
        let env = TestEnv::new();
        let repo = pack_with(&env, with_entry(name, MODE_BLOB, b"x"));
        let err = run(&env, &repo);
        assert!(
            err.contains("unsafe entry name")
                && err.contains("contains a character Windows forbids"),
            "{name:?}: {err}"
        );
    }
}

#[test]
fn absolute_symlink_is_refused_and_target_not_copied() {
    let env = TestEnv::new();
    let repo = pack_with(&env, with_entry(b"passwd", MODE_LINK, b"/etc/passwd"));
    let err = run(&env, &repo);
    assert!(
        err.contains("symlink passwd") && err.contains("absolute"),
        "{err}"
    );
    assert!(find_bytes_in_tree(env.project(), b"root:").is_empty());
}

#[test]
fn escaping_symlink_is_refused() {
    let env = TestEnv::new();
    let repo = pack_with(&env, with_entry(b"up", MODE_LINK, b"../../.."));
    let err = run(&env, &repo);
    assert!(err.contains("outside the skill"), "{err}");
}

#[test]
fn case_fold_collision_aborts_the_skill() {
    let env = TestEnv::new();
    let repo = pack_with(&env, |repo| {
        let md = repo.write_blob(skill_md("bad", "hostile").as_bytes());
        let a = repo.write_blob(b"upper");
        let b = repo.write_blob(b"lower");
        repo.write_raw_tree(&[
            ("README.md", MODE_BLOB, a),
            ("SKILL.md", MODE_BLOB, md),
            ("readme.md", MODE_BLOB, b),
        ])
    });
    let err = run(&env, &repo);
    assert!(err.contains("differ only in case"), "{err}");
}

#[test]
fn blob_over_the_cap_is_refused_before_install() {
    let env = TestEnv::new();
    let repo = pack_with(&env, with_entry(b"big.bin", MODE_BLOB, &vec![7u8; 4096]));
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
            repo.file_url()
        ),
    );
    let a = env
        .kst()
        .arg("sync")
        .env("KASETTO_MAX_FILE_BYTES", "1024")
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("big.bin") && err.contains("KASETTO_MAX_FILE_BYTES"),
        "{err}"
    );
    assert!(env.project_path(".claude/skills/good").is_dir());
    assert!(!env.project_path(".claude/skills/bad").exists());
}

#[test]
fn skill_over_the_byte_cap_is_refused_before_install() {
    // Each file is under the file cap; together they are over the skill cap.
    let env = TestEnv::new();
    let repo = pack_with(&env, |repo| {
        let md = repo.write_blob(skill_md("bad", "hostile").as_bytes());
        let a = repo.write_blob(&[1u8; 3000]);
        let b = repo.write_blob(&[2u8; 3000]);
        repo.write_raw_tree(&[
            ("SKILL.md", MODE_BLOB, md),
            ("a.bin", MODE_BLOB, a),
            ("b.bin", MODE_BLOB, b),
        ])
    });
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
            repo.file_url()
        ),
    );
    let a = env
        .kst()
        .arg("sync")
        .env("KASETTO_MAX_FILE_BYTES", "4000")
        .env("KASETTO_MAX_SKILL_BYTES", "5000")
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("! bad")
            && err.contains("more than 5000 bytes in total")
            && err.contains("KASETTO_MAX_SKILL_BYTES"),
        "{err}"
    );
    assert!(env.project_path(".claude/skills/good").is_dir());
    assert!(!env.project_path(".claude/skills/bad").exists());
}

/// The cache's pack files (`objects/pack/*.pack`) under `dir`.
fn packs_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            packs_under(&p, out);
        } else if p.extension().is_some_and(|x| x == "pack") {
            out.push(p);
        }
    }
}

/// Overwrite the start of `id`'s deflated body in whichever pack holds it, leaving its entry
/// header (type and size) intact: reading the header still works, inflating fails. Returns
/// the pack.
fn damage_packed_body(cache: &std::path::Path, id: git2::Oid) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let mut packs = Vec::new();
    packs_under(cache, &mut packs);
    for pack in packs {
        // Pack index v2: magic, version, 256 fan-out counts, ids, CRCs, 4-byte offsets.
        let idx = std::fs::read(pack.with_extension("idx")).unwrap();
        assert_eq!(&idx[..8], b"\xfftOc\0\0\0\x02", "{pack:?}: not an index v2");
        let be = |at: usize| u32::from_be_bytes(idx[at..at + 4].try_into().unwrap()) as usize;
        let n = be(8 + 255 * 4);
        let ids = 8 + 256 * 4;
        let Some(i) = (0..n).find(|i| &idx[ids + i * 20..ids + i * 20 + 20] == id.as_bytes())
        else {
            continue;
        };
        let offset = be(ids + n * 20 + n * 4 + i * 4);
        assert!(
            offset < 1 << 31,
            "large offsets are not used in a test pack"
        );
        let mut bytes = std::fs::read(&pack).unwrap();
        let mut body = offset;
        while bytes[body] & 0x80 != 0 {
            body += 1;
        }
        body += 1;
        // Past the two-byte zlib header: an invalid deflate block type from here on.
        for b in &mut bytes[body + 2..body + 34] {
            *b = 0xff;
        }
        std::fs::set_permissions(&pack, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&pack, &bytes).unwrap();
        return pack;
    }
    panic!("{id} is in no pack under {cache:?}");
}

#[test]
fn blob_size_comes_from_the_object_header_without_inflating() {
    // The blob's body in the cache is damaged and its header is not: a size learnt from the
    // header gives the cap error; inflating the blob to learn its size would fail (or send kst
    // to re-fetch a "damaged" cache) instead.
    let env = TestEnv::new();
    let big: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let big_id = git2::Oid::hash_object(git2::ObjectType::Blob, &big).unwrap();
    let repo = pack_with(&env, with_entry(b"big.bin", MODE_BLOB, &big));
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
            repo.file_url()
        ),
    );
    // Fetch into the cache (and pin the commit) without installing anything.
    env.kst().arg("lock").assert().success();
    let pack = damage_packed_body(&env.cache(), big_id);
    let damaged = std::fs::read(&pack).unwrap();
    let a = env
        .kst()
        .arg("sync")
        .env("KASETTO_MAX_FILE_BYTES", "1024")
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("big.bin is 65536 bytes, over the 1024 byte file cap"),
        "{err}"
    );
    assert!(env.project_path(".claude/skills/good").is_dir());
    assert!(!env.project_path(".claude/skills/bad").exists());
    // The cache was read as it is: not moved aside, not fetched again.
    assert_eq!(
        std::fs::read(&pack).unwrap(),
        damaged,
        "the pack was replaced"
    );
    let mut aside = Vec::new();
    for e in std::fs::read_dir(env.cache().join("git/db"))
        .unwrap()
        .flatten()
    {
        if e.file_name().to_string_lossy().contains(".corrupt-") {
            aside.push(e.path());
        }
    }
    assert!(aside.is_empty(), "cache moved aside: {aside:?}");
}

#[test]
fn gitlink_is_skipped_with_a_warning() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let md = repo.write_blob(skill_md("sub", "has a submodule").as_bytes());
    let commit = git2::Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
    let skill = repo.write_raw_tree(&[
        ("SKILL.md", MODE_BLOB, md),
        ("vendor", MODE_GITLINK, commit),
    ]);
    let skills = repo.write_raw_tree(&[("sub", MODE_TREE, skill)]);
    let root = repo.write_raw_tree(&[("skills", MODE_TREE, skills)]);
    repo.commit_tree("main", root);
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
            repo.file_url()
        ),
    );
    let a = env.kst().arg("sync").assert().success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("submodule"), "{err}");
    assert!(env.project_path(".claude/skills/sub/SKILL.md").is_file());
    assert!(!env.project_path(".claude/skills/sub/vendor").exists());
    // The installed folder verifies: kst knows it installs the tree without the gitlink.
    env.kst().arg("verify").assert().success();
    // The next sync takes the skill from the lock (the git tree, with the gitlink) and must
    // still see that the folder is what it installs: nothing is repaired.
    let again = env.kst().args(["sync", "--json"]).assert().success();
    let doc: serde_json::Value = serde_json::from_slice(&again.get_output().stdout).unwrap();
    for item in doc["items"].as_array().unwrap() {
        assert_eq!(item["action"], "unchanged", "{item}");
    }
    assert_eq!(doc["lock_changed"], false, "{doc}");
}

#[test]
fn nfc_nfd_pair_aborts_the_skill() {
    let env = TestEnv::new();
    let repo = pack_with(&env, |repo| {
        let md = repo.write_blob(skill_md("bad", "hostile").as_bytes());
        let a = repo.write_blob(b"composed");
        let b = repo.write_blob(b"decomposed");
        // "é" precomposed (NFC) and "e" + combining acute (NFD): one name on macOS.
        repo.write_raw_tree(&[
            ("SKILL.md", MODE_BLOB, md),
            ("caf\u{e9}.md", MODE_BLOB, a),
            ("cafe\u{301}.md", MODE_BLOB, b),
        ])
    });
    let err = run(&env, &repo);
    assert!(err.contains("normalisation"), "{err}");
}

#[test]
fn symlink_and_folder_of_the_same_name_abort_the_skill() {
    // `sub → ../../..` and a folder `sub/x`: writing `sub/x` would go through the link.
    let env = TestEnv::new();
    let repo = pack_with(&env, |repo| {
        let md = repo.write_blob(skill_md("bad", "hostile").as_bytes());
        let link = repo.write_blob(b"../../..");
        let x = repo.write_blob(b"pwned");
        let sub = repo.write_raw_tree(&[("x", MODE_BLOB, x)]);
        repo.write_raw_tree(&[
            ("SKILL.md", MODE_BLOB, md),
            ("sub", MODE_LINK, link),
            ("sub", MODE_TREE, sub),
        ])
    });
    run(&env, &repo);
    assert!(!env.root().join("x").exists() && !env.path("project/x").exists());
}

#[test]
fn symlink_inside_the_skill_and_folder_of_the_same_name_abort_the_skill() {
    // `sub → real` stays inside the skill, so only the collision rule refuses it: writing
    // `sub/x` and then the link `sub` cannot both happen.
    let env = TestEnv::new();
    let repo = pack_with(&env, |repo| {
        let md = repo.write_blob(skill_md("bad", "hostile").as_bytes());
        let link = repo.write_blob(b"real");
        let x = repo.write_blob(b"x");
        let sub = repo.write_raw_tree(&[("x", MODE_BLOB, x)]);
        let real = repo.write_raw_tree(&[("y", MODE_BLOB, x)]);
        repo.write_raw_tree(&[
            ("SKILL.md", MODE_BLOB, md),
            ("real", MODE_TREE, real),
            ("sub", MODE_LINK, link),
            ("sub", MODE_TREE, sub),
        ])
    });
    let err = run(&env, &repo);
    assert!(err.contains("sub appears twice"), "{err}");
}

#[test]
fn link_to_dot_git_plus_case_variant_folder_aborts_the_skill() {
    // `a → .git` is relative and inside the skill, but `A/hooks/x` would reach it on macOS.
    let env = TestEnv::new();
    let repo = pack_with(&env, |repo| {
        let md = repo.write_blob(skill_md("bad", "hostile").as_bytes());
        let link = repo.write_blob(b".git");
        let x = repo.write_blob(b"#!/bin/sh\necho pwned\n");
        let hooks = repo.write_raw_tree(&[("x", MODE_EXEC, x)]);
        let a = repo.write_raw_tree(&[("hooks", MODE_TREE, hooks)]);
        repo.write_raw_tree(&[
            ("A", MODE_TREE, a),
            ("SKILL.md", MODE_BLOB, md),
            ("a", MODE_LINK, link),
        ])
    });
    let err = run(&env, &repo);
    assert!(err.contains("differ only in case"), "{err}");
}

#[test]
fn too_many_files_is_refused_before_anything_is_written() {
    let env = TestEnv::new();
    let repo = pack_with(&env, |repo| {
        let md = repo.write_blob(skill_md("bad", "hostile").as_bytes());
        let blob = repo.write_blob(b"x");
        let names: Vec<String> = (0..100_000).map(|i| format!("f{i:06}")).collect();
        let mut entries: Vec<(&str, u32, git2::Oid)> = names
            .iter()
            .map(|n| (n.as_str(), MODE_BLOB, blob))
            .collect();
        entries.push(("SKILL.md", MODE_BLOB, md));
        entries.sort_by(|a, b| a.0.cmp(b.0));
        repo.write_raw_tree(&entries)
    });
    let err = run(&env, &repo);
    assert!(err.contains("more than 50000 files"), "{err}");
}

#[test]
fn hostile_gitmodules_is_just_a_file() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let md = repo.write_blob(skill_md("sub", "submodule").as_bytes());
    let gm = repo.write_blob(
        b"[submodule \"x\"]\n\tpath = vendor\n\turl = ext::sh -c touch% /tmp/kst-pwned\n",
    );
    let commit = git2::Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
    let skill = repo.write_raw_tree(&[
        (".gitmodules", MODE_BLOB, gm),
        ("SKILL.md", MODE_BLOB, md),
        ("vendor", MODE_GITLINK, commit),
    ]);
    let skills = repo.write_raw_tree(&[("sub", MODE_TREE, skill)]);
    let root = repo.write_raw_tree(&[("skills", MODE_TREE, skills)]);
    repo.commit_tree("main", root);
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
            repo.file_url()
        ),
    );
    env.kst().arg("sync").assert().success();
    assert!(env.project_path(".claude/skills/sub/.gitmodules").is_file());
    assert!(!env.project_path(".claude/skills/sub/vendor").exists());
    assert!(!std::path::Path::new("/tmp/kst-pwned").exists());
}

#[test]
fn entries_named_like_our_own_files_are_ordinary_files() {
    let env = TestEnv::new();
    let mut repo = FixtureRepo::init(env.remotes().join("pack.git"));
    let md = repo.write_blob(skill_md("odd", "odd names").as_bytes());
    let x = repo.write_blob(b"not ours");
    let skill = repo.write_raw_tree(&[
        (".kst-stage-odd-1-0", MODE_BLOB, x),
        ("SKILL.md", MODE_BLOB, md),
        ("kasetto.lock", MODE_BLOB, x),
        ("kasetto.yaml", MODE_BLOB, x),
    ]);
    let skills = repo.write_raw_tree(&[("odd", MODE_TREE, skill)]);
    let root = repo.write_raw_tree(&[("skills", MODE_TREE, skills)]);
    repo.commit_tree("main", root);
    write_file(
        env.project_path("kasetto.yaml"),
        format!(
            "agent: claude-code\nscope: project\nskills:\n  - source: {}\n    skills: \"*\"\n",
            repo.file_url()
        ),
    );
    env.kst().arg("sync").assert().success();
    env.kst().arg("sync").assert().success();
    for f in [".kst-stage-odd-1-0", "kasetto.lock", "kasetto.yaml"] {
        assert_eq!(
            std::fs::read(env.project_path(format!(".claude/skills/odd/{f}"))).unwrap(),
            b"not ours"
        );
    }
    // Our own lock is untouched by the skill's file of the same name.
    assert!(
        std::fs::read_to_string(env.project_path("kasetto.lock"))
            .unwrap()
            .starts_with("# Generated by kst")
    );
    env.kst().arg("verify").assert().success();
}

#[test]
fn symlinked_skills_folder_in_a_project_is_never_written_through() {
    let env = TestEnv::new();
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(env.project_path(".claude")).unwrap();
    symlink(&outside, env.project_path(".claude/skills"));
    write_file(
        env.project_path("pack/skills/pdf/SKILL.md"),
        skill_md("pdf", "PDF"),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\n",
    );
    let a = env.kst().arg("sync").assert().code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("is a symlink"), "{err}");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through the symlink"
    );
}

#[test]
fn planted_work_folder_link_is_never_written_through() {
    // A cloned project ships `.claude/.kst-work-skills` (where kst stages skills) as a symlink
    // to a folder of the user's: kst removes the link itself and writes nothing through it.
    let env = TestEnv::new();
    let outside = env.path("outside");
    write_file(outside.join("keep.txt"), "mine\n");
    std::fs::create_dir_all(env.project_path(".claude/skills")).unwrap();
    symlink(&outside, env.project_path(".claude/.kst-work-skills"));
    write_file(
        env.project_path("pack/skills/pdf/SKILL.md"),
        skill_md("pdf", "PDF"),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: \"*\"\n",
    );
    let before = read_tree_snapshot(&outside);
    env.kst().arg("sync").assert().success();
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
    assert_snapshots_eq(&before, &read_tree_snapshot(&outside));
    assert!(
        std::fs::symlink_metadata(env.project_path(".claude/.kst-work-skills")).is_err(),
        "the planted link is still there"
    );
}

#[test]
fn symlink_leaving_the_skill_but_not_the_repository_is_refused() {
    // From skills/bad, `../good/SKILL.md` stays inside the repository but leaves the skill.
    let env = TestEnv::new();
    let repo = pack_with(&env, with_entry(b"sibling", MODE_LINK, b"../good/SKILL.md"));
    let err = run(&env, &repo);
    assert!(err.contains("outside the skill"), "{err}");
}

#[test]
fn symlink_chain_through_another_link_is_refused() {
    // `d/e/l → ../..` stays inside alone; `esc → d/e/l/../../../x` walks through `l`.
    let env = TestEnv::new();
    let repo = pack_with(&env, |repo| {
        let md = repo.write_blob(skill_md("bad", "hostile").as_bytes());
        let l = repo.write_blob(b"../..");
        let esc = repo.write_blob(b"d/e/l/../../../secret.txt");
        let e = repo.write_raw_tree(&[("l", MODE_LINK, l)]);
        let d = repo.write_raw_tree(&[("e", MODE_TREE, e)]);
        repo.write_raw_tree(&[
            ("SKILL.md", MODE_BLOB, md),
            ("d", MODE_TREE, d),
            ("esc", MODE_LINK, esc),
        ])
    });
    let err = run(&env, &repo);
    assert!(err.contains("passes through the symlink d/e/l"), "{err}");
}

#[test]
fn symlink_chain_through_a_case_variant_of_a_link_is_refused() {
    // `d/e/l → ../..`; `esc → d/e/L/../../../x` reaches `l` on macOS and Windows, and escapes.
    let env = TestEnv::new();
    let repo = pack_with(&env, |repo| {
        let md = repo.write_blob(skill_md("bad", "hostile").as_bytes());
        let l = repo.write_blob(b"../..");
        let esc = repo.write_blob(b"d/e/L/../../../secret.txt");
        let e = repo.write_raw_tree(&[("l", MODE_LINK, l)]);
        let d = repo.write_raw_tree(&[("e", MODE_TREE, e)]);
        repo.write_raw_tree(&[
            ("SKILL.md", MODE_BLOB, md),
            ("d", MODE_TREE, d),
            ("esc", MODE_LINK, esc),
        ])
    });
    let err = run(&env, &repo);
    assert!(err.contains("passes through the symlink d/e/l"), "{err}");
}

#[test]
fn project_config_cannot_point_a_destination_outside_the_project() {
    // A cloned project whose config and lock aim at the user's own folders.
    let env = TestEnv::new();
    let documents = env.home_path("Documents");
    write_file(documents.join("thesis.txt"), "years of work\n");
    let before = read_tree_snapshot(env.home());
    for dest in ["~/", "../home", "/tmp/../../home"] {
        write_file(
            env.project_path("kasetto.yaml"),
            format!("destination: {dest}\nscope: project\nskills: []\n"),
        );
        write_file(
            env.project_path("kasetto.lock"),
            format!(
                "version: 1\nsources:\n- url: ./x\n  requested: local\n  skills:\n  - name: Documents\n    path: Documents\n    tree: 0000000000000000000000000000000000000000\n    installed:\n    - {}\n",
                documents.display()
            ),
        );
        let a = env.kst().arg("sync").assert().code(2);
        let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
        assert!(err.contains("outside the project"), "{dest}: {err}");
    }
    assert_snapshots_eq(&before, &read_tree_snapshot(env.home()));
}
