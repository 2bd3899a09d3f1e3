//! Which worker runs which task: consistent hashing with virtual nodes over
//! `(connector name, task index)`. Every worker computes the same answer from the same member
//! list; the hash never includes a task's config, so editing a connector does not move its tasks,
//! and adding or removing one of N workers moves about 1/N of them.

use std::collections::BTreeMap;

/// Points each worker puts on the ring: more points, more even shares.
pub const VIRTUAL_NODES: u32 = 128;

/// A stable 64-bit hash (FNV-1a from the `fnv` crate, then a finalizer so nearby inputs
/// spread over the ring). Every worker of a cluster must compute the same value, across
/// versions too (a rolling upgrade mixes them): the test below pins it.
fn hash(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut fnv = fnv::FnvHasher::default();
    fnv.write(bytes);
    let mut h = fnv.finish();
    // splitmix64's finalizer.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The ring of one member list.
#[derive(Clone, Debug)]
pub struct TaskAllocator {
    ring: BTreeMap<u64, String>,
}

impl TaskAllocator {
    /// A ring over `members` (worker ids); order does not matter.
    pub fn new<'a>(members: impl IntoIterator<Item = &'a String>) -> Self {
        let mut ring = BTreeMap::new();
        for member in members {
            for v in 0..VIRTUAL_NODES {
                ring.insert(hash(format!("{member}#{v}").as_bytes()), member.clone());
            }
        }
        TaskAllocator { ring }
    }

    /// The worker that owns task `task` of `connector`; `None` with no members.
    pub fn owner(&self, connector: &str, task: u32) -> Option<&str> {
        let point = hash(format!("{connector}/{task}").as_bytes());
        self.ring
            .range(point..)
            .next()
            .or_else(|| self.ring.iter().next())
            .map(|(_, m)| m.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("worker-{i}")).collect()
    }

    fn owners(a: &TaskAllocator, tasks: u32) -> Vec<String> {
        (0..tasks)
            .map(|t| a.owner(&format!("c{}", t % 7), t).unwrap().to_string())
            .collect()
    }

    #[test]
    fn same_members_same_answer_in_any_order() {
        let m = members(3);
        let mut reversed = m.clone();
        reversed.reverse();
        assert_eq!(
            owners(&TaskAllocator::new(&m), 500),
            owners(&TaskAllocator::new(&reversed), 500)
        );
    }

    #[test]
    fn adding_one_of_four_moves_about_a_quarter() {
        let before = owners(&TaskAllocator::new(&members(3)), 2400);
        let after = owners(&TaskAllocator::new(&members(4)), 2400);
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        // Ideal: 600 of 2400 move, all of them to the new worker.
        assert!((400..=800).contains(&moved), "moved {moved}");
        assert!(
            before
                .iter()
                .zip(&after)
                .filter(|(a, b)| a != b)
                .all(|(_, b)| b == "worker-4")
        );
    }

    #[test]
    fn shares_are_roughly_even() {
        let owners = owners(&TaskAllocator::new(&members(3)), 3000);
        for m in members(3) {
            let share = owners.iter().filter(|o| **o == m).count();
            assert!((700..=1300).contains(&share), "{m}: {share}");
        }
    }

    #[test]
    fn the_hash_is_pinned_so_versions_agree_during_a_rolling_upgrade() {
        // Values of the hash as first released (FNV-1a 64 + splitmix64's finalizer).
        assert_eq!(hash(b"worker-1#0"), 0xa0008bf8f3943f94);
        assert_eq!(hash(b"orders/3"), 0x88282b04abc50720);
    }

    #[test]
    fn no_members_no_owner() {
        assert_eq!(TaskAllocator::new(&Vec::new()).owner("c", 0), None);
    }
}
