//! Where a blob's copies belong: rendezvous (highest-random-weight) hashing
//! of the blob id over the data-holding members. Every node ranks the same
//! way from the same membership, and a membership change moves only the
//! copies whose top ranks it changes: adding one node to N moves about
//! 1/(N+1) of each rank's copies to it, and removing one moves only the
//! copies it held.

use crate::storage::BlobId;
use std::collections::BTreeSet;

/// SplitMix64's finaliser: a bijective mix with full avalanche, so nearby
/// node ids and blob ids score independently.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 128 random bits of a blob id as two words.
fn words(blob: &BlobId) -> (u64, u64) {
    let hex = blob.as_str();
    let hi = u64::from_str_radix(&hex[..16], 16).unwrap_or(0);
    let lo = u64::from_str_radix(&hex[16..], 16).unwrap_or(0);
    (hi, lo)
}

/// The weight of `node` for `blob`; the highest weights hold the copies.
fn weight(blob: (u64, u64), node: u64) -> u64 {
    mix(blob.0 ^ mix(blob.1 ^ mix(node.wrapping_add(0x9e37_79b9_7f4a_7c15))))
}

/// `members` ranked for `blob`, best first.
pub fn ranked(blob: &BlobId, members: &BTreeSet<u64>) -> Vec<u64> {
    let words = words(blob);
    let mut scored: Vec<(u64, u64)> = members.iter().map(|&n| (weight(words, n), n)).collect();
    scored.sort_unstable_by(|a, b| b.cmp(a));
    scored.into_iter().map(|(_, n)| n).collect()
}

/// Copies a blob gets: the replication factor, capped at the members.
pub fn copies(factor: u32, members: usize) -> usize {
    (factor as usize).min(members).max(1)
}

/// How many of `copies` must be durable before a write is acknowledged:
/// a majority, so any two quorums of the same placement share a copy.
pub fn write_quorum(copies: usize) -> usize {
    copies / 2 + 1
}

/// The nodes that should hold `blob`.
pub fn targets(blob: &BlobId, members: &BTreeSet<u64>, factor: u32) -> Vec<u64> {
    let mut ranked = ranked(blob, members);
    ranked.truncate(copies(factor, members.len()));
    ranked
}

