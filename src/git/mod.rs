//! Git sources: the content-addressed cache of bare repositories, narrow fetches with libgit2,
//! and reading packs straight from the object database.
//!
//! One type per stage, as in cargo: [`Cache`] (the root folder) → [`GitDatabase`] (one bare
//! repository per canonical URL) → [`GitPack`] (one commit's files, never checked out).

mod cache;
mod fetch;
mod pack;
pub mod setup;

pub use cache::{Cache, GitDatabase, looks_damaged, open_bare};
pub use fetch::{
    CapKind, Corrupt, FetchCapExceeded, FetchCaps, FetchMode, MissingCommit, Progress, Resolution,
    Want, fetch_private, fetch_tag, list_remote, resolve,
};
pub use pack::{GitPack, IndexEntry, MAX_SKILL_MD, TreeIndex, entry_at, path_id, tree_index};
