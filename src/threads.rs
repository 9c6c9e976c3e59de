//! One thread per source, results in config order: how kst resolves and fetches its sources.
//! Each source's git work is network-bound and independent of the others; two sources in the
//! same cache repository are serialised by that repository's lock, not here.

/// Run `job` on every item, each on its own scoped thread, and return the results in the
/// items' order. A panicking job panics the caller, naming `what` ran.
pub fn each<T: Sync, R: Send>(items: &[T], what: &str, job: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let job = &job;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .iter()
            .map(|item| s.spawn(move || job(item)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| panic!("{what} thread panicked"))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_the_items_order() {
        let items: Vec<u64> = (0..16).rev().collect();
        let out = super::each(&items, "a test", |&n| {
            // Later items finish first.
            std::thread::sleep(std::time::Duration::from_millis(16 - n));
            n * 2
        });
        assert_eq!(out, items.iter().map(|n| n * 2).collect::<Vec<_>>());
    }
}
