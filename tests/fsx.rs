//! `src/fsx.rs` helpers called directly, for the cases the end-to-end tests cannot reach (found
//! alive by cargo-mutants, docs/testing.md): what `remove_any` does with each kind of entry and
//! with a path it cannot inspect, and that `set_mode` sets the mode.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use kasetto::fsx::{remove_any, set_mode};

use crate::support::*;

#[test]
fn remove_any_removes_each_kind_without_following_links() {
    let env = TestEnv::new();
    let dir = env.path("d");
    write_file(dir.join("inner/f.txt"), "x");
    let file = env.path("f.txt");
    write_file(&file, "x");
    let kept = env.path("kept");
    write_file(kept.join("precious.txt"), "keep me");
    let link = env.path("link");
    symlink(&kept, &link);

    remove_any(&file).unwrap();
    assert!(fs::symlink_metadata(&file).is_err(), "file left");
    remove_any(&link).unwrap();
    assert!(fs::symlink_metadata(&link).is_err(), "link left");
    assert_eq!(
        fs::read_to_string(kept.join("precious.txt")).unwrap(),
        "keep me",
        "the link's target was touched"
    );
    remove_any(&dir).unwrap();
    assert!(fs::symlink_metadata(&dir).is_err(), "folder left");
    // Missing is fine.
    remove_any(&env.path("never-there")).unwrap();
}

#[test]
fn remove_any_reports_a_path_it_cannot_inspect() {
    // `f.txt/x`: stat fails with "not a directory", not "not found". That is an error (the
    // caller keeps the entry in the lock), never a silent success.
    let env = TestEnv::new();
    let file = env.path("f.txt");
    write_file(&file, "x");
    let e = remove_any(&file.join("x")).unwrap_err();
    assert!(format!("{e:#}").contains("cannot stat"), "{e:#}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn set_mode_sets_the_permission_bits() {
    let env = TestEnv::new();
    let file = env.path("f.txt");
    write_file(&file, "x");
    for mode in [0o600, 0o755, 0o640] {
        set_mode(&file, mode).unwrap();
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o7777,
            mode
        );
    }
}
