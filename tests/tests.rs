//! All integration tests, compiled into one binary (fast builds, as in ripgrep and jj).
//! Each module is one area of behaviour; `support` builds hermetic environments, fixture
//! repositories and loopback servers.

mod support;

mod audit;
mod cli_edit;
mod cli_habits;
mod cmd_cache;
mod cmd_clean;
mod cmd_doctor;
mod cmd_fixtures;
mod cmd_list;
mod cmd_outdated;
mod commands_sync;
mod config_keys;
mod crash;
mod credentials;
mod fast_noop;
mod files_crash;
mod files_fast;
mod files_hostile;
mod fsx;
mod hostile;
mod hostile_server;
mod instructions_sync;
mod kasetto_lock;
mod linear_cost;
mod local_fast;
mod lock_memo;
mod mcp_sync;
mod md_assets;
mod offline_resync;
mod parsers;
mod perf_smoke;
mod remote_config;
mod run_memo;
mod run_memo_skills;
mod secrets;
mod selftest;
mod signed_pins;
mod ssh;
mod startup;
mod sync_git;
mod sync_local;
mod trust;
mod untrusted_files;
mod update_review;
mod verify_lock;
