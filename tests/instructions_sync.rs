//! Instructions end to end (SPEC 6, 10b; issue 12), through the binary: managed blocks in files
//! shared with the user (`CLAUDE.md`, `AGENTS.md`) and per-rule files (Cursor `.mdc`, Markdown).
//!
//! The promise under test: the user's text outside kst's blocks stays byte-identical (BOM, CRLF,
//! no final newline); a block the user edited is *modified locally* and kept; removal strips
//! only kst's blocks and never deletes the user's file; agents sharing `AGENTS.md` get one block
//! per instruction; `verify` names an edited rule file or block; hostile text (marker lines in a
//! body, markers that do not pair up in the user's file) is refused with where, losing nothing.
//! The all-agents, both-scopes install is in `commands_sync` (one pack with every kind).

use crate::support::assets::*;
use crate::support::*;

/// The user's own CLAUDE.md: a BOM, CRLF line endings, no final newline.
const USER_CLAUDE: &[u8] =
    b"\xef\xbb\xbf# My project\r\n\r\nMy own rules: keep it short.\r\nLast line, no newline";

/// A local pack at `./pack` and a project config syncing its instructions into `agents`.
fn setup(env: &TestEnv, agents: &str) {
    write_local_pack(&env.project_path("pack"));
    write_file(
        env.project_path("kasetto.yaml"),
        config_cmd_ins(agents, "./pack", false, true),
    );
}

fn drop_entry(env: &TestEnv, agents: &str) {
    write_file(
        env.project_path("kasetto.yaml"),
        format!("agent: {agents}\nscope: project\n"),
    );
}

