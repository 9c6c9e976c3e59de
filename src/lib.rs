//! Kasetto (git-native): keep AI coding agents' skills and MCP servers in sync with a
//! declarative config, pinned to git commits and tree ids.
//!
//! Layers import downward only (docs/architecture.md): base ([`fsx`], [`pathsafe`], [`error`],
//! [`envvars`], [`escape`], [`printer`], [`threads`], [`oid`], [`source`], [`request`], [`claims`], [`machine`]) → [`git`] → model ([`config`], [`lock`],
//! [`agents`], [`scope`]) → resolve/plan per kind ([`resolve`], [`plan`], [`install`], [`mcp`])
//! → [`pipeline`] and [`workspace`] → [`commands`] → [`cli`]. [`report`] prints.
//!
//! Data flows one way: [`config`] → [`resolve`] (+ git fetch) → [`plan`] → [`install`] →
//! [`lock`].

pub mod agents;
pub mod audit;
pub mod claims;
pub mod cli;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod dirs;
pub mod discover;
pub mod envvars;
pub mod error;
pub mod escape;
pub mod failpoint;
pub mod files;
pub mod fsat;
pub mod fsx;
pub mod git;
pub mod install;
pub mod instructions;
pub mod item;
pub mod lock;
pub mod lockmemo;
pub mod machine;
pub mod malformed;
pub mod mcp;
pub mod mdasset;
pub mod migrate;
pub mod oid;
pub mod pathsafe;
pub mod pin;
pub mod pipeline;
pub mod plan;
pub mod printer;
pub mod remote;
pub mod report;
pub mod request;
pub mod resolve;
pub mod runmemo;
pub mod scope;
pub mod shared_file;
pub mod signed;
pub mod slash;
pub mod source;
pub mod statcache;
pub mod suggest;
pub mod threads;
pub mod tree;
pub mod trust;
pub mod workspace;