/// The nodes to write a new `blob` to: its targets, except that a target
/// known to be unreachable is replaced by the next-ranked member that is
/// not, so the write still makes every copy its placement asks for. A
/// stand-in's copy is surplus to the placement: once the target is back
/// the repair copies there and drops the stand-in's. Unreachable targets
/// are kept when too few others remain (the write quorum then decides).
pub fn write_targets(
    blob: &BlobId,
    members: &BTreeSet<u64>,
    factor: u32,
    unreachable: &BTreeSet<u64>,
) -> Vec<u64> {
    let wanted = copies(factor, members.len());
    let (reachable, down): (Vec<u64>, Vec<u64>) = ranked(blob, members)
        .into_iter()
        .partition(|node| !unreachable.contains(node));
    let mut chosen: Vec<u64> = reachable.into_iter().take(wanted).collect();
    let missing = wanted - chosen.len();
    chosen.extend(down.into_iter().take(missing));
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(n: usize) -> Vec<BlobId> {
        (0..n).map(|_| BlobId::random()).collect()
    }

    fn members(ids: impl IntoIterator<Item = u64>) -> BTreeSet<u64> {
        ids.into_iter().collect()
    }

    #[test]
    fn the_same_blob_and_members_give_the_same_targets() {
        let m = members(0..5);
        for blob in blobs(100) {
            let a = targets(&blob, &m, 3);
            assert_eq!(a, targets(&blob, &m, 3));
            assert_eq!(a.len(), 3);
            let unique: BTreeSet<u64> = a.iter().copied().collect();
            assert_eq!(unique.len(), 3, "targets are distinct nodes");
        }
    }

    #[test]
    fn the_factor_is_capped_at_the_members() {
        let blob = BlobId::random();
        assert_eq!(targets(&blob, &members([7]), 3), vec![7]);
        assert_eq!(targets(&blob, &members([1, 2]), 3).len(), 2);
        assert_eq!(targets(&blob, &members(0..5), 1).len(), 1);
        assert_eq!(copies(3, 0), 1);
    }

    #[test]
    fn adding_one_node_moves_about_one_in_n_plus_one() {
        let sample = blobs(20_000);
        for n in [3u64, 5, 8] {
            let before = members(0..n);
            let after = members(0..=n);
            let mut moved = 0usize;
            let mut total = 0usize;
            for blob in &sample {
                let old: BTreeSet<u64> = targets(blob, &before, 3).into_iter().collect();
                let new: BTreeSet<u64> = targets(blob, &after, 3).into_iter().collect();
                // Only the new node ever gains a copy; nothing moves between
                // old nodes.
                for node in new.difference(&old) {
                    assert_eq!(*node, n);
                }
                moved += new.difference(&old).count();
                total += new.len();
            }
            let share = moved as f64 / total as f64;
            let expected = 1.0 / (n as f64 + 1.0);
            assert!(
                (share - expected).abs() < 0.02,
                "{n}→{}: {share:.3} of copies moved, expected about {expected:.3}",
                n + 1
            );
        }
    }

    #[test]
    fn removing_a_node_moves_only_its_copies() {
        let before = members(0..5);
        let after = members([0, 1, 3, 4]);
        for blob in blobs(5_000) {
            let old = targets(&blob, &before, 3);
            let new = targets(&blob, &after, 3);
            let kept: Vec<u64> = old.iter().copied().filter(|&n| n != 2).collect();
            assert!(kept.iter().all(|n| new.contains(n)), "{old:?} → {new:?}");
        }
    }

    #[test]
    fn copies_spread_evenly() {
        let m = members(0..5);
        let mut held = [0usize; 5];
        let sample = blobs(30_000);
        for blob in &sample {
            for node in targets(blob, &m, 3) {
                held[node as usize] += 1;
            }
        }
        let mean = (sample.len() * 3) as f64 / 5.0;
        for count in held {
            assert!(((count as f64 - mean) / mean).abs() < 0.03, "{held:?}");
        }
    }

    #[test]
    fn writes_route_around_unreachable_targets() {
        let m = members(0..5);
        for blob in blobs(200) {
            let placed = targets(&blob, &m, 3);
            assert_eq!(write_targets(&blob, &m, 3, &members([])), placed);
            let down = members([placed[1]]);
            let chosen = write_targets(&blob, &m, 3, &down);
            assert_eq!(chosen.len(), 3);
            assert!(!chosen.contains(&placed[1]), "{chosen:?}");
            // The stand-in is the best-ranked member outside the placement,
            // and the other targets keep their copies.
            assert_eq!(chosen[..2], [placed[0], placed[2]]);
            assert_eq!(chosen[2], ranked(&blob, &m)[3]);
            let plan = super::super::plan::plan(&blob, &chosen, &m, &members([]), 3);
            assert_eq!(
                plan.copy_to,
                vec![placed[1]],
                "the target gets its copy later"
            );
            assert_eq!(plan.surplus, vec![chosen[2]], "then the stand-in's goes");
        }
    }

    #[test]
    fn too_few_reachable_members_keep_unreachable_targets() {
        let m = members(0..3);
        let blob = BlobId::random();
        let placed = targets(&blob, &m, 3);
        let down = members([placed[0]]);
        let chosen = write_targets(&blob, &m, 3, &down);
        assert_eq!(chosen.len(), 3, "{chosen:?}");
        assert_eq!(chosen[2], placed[0], "tried last, the quorum decides");
        assert_eq!(write_targets(&blob, &m, 3, &m).len(), 3);
    }

    #[test]
    fn quorums_are_majorities() {
        assert_eq!(write_quorum(1), 1);
        assert_eq!(write_quorum(2), 2);
        assert_eq!(write_quorum(3), 2);
        assert_eq!(write_quorum(4), 3);
        assert_eq!(write_quorum(5), 3);
        for n in 1..8 {
            // Two quorums of one placement always share a copy.
            assert!(2 * write_quorum(n) > n);
        }
    }
}
