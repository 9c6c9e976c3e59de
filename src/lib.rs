//! Kasetto (git-native): keep AI coding agents' skills in sync with a declarative config,
//! pinned to git commits and tree ids.
//!
//! Data flows one way: [`config`] → [`resolve`] (+ git fetch) → [`plan`] → [`install`] →
//! [`lock`]. [`report`] prints; [`cli`] parses flags and dispatches.

pub mod agents;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod dirs;
pub mod discover;
pub mod envvars;
pub mod error;
pub mod escape;
pub mod failpoint;
pub mod fsx;
pub mod git;
pub mod install;
pub mod lock;
pub mod malformed;
pub mod mcp;
pub mod pathsafe;
pub mod plan;
pub mod remote;
pub mod report;
pub mod request;
pub mod resolve;
pub mod scope;
pub mod source;
pub mod statcache;
pub mod sync;
pub mod tree;
pub mod trust;
pub mod verify;
