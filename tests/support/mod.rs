//! Shared helpers for kst's integration tests.
//!
//! Everything here is hermetic: tests get their own HOME / XDG dirs / cache,
//! git config is isolated from the machine's, and every server listens on
//! 127.0.0.1 only. Nothing here touches the internet.
#![allow(dead_code, unused_imports)]

pub mod assets;
pub mod env;
pub mod git_daemon;
pub mod http_git;
pub mod pack;
pub mod repo;
pub mod sshd;
pub mod tools;

pub use env::{
    SnapEntry, Snapshot, TestEnv, assert_snapshots_eq, find_bytes_in_tree, read_tree_snapshot,
    run_ok, symlink, write_executable, write_file,
};
pub use git_daemon::GitDaemon;
pub use http_git::{HttpGitServer, HttpOptions, RequestRecord, basic_auth_header, decode_basic};
pub use repo::{
    FileSpec, FixtureRepo, MODE_BLOB, MODE_EXEC, MODE_GITLINK, MODE_LINK, MODE_TREE,
    isolate_libgit2_config, skill_md, skill_pack,
};
pub use sshd::{SshAgent, Sshd, port_busy, sshd_or_skip, start_agent};
pub use tools::{skip_or_fail_in_ci, tool_or_skip};
