//! Kasetto's small CLI habits a switching user relies on (issue 13): a bare `kst` is help, `-q`
//! is repeatable, `--plain` means `--color never`, `CLICOLOR_FORCE` is honoured as NO_COLOR is,
//! and the "no config" error names only things that exist.

use crate::support::*;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(mut cmd: assert_cmd::Command) -> Run {
    let out = cmd.output().expect("run kst");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A project with one local skill `pdf` in `./pack` for claude-code: `kst sync` prints a
/// coloured `+ pdf` line when colours are on.
fn project_with_one_skill(env: &TestEnv) {
    write_file(
        env.project_path("pack/skills/pdf/SKILL.md"),
        skill_md("pdf", "The pdf skill"),
    );
    write_file(
        env.project_path("kasetto.yaml"),
        "agent: claude-code\nscope: project\nskills:\n  - source: ./pack\n    skills: [pdf]\n",
    );
}

/// `kst sync` (args first) with NO_COLOR unset and `vars` set; stderr is a pipe, not a TTY.
fn sync_colours(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = env.kst();
    cmd.env_remove("NO_COLOR").args(args).arg("sync");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let r = run(cmd);
    assert_eq!(r.code, 0, "{r:?}");
    r
}

fn coloured(r: &Run) -> bool {
    r.stderr.contains("\x1b[")
}

#[test]
fn bare_kst_prints_the_short_help_and_exits_0() {
    let env = TestEnv::new();
    let r = run(env.kst());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Usage: kst"), "{r:?}");
    for command in ["sync", "lock", "fetch", "verify", "trust"] {
        assert!(r.stdout.contains(command), "{command} missing: {r:?}");
    }
    assert!(r.stderr.is_empty(), "{r:?}");
    // Nothing was created in the project.
    assert!(!env.project_path("kasetto.lock").exists());
}

#[test]
fn quiet_is_repeatable() {
    let env = TestEnv::new();
    project_with_one_skill(&env);
    let r = run({
        let mut c = env.kst();
        c.args(["-qq", "sync"]);
        c
    });
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.is_empty(), "-qq prints only errors: {r:?}");
    assert!(env.project_path(".claude/skills/pdf/SKILL.md").is_file());
    // Still exclusive with -v, as -q is.
    let r = run({
        let mut c = env.kst();
        c.args(["-qq", "-v", "sync"]);
        c
    });
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn clicolor_force_colours_without_a_tty_unless_no_color_or_plain() {
    let env = TestEnv::new();
    project_with_one_skill(&env);
    // Not a TTY and nothing forced: plain.
    let r = sync_colours(&env, &[], &[]);
    assert!(!coloured(&r), "{r:?}");
    assert!(r.stderr.contains("pdf (./pack)"), "{r:?}");
    std::fs::remove_dir_all(env.project_path(".claude")).unwrap();

    let r = sync_colours(&env, &[], &[("CLICOLOR_FORCE", "1")]);
    assert!(coloured(&r), "CLICOLOR_FORCE=1 colours: {r:?}");
    std::fs::remove_dir_all(env.project_path(".claude")).unwrap();

    let r = sync_colours(&env, &[], &[("CLICOLOR_FORCE", "0")]);
    assert!(!coloured(&r), "CLICOLOR_FORCE=0 does not: {r:?}");
    std::fs::remove_dir_all(env.project_path(".claude")).unwrap();

    let r = sync_colours(&env, &[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!coloured(&r), "NO_COLOR wins: {r:?}");
    std::fs::remove_dir_all(env.project_path(".claude")).unwrap();

    let r = sync_colours(&env, &["--plain"], &[("CLICOLOR_FORCE", "1")]);
    assert!(!coloured(&r), "--plain is --color never: {r:?}");
    assert!(r.stderr.contains("pdf (./pack)"), "{r:?}");
}

#[test]
fn plain_is_a_hidden_alias_of_color_never() {
    let env = TestEnv::new();
    project_with_one_skill(&env);
    let r = sync_colours(&env, &["--plain", "--color", "always"], &[]);
    assert!(!coloured(&r), "{r:?}");
    // Control: --color always alone does colour, so the assertion above can fail.
    std::fs::remove_dir_all(env.project_path(".claude")).unwrap();
    let r = sync_colours(&env, &["--color", "always"], &[]);
    assert!(coloured(&r), "{r:?}");
    // Hidden: deprecated, so not advertised in --help.
    let help = run({
        let mut c = env.kst();
        c.arg("--help");
        c
    });
    assert_eq!(help.code, 0, "{help:?}");
    assert!(!help.stdout.contains("--plain"), "{help:?}");
}

#[test]
fn missing_config_error_names_only_what_exists() {
    let env = TestEnv::new();
    let r = run({
        let mut c = env.kst();
        c.arg("sync");
        c
    });
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no kasetto.yaml found"), "{r:?}");
    // `kst init` exists now (issue 14): the message names it, and the loop below checks it.
    assert!(
        r.stderr.contains("`kst init`") && r.stderr.contains("--config"),
        "{r:?}"
    );
    // Every `kst <word>` the message suggests is a real command.
    let help = run(env.kst());
    for word in r.stderr.split("`kst ").skip(1) {
        let cmd = word
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap();
        assert!(help.stdout.contains(cmd), "{cmd}: {r:?}");
    }
}