fn bytes(env: &TestEnv, rel: &str) -> Vec<u8> {
    std::fs::read(env.project_path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// `user` followed by kst's two blocks as SPEC 10b appends them, in either order.
fn with_blocks(user: &[u8], eol: &str, blocks: &[String; 2]) -> [Vec<u8>; 2] {
    let sep = if user.is_empty() {
        String::new()
    } else if user.ends_with(b"\n") {
        eol.to_string()
    } else {
        format!("{eol}{eol}")
    };
    let final_eol = if user.is_empty() || user.ends_with(b"\n") {
        eol
    } else {
        ""
    };
    let join = |a: &str, b: &str| {
        // The second block is appended to a file that ends the way the first left it.
        let mid = if final_eol.is_empty() {
            format!("{eol}{eol}")
        } else {
            format!("{final_eol}{eol}")
        };
        let mut v = user.to_vec();
        v.extend_from_slice(format!("{sep}{a}{mid}{b}{final_eol}").as_bytes());
        v
    };
    [join(&blocks[0], &blocks[1]), join(&blocks[1], &blocks[0])]
}

#[track_caller]
fn assert_one_of(got: &[u8], want: &[Vec<u8>; 2], what: &str) {
    assert!(
        got == want[0].as_slice() || got == want[1].as_slice(),
        "{what}:\n{:?}\n--- want\n{:?}",
        String::from_utf8_lossy(got),
        String::from_utf8_lossy(&want[0])
    );
}

#[test]
fn the_users_claude_md_stays_byte_identical_around_kst_blocks() {
    let env = TestEnv::new();
    setup(&env, "[claude-code]");
    write_file(env.project_path("CLAUDE.md"), USER_CLAUDE);

    let r = ok(kst(&env, &["sync"]));
    let got = bytes(&env, "CLAUDE.md");
    assert!(
        got.starts_with(USER_CLAUDE),
        "the user's text changed: {r:?}"
    );
    // kst's blocks use the file's own line ending (CRLF).
    let crlf = blocks_of("./pack", "\r\n");
    assert_one_of(&got, &with_blocks(USER_CLAUDE, "\r\n", &crlf), "CLAUDE.md");

    // The lock records each block as FILE#ID with the sha256 of the block as written.
    let lock = lock_yaml(&env.project_path("kasetto.lock"));
    let items = lock_items(&lock, "instructions");
    let (_, style) = &items["style"];
    assert_eq!(
        installed_of(style),
        [(
            format!("CLAUDE.md#{}", block_id("./pack", "style")),
            sha256(crlf[0].as_bytes())
        )]
        .into_iter()
        .collect(),
    );

    // No-op, clean verify.
    let before = snapshot_with_mtimes(&env.project());
    ok(kst(&env, &["sync"]));
    assert_eq!(snapshot_with_mtimes(&env.project()), before);
    ok(kst(&env, &["verify"]));

    // Removing the entry strips kst's blocks only: the user's exact bytes are back.
    drop_entry(&env, "[claude-code]");
    let r = ok(kst(&env, &["sync", "--json"]));
    let doc = r.json();
    let ins = items_of(&doc, "instruction");
    assert_eq!(ins["style"]["action"], "removed", "{doc:#}");
    assert_eq!(bytes(&env, "CLAUDE.md"), USER_CLAUDE);
    let lock = read(&env.project_path("kasetto.lock"));
    assert!(!lock.contains("style"), "{lock}");
}

#[test]
fn the_users_global_claude_md_stays_byte_identical_too() {
    let env = TestEnv::new();
    let pack = env.home_path("packs/team");
    write_local_pack(&pack);
    let source = pack.to_str().unwrap().to_string();
    write_file(
        env.xdg_config().join("kasetto/kasetto.yaml"),
        format!(
            "agent: [claude-code, cursor]\ninstructions:\n  - source: {source}\n    instructions: \"*\"\n"
        ),
    );
    let claude = env.home_path(".claude/CLAUDE.md");
    write_file(&claude, USER_CLAUDE);
    ok(kst(&env, &["sync"]));
    let got = std::fs::read(&claude).unwrap();
    let crlf = blocks_of(&source, "\r\n");
    assert_one_of(
        &got,
        &with_blocks(USER_CLAUDE, "\r\n", &crlf),
        "~/.claude/CLAUDE.md",
    );
    assert_eq!(read(&env.home_path(".cursor/rules/style.mdc")), MDC_STYLE);
    let lock = lock_yaml(&env.xdg_data().join("kasetto/kasetto.lock"));
    let (_, style) = &lock_items(&lock, "instructions")["style"];
    assert_eq!(
        installed_of(style),
        [
            (
                format!(".claude/CLAUDE.md#{}", block_id(&source, "style")),
                sha256(crlf[0].as_bytes())
            ),
            (
                ".cursor/rules/style.mdc".to_string(),
                sha256(MDC_STYLE.as_bytes())
            ),
        ]
        .into_iter()
        .collect(),
    );
    ok(kst(&env, &["verify"]));
    write_file(
        env.xdg_config().join("kasetto/kasetto.yaml"),
        "agent: [claude-code, cursor]\n",
    );
    ok(kst(&env, &["sync"]));
    assert_eq!(std::fs::read(&claude).unwrap(), USER_CLAUDE);
    assert!(!env.home_path(".cursor/rules/style.mdc").exists());
}

#[test]
fn a_changed_instruction_replaces_only_its_block() {
    let env = TestEnv::new();
    setup(&env, "[claude-code, cursor]");
    write_file(env.project_path("CLAUDE.md"), USER_CLAUDE);
    ok(kst(&env, &["sync"]));
    let v1 = bytes(&env, "CLAUDE.md");
    write_file(
        env.project_path("pack/instructions/style.md"),
        INS_STYLE.replace("Use tabs.", "Use tabs.\n\nAlign with spaces."),
    );
    let r = ok(kst(&env, &["sync", "--json"]));
    let doc = r.json();
    let ins = items_of(&doc, "instruction");
    assert_eq!(ins["style"]["action"], "updated", "{doc:#}");
    assert_eq!(ins["house:security"]["action"], "unchanged", "{doc:#}");
    // The same file with the style block's text replaced in place, in CRLF.
    let id = block_id("./pack", "style");
    let old = block(&id, BLOCK_STYLE, "\r\n");
    let new = block(&id, "Use tabs.\n\nAlign with spaces.", "\r\n");
    let want = String::from_utf8(v1).unwrap().replace(&old, &new);
    assert_eq!(read(&env.project_path("CLAUDE.md")), want);
    assert_eq!(
        read(&env.project_path(".cursor/rules/style.mdc")),
        MDC_STYLE.replace("Use tabs.", "Use tabs.\n\nAlign with spaces.")
    );
    ok(kst(&env, &["verify"]));
}

#[test]
fn agents_sharing_agents_md_get_one_block_per_instruction() {
    let env = TestEnv::new();
    let agents = "[codex, opencode, amp, zcode, pi]";
    setup(&env, agents);
    let user = b"# Agents\n\nOur conventions.\n";
    write_file(env.project_path("AGENTS.md"), user);

    let r = ok(kst(&env, &["sync", "--json"]));
    let got = bytes(&env, "AGENTS.md");
    assert_one_of(
        &got,
        &with_blocks(user, "\n", &blocks_of("./pack", "\n")),
        "AGENTS.md",
    );
    let text = String::from_utf8(got).unwrap();
    assert_eq!(text.matches(" START -->").count(), 2, "{text}");
    let doc = r.json();
    for item in items_of(&doc, "instruction").values() {
        let dests = dest_paths(item);
        assert_eq!(dests.len(), 1, "one block for five agents: {item:#}");
        assert!(dests[0].starts_with("AGENTS.md"), "{item:#}");
    }
    let lock = lock_yaml(&env.project_path("kasetto.lock"));
    for (name, (_, item)) in lock_items(&lock, "instructions") {
        let keys: Vec<String> = installed_of(&item).into_keys().collect();
        assert_eq!(
            keys,
            [format!("AGENTS.md#{}", block_id("./pack", &name))],
            "{name}"
        );
    }
    let before = snapshot_with_mtimes(&env.project());
    ok(kst(&env, &["sync"]));
    assert_eq!(snapshot_with_mtimes(&env.project()), before);
    // Removing the entry strips both blocks, once.
    drop_entry(&env, agents);
    ok(kst(&env, &["sync"]));
    assert_eq!(bytes(&env, "AGENTS.md"), user);
}

#[test]
fn a_block_the_user_edited_is_modified_locally_and_kept() {
    let env = TestEnv::new();
    setup(&env, "[claude-code, cursor]");
    ok(kst(&env, &["sync"]));
    let original = read(&env.project_path("CLAUDE.md"));
    let edited = original.replace("Use tabs.", "Use tabs, eight wide.");
    assert_ne!(edited, original);
    write_file(env.project_path("CLAUDE.md"), &edited);

    let r = ok(kst(&env, &["sync", "--json"]));
    assert_eq!(
        read(&env.project_path("CLAUDE.md")),
        edited,
        "the edit was lost"
    );
    let doc = r.json();
    let style = items_of(&doc, "instruction")["style"].clone();
    let d = style["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"].as_str().unwrap().starts_with("CLAUDE.md"))
        .unwrap_or_else(|| panic!("{style:#}"))
        .clone();
    assert_eq!(d["action"], "skipped", "{d}");
    assert_eq!(d["reason"], "modified_locally", "{d}");
    // The rule file of the same instruction is untouched and fine.
    assert_eq!(
        read(&env.project_path(".cursor/rules/style.mdc")),
        MDC_STYLE
    );

    let r = ok(kst(&env, &["sync"]));
    assert!(r.stderr.contains("modified locally"), "{r:?}");
    assert!(r.stderr.contains("CLAUDE.md"), "{r:?}");
    assert_eq!(read(&env.project_path("CLAUDE.md")), edited);

    // Removing the entry leaves an edited block alone too (it is the user's now), and
    // removes the unedited one.
    drop_entry(&env, "[claude-code, cursor]");
    ok(kst(&env, &["sync"]));
    let after = read(&env.project_path("CLAUDE.md"));
    assert!(after.contains("Use tabs, eight wide."), "{after}");
    assert!(!after.contains("Never log a token."), "{after}");
    assert!(!env.project_path(".cursor/rules/style.mdc").exists());
}

#[test]
fn verify_names_an_edited_rule_file_and_an_edited_block() {
    let env = TestEnv::new();
    setup(&env, "[claude-code, cursor, windsurf]");
    ok(kst(&env, &["sync"]));
    ok(kst(&env, &["verify"]));

    // A rule file.
    let rule = ".cursor/rules/house-security.mdc";
    write_file(env.project_path(rule), MDC_SEC.replace("token", "secret"));
    let r = code(kst(&env, &["verify"]), 1);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains(rule))
        .unwrap_or_else(|| panic!("{rule} not named: {r:?}"));
    assert!(line.contains("modified"), "{r:?}");
    assert!(!r.stderr.contains("CLAUDE.md"), "{r:?}");
    let doc = code(kst(&env, &["verify", "--json"]), 1).json();
    assert_eq!(doc["ok"], false);
    let rows = status_rows(&doc);
    assert!(rows.iter().any(|(p, _)| p == rule), "{doc:#}");
    // Only the edited file is not ok among kst's rule files and blocks.
    let ours = |p: &str| {
        p.starts_with(".cursor/") || p.starts_with(".windsurf/") || p.starts_with("CLAUDE.md")
    };
    for (p, st) in rows.iter().filter(|(p, _)| ours(p)) {
        let want = if p == rule { "modified" } else { "ok" };
        assert_eq!(st, want, "{p}: {doc:#}");
    }
    write_file(env.project_path(rule), MDC_SEC);
    ok(kst(&env, &["verify"]));

    // A block.
    let original = read(&env.project_path("CLAUDE.md"));
    write_file(
        env.project_path("CLAUDE.md"),
        original.replace("Rotate keys.", "Rotate keys yearly."),
    );
    let r = code(kst(&env, &["verify"]), 1);
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("CLAUDE.md"))
        .unwrap_or_else(|| panic!("CLAUDE.md not named: {r:?}"));
    assert!(line.contains("modified"), "{r:?}");
    assert!(
        line.contains("house:security"),
        "the instruction is named: {r:?}"
    );
    assert!(!r.stderr.contains(".cursor/rules"), "{r:?}");
    let doc = code(kst(&env, &["verify", "--json"]), 1).json();
    let rows = status_rows(&doc);
    let sec = format!("CLAUDE.md#{}", block_id("./pack", "house:security"));
    assert!(
        rows.iter()
            .any(|(p, st)| (p == &sec || p == "CLAUDE.md") && st == "modified"),
        "{doc:#}"
    );
    assert!(
        rows.iter()
            .filter(|(p, st)| ours(p) && st != "ok")
            .all(|(p, _)| p.starts_with("CLAUDE.md")),
        "{doc:#}"
    );
    // The user's text outside kst's blocks is not kst's to verify.
    write_file(
        env.project_path("CLAUDE.md"),
        format!("# Mine\n\n{original}"),
    );
    ok(kst(&env, &["verify"]));
}

