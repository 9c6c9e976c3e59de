//! What one plan accounts for, written once for both ownership modes (issue 11).
//!
//! A kind owns what it writes either as an exclusive path (a skill folder: the key is the
//! path as the lock records it) or as a keyed entry inside a shared file (an MCP server: the
//! key is `(server, settings file)`). Whatever the mode, planning follows the same three rules:
//! - an item installed now **claims** its keys (the first claim names an owner, so a second
//!   source asking for the same key is a conflict);
//! - a broken item, or a source that failed as a whole, **keeps** the keys it had, as they were;
//! - every key the old lock tracks that nothing claims or keeps is **pruned**.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

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
