//! Property tests for the parsers that read untrusted text (SPEC 13.7): configs, locks and
//! source URLs. Whatever the input, they return a value or a usage error — never panic — and
//! what they accept keeps its invariants. `PROPTEST_CASES=100000 cargo test --test tests parsers`
//! runs them longer.

use std::path::Path;

use kasetto::config;
use kasetto::error::Error;
use kasetto::lock::Lock;
use kasetto::source::{self, Source};
use proptest::prelude::*;

/// YAML-ish text built from fragments a config or lock really contains, so mutations reach
/// deep into the parsers rather than failing at the first character.
fn yamlish() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("agent: claude-code\n".to_string()),
        Just("agent: [claude-code, codex]\n".to_string()),
        Just("scope: project\n".to_string()),
        Just("skills:\n".to_string()),
        Just("  - source: ./pack\n".to_string()),
        Just("  - source: https://example.com/o/r\n".to_string()),
        Just("    skills: \"*\"\n".to_string()),
        Just("    skills: [a, {name: b, path: x/y}]\n".to_string()),
        Just("    ref: v1\n".to_string()),
        Just("    sub-dir: a/../b\n".to_string()),
        Just("version: 1\nsources:\n".to_string()),
        Just("  - url: x\n    requested: {tag: v1}\n    commit: 0123456789abcdef0123456789abcdef01234567\n".to_string()),
        Just("    skills:\n      - {name: a, path: a, tree: '00', installed: [.claude/skills/a]}\n".to_string()),
        Just("mcps:\n  - name: x\n    servers: {s: {command: c}}\n".to_string()),
        "[ -~\n]{0,40}",
        "\\PC{0,20}",
    ];
    prop::collection::vec(frag, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn config_parser_never_panics(text in yamlish()) {
        match config::parse(Path::new("/p/kasetto.yaml"), &text) {
            Ok(c) => {
                for s in &c.skills {
                    // Accepted names are always safe folder names.
                    if let config::Selection::Named(picks) = &s.selection {
                        for p in picks {
                            prop_assert!(kasetto::pathsafe::check_skill_name(&p.name).is_ok());
                        }
                    }
                }
            }
            Err(Error::Usage(msg)) => prop_assert!(msg.contains("/p/kasetto.yaml"), "{msg}"),
            Err(other) => prop_assert!(false, "not a usage error: {other:?}"),
        }
    }

    #[test]
    fn arbitrary_text_config_never_panics(text in "\\PC{0,200}") {
        let _ = config::parse(Path::new("/p/kasetto.yaml"), &text);
    }

    #[test]
    fn lock_parser_never_panics_and_round_trips(text in yamlish()) {
        match Lock::parse(Path::new("/p/kasetto.lock"), &text) {
            Ok(lock) => {
                let again = Lock::parse(Path::new("/p/kasetto.lock"), &lock.to_yaml());
                prop_assert!(again.is_ok(), "written lock does not parse: {}", lock.to_yaml());
                let again = again.unwrap();
                prop_assert_eq!(again.to_yaml(), lock.to_yaml());
                // What `Lock::write` puts in the lock memo (the normalised value) is what the
                // text it wrote parses to, and survives the memo's JSON (lockmemo.rs).
                let mut written = lock.clone();
                written.normalise();
                prop_assert_eq!(&again, &written);
                let json = serde_json::to_string(&again).unwrap();
                prop_assert_eq!(serde_json::from_str::<Lock>(&json).unwrap(), again);
            }
            Err(Error::Usage(_)) => {}
            Err(other) => prop_assert!(false, "not a usage error: {other:?}"),
        }
    }

    #[test]
    fn url_parser_never_panics_and_canonical_urls_hold_no_secret(
        scheme in prop_oneof![Just("https://"), Just("http://"), Just("ssh://"), Just("git://"), Just("file://"), Just("")],
        user in prop_oneof![Just(String::new()), Just("u@".to_string()), Just("u:SECRETPW@".to_string()), "[a-z:@%]{0,6}"],
        rest in "[ -~]{0,40}",
    ) {
        let raw = format!("{scheme}{user}{rest}");
        if let Ok(Source::Git(g)) = source::parse(&raw, Path::new("/base")) {
            let c = g.canonical().as_str();
            prop_assert!(!c.contains("SECRETPW"), "{raw} → {c}");
            prop_assert!(!c.chars().any(|ch| ch.is_control()), "{raw} → {c}");
            prop_assert!(!c.ends_with('/') && !c.ends_with(".git"), "{raw} → {c}");
            prop_assert!(!g.fetch_url().contains("SECRETPW"), "{raw}");
        }
        if let Err(msg) = source::parse(&raw, Path::new("/base")) {
            prop_assert!(!msg.contains("SECRETPW"), "error echoes the password: {msg}");
        }
    }
}