#[test]
fn removing_the_entry_strips_only_kst_blocks_and_files() {
    let env = TestEnv::new();
    setup(&env, "[claude-code, cursor, continue]");
    // The user's file holds someone else's block (another source's, as Kasetto wrote it) too.
    let user = "# Mine\n\n<!-- kasetto:instruction:theirs-0badc0de START -->\nTheirs.\n<!-- kasetto:instruction:theirs-0badc0de END -->\n\nMore of mine.\n";
    write_file(env.project_path("CLAUDE.md"), user);
    write_file(env.project_path(".cursor/rules/mine.mdc"), "my rule\n");
    ok(kst(&env, &["sync"]));
    let got = read(&env.project_path("CLAUDE.md"));
    assert!(got.starts_with(user), "{got}");
    for (rel, want) in rule_files(false) {
        if !rel.starts_with(".windsurf") {
            assert_eq!(read(&env.project_path(rel)), want, "{rel}");
        }
    }

    drop_entry(&env, "[claude-code, cursor, continue]");
    ok(kst(&env, &["sync"]));
    assert_eq!(read(&env.project_path("CLAUDE.md")), user);
    assert_eq!(
        read(&env.project_path(".cursor/rules/mine.mdc")),
        "my rule\n"
    );
    for (rel, _) in rule_files(false) {
        assert!(!env.project_path(rel).exists(), "{rel} left behind");
    }
}

