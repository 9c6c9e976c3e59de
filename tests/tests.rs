//! All integration tests, compiled into one binary (fast builds, as in ripgrep and jj).
//! Each module is one area of behaviour; `support` builds hermetic environments, fixture
//! repositories and loopback servers.

mod support;

mod crash;
mod credentials;
mod fast_noop;
mod fsx;
mod hostile;
mod mcp_sync;
mod parsers;
mod perf_smoke;
mod remote_config;
mod selftest;
mod ssh;
mod sync_git;
mod sync_local;
mod verify_lock;
