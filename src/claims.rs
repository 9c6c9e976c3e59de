//! What one plan accounts for, written once for both ownership modes (issue 11).
//!
//! A kind owns what it writes either as an exclusive path (a skill folder: the key is the
//! path as the lock records it) or as a keyed entry inside a shared file (an MCP server: the
//! key is `(server, settings file)`). Whatever the mode, planning follows the same three rules:
//! - an item installed now **claims** its keys (the first claim names an owner, so a second
//!   source asking for the same key is a conflict);
//! - a broken item, or a source that failed as a whole, **keeps** the keys it had, as they were;
//! - every key the old lock tracks that nothing claims or keeps is **pruned**.
//!
//! And what happens at one destination is one table per mode: [`exclusive`] for a path only
//! kst writes, [`keyed`] for an entry among the user's own in a shared file.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use crate::item::{Action, Reason};

/// What the old lock says of an exclusive destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// kst did not install it.
    No,
    /// kst installed exactly what it would install now (the same git id).
    Same,
    /// kst installed something else there (an older version).
    Other,
}

/// The action at an exclusive destination (a skill folder; SPEC 8). `matches`: the disk holds
/// exactly what kst would install now; `exists`: something is there. `None` when it is not
/// kst's and in the way (a conflict unless `--force`).
pub fn exclusive(
    tracked: Tracked,
    mut matches: impl FnMut() -> bool,
    mut exists: impl FnMut() -> bool,
    force: bool,
) -> Option<Action> {
    match tracked {
        Tracked::Other => Some(Action::Updated),
        Tracked::Same if matches() => Some(Action::Unchanged),
        // Locked but not on disk (a fresh machine, a wiped folder).
        Tracked::Same if !exists() => Some(Action::Added),
        // Edited or damaged: kst's own copy is put back.
        Tracked::Same => Some(Action::Repaired),
        // Exactly the content kst would install, but not in the lock: a run that crashed
        // after installing and before writing the lock. Adopting it loses nothing (the bytes
        // are the same) and makes the next run converge.
        Tracked::No if matches() => Some(Action::Unchanged),
        Tracked::No if exists() && !force => None,
        Tracked::No => Some(Action::Added),
    }
}

/// The action for a keyed entry in a shared file, once kst may write it (the user has not
/// edited what kst wrote). `ours`: the lock says kst wrote this entry; `on_disk`: whether an
/// entry of that name is there, and whether it is exactly what kst writes now.
pub fn keyed(ours: bool, on_disk: Option<bool>) -> (Action, Option<Reason>) {
    match (ours, on_disk) {
        (false, None) => (Action::Added, None),
        // Exactly what kst would write, but not in the lock: a run that crashed after writing
        // the file and before writing the lock (SPEC 8); adopting it loses nothing. Anything
        // that differs in any way stays the user's.
        (false, Some(true)) => (Action::Unchanged, None),
        (false, Some(false)) => (Action::Skipped, Some(Reason::Conflict)),
        (true, None) => (Action::Repaired, None),
        (true, Some(true)) => (Action::Unchanged, None),
        (true, Some(false)) => (Action::Updated, None),
    }
}

/// The keys one plan claims or keeps.
#[derive(Debug)]
pub struct Claims<K> {
    claimed: HashMap<K, String>,
    kept: BTreeSet<K>,
}

impl<K> Default for Claims<K> {
    fn default() -> Self {
        Claims {
            claimed: HashMap::new(),
            kept: BTreeSet::new(),
        }
    }
}

impl<K: Eq + Hash + Ord + Clone> Claims<K> {
    /// An item installs to `key` now; `owner` names it in a later conflict message.
    pub fn claim(&mut self, key: K, owner: String) {
        self.claimed.entry(key).or_insert(owner);
    }

    /// Who claimed `key` in this plan, if anyone (a kept key has no owner: it is not installed).
    pub fn owner(&self, key: &K) -> Option<&str> {
        self.claimed.get(key).map(String::as_str)
    }

    /// A broken item or a failed source keeps `keys` as they were.
    pub fn keep(&mut self, keys: impl IntoIterator<Item = K>) {
        self.kept.extend(keys);
    }

    /// Is `key` claimed or kept (and so must not be pruned)?
    pub fn accounts_for(&self, key: &K) -> bool {
        self.claimed.contains_key(key) || self.kept.contains(key)
    }

    /// The keys of `tracked` (what the old lock records) that this plan prunes.
    pub fn pruned<'a>(&self, tracked: impl IntoIterator<Item = &'a K>) -> Vec<&'a K>
    where
        K: 'a,
    {
        tracked
            .into_iter()
            .filter(|k| !self.accounts_for(k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_ownership_tables() {
        use Action::*;
        let ex = |t, m, e, f| exclusive(t, || m, || e, f);
        assert_eq!(ex(Tracked::Same, true, true, false), Some(Unchanged));
        assert_eq!(ex(Tracked::Same, false, false, false), Some(Added));
        assert_eq!(ex(Tracked::Same, false, true, false), Some(Repaired));
        assert_eq!(ex(Tracked::Other, false, true, false), Some(Updated));
        assert_eq!(ex(Tracked::No, true, true, false), Some(Unchanged));
        assert_eq!(ex(Tracked::No, false, true, false), None, "a conflict");
        assert_eq!(ex(Tracked::No, false, true, true), Some(Added), "--force");
        assert_eq!(ex(Tracked::No, false, false, false), Some(Added));
        assert_eq!(keyed(false, None), (Added, None));
        assert_eq!(keyed(false, Some(true)), (Unchanged, None));
        assert_eq!(keyed(false, Some(false)), (Skipped, Some(Reason::Conflict)));
        assert_eq!(keyed(true, None), (Repaired, None));
        assert_eq!(keyed(true, Some(true)), (Unchanged, None));
        assert_eq!(keyed(true, Some(false)), (Updated, None));
    }

    #[test]
    fn prunes_only_what_nothing_claims_or_keeps() {
        let mut c: Claims<String> = Claims::default();
        c.claim("a".into(), "first".into());
        c.claim("a".into(), "second".into());
        c.keep(["b".to_string()]);
        assert_eq!(c.owner(&"a".to_string()), Some("first"));
        assert_eq!(c.owner(&"b".to_string()), None);
        let tracked = ["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(c.pruned(&tracked), vec![&"c".to_string()]);
    }
}