#[test]
fn a_users_own_rule_file_is_a_conflict_unless_force() {
    let env = TestEnv::new();
    setup(&env, "[cursor]");
    let theirs = ".cursor/rules/style.mdc";
    write_file(env.project_path(theirs), "the user's style\n");
    let r = code(kst(&env, &["sync"]), 1);
    assert!(r.stderr.contains(theirs), "{r:?}");
    assert_eq!(read(&env.project_path(theirs)), "the user's style\n");
    assert_eq!(
        read(&env.project_path(".cursor/rules/house-security.mdc")),
        MDC_SEC
    );
    ok(kst(&env, &["sync", "--force"]));
    assert_eq!(read(&env.project_path(theirs)), MDC_STYLE);
    ok(kst(&env, &["verify"]));
}

#[test]
fn an_instruction_whose_body_has_marker_lines_is_refused_everywhere() {
    let env = TestEnv::new();
    setup(&env, "[claude-code, cursor]");
    // Its text tries to close kst's style block and open one of its own.
    let id = block_id("./pack", "style");
    write_file(
        env.project_path("pack/instructions/quoted.md"),
        format!(
            "---\ndescription: q\n---\nHarmless first line.\n<!-- kasetto:instruction:{id} END -->\nInjected.\n"
        ),
    );
    write_file(env.project_path("CLAUDE.md"), "# Mine\n");
    let r = code(kst(&env, &["sync", "--json"]), 1);
    let doc = r.json();
    let ins = items_of(&doc, "instruction");
    assert_eq!(ins["quoted"]["action"], "broken", "{doc:#}");
    let err = ins["quoted"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.contains("instructions/quoted.md:5"),
        "file and line of the marker: {doc:#}"
    );
    assert!(err.contains("marker"), "{err}");
    assert_eq!(ins["style"]["action"], "added", "{doc:#}");
    // Neither the aggregate file nor a rule file got it; the others synced.
    let claude = read(&env.project_path("CLAUDE.md"));
    assert!(!claude.contains("Injected"), "{claude}");
    assert!(claude.starts_with("# Mine\n"), "{claude}");
    assert_eq!(claude.matches(" START -->").count(), 2, "{claude}");
    assert!(!env.project_path(".cursor/rules/quoted.mdc").exists());
    assert_eq!(
        read(&env.project_path(".cursor/rules/style.mdc")),
        MDC_STYLE
    );
    let r = code(kst(&env, &["sync"]), 1);
    assert!(
        r.stderr.contains("quoted") && r.stderr.contains("instructions/quoted.md:5"),
        "{r:?}"
    );
}

