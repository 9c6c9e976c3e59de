//! The command layer: one module per `kst` command, holding its clap arguments and its `run`.
//!
//! A command loads the [`crate::workspace::Workspace`], drives the [`crate::pipeline`] stages it
//! needs, and hands results to the [`crate::report::Printer`]. It never parses the config, talks
//! to git, or maps errors to exit codes itself ([`crate::cli`] does that). A new command is one
//! new file here plus one variant in `cli::Command`.

pub mod add;
pub mod audit;
pub mod cache;
pub mod clean;
pub mod completions;
pub mod doctor;
pub mod fetch;
pub mod init;
pub mod list;
pub mod lock;
pub mod outdated;
pub mod remove;
pub mod sync;
pub mod trust;
pub mod verify;