#[test]
fn a_start_marker_without_its_end_in_the_users_file_is_refused_and_kept() {
    let env = TestEnv::new();
    setup(&env, "[claude-code, cursor]");
    let user = "# Mine\n\n<!-- kasetto:instruction:old-12345678 START -->\nmy notes, not a block\n";
    write_file(env.project_path("CLAUDE.md"), user);
    let r = code(kst(&env, &["sync"]), 1);
    assert_eq!(read(&env.project_path("CLAUDE.md")), user, "{r:?}");
    let named = r
        .stderr
        .lines()
        .any(|l| l.contains("CLAUDE.md") && (l.contains("line 3") || l.contains("CLAUDE.md:3")));
    assert!(named, "the file and the line are named: {r:?}");
    // The per-rule files do not depend on CLAUDE.md.
    assert_eq!(
        read(&env.project_path(".cursor/rules/style.mdc")),
        MDC_STYLE
    );
    assert_eq!(
        read(&env.project_path(".cursor/rules/house-security.mdc")),
        MDC_SEC
    );
}

#[test]
fn dry_run_touches_no_shared_file() {
    let env = TestEnv::new();
    setup(&env, "[claude-code, cursor, codex]");
    write_file(env.project_path("CLAUDE.md"), USER_CLAUDE);
    let before = snapshot_with_mtimes(&env.project());
    let r = ok(kst(&env, &["sync", "--dry-run", "--json"]));
    assert_eq!(snapshot_with_mtimes(&env.project()), before);
    let doc = r.json();
    assert_eq!(doc["dry_run"], true);
    let ins = items_of(&doc, "instruction");
    assert_eq!(ins.len(), 2, "{doc:#}");
    for item in ins.values() {
        assert_eq!(item["action"], "added", "{item:#}");
    }
    let r = ok(kst(&env, &["sync", "--dry-run"]));
    assert_eq!(snapshot_with_mtimes(&env.project()), before);
    assert!(r.stderr.contains("2 instructions"), "{r:?}");
}

#[test]
fn locked_fails_when_the_lock_has_no_instructions_section() {
    let env = TestEnv::new();
    setup(&env, "[claude-code]");
    write_file(
        env.project_path("kasetto.yaml"),
        config_cmd_ins("[claude-code]", "./pack", true, false),
    );
    ok(kst(&env, &["sync"]));
    let lock_before = read(&env.project_path("kasetto.lock"));
    assert!(!lock_before.contains("instructions:"), "{lock_before}");
    write_file(
        env.project_path("kasetto.yaml"),
        config_cmd_ins("[claude-code]", "./pack", true, true),
    );
    let r = code(kst(&env, &["sync", "--locked"]), 1);
    assert!(r.stderr.contains("./pack"), "{r:?}");
    assert_eq!(read(&env.project_path("kasetto.lock")), lock_before);
    assert!(!env.project_path("CLAUDE.md").exists(), "{r:?}");
}
