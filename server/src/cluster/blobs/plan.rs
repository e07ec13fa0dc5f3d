//! What the repair does for one blob, decided from the metadata alone: the
//! nodes that should hold it (its placement over the members that are not
//! draining), which of them lack a copy, where to copy from, and which
//! copies are surplus once every target has one. Pure, so the repair, the
//! drain and the rebalance are tested without a cluster.

use super::placement::targets;
use crate::storage::BlobId;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPlan {
    /// The nodes that should hold the blob, best first.
    pub desired: Vec<u64>,
    /// Desired nodes the metadata does not list as holders.
    pub copy_to: Vec<u64>,
    /// Listed holders that are members: where copies come from (empty for
    /// blobs written before holders were recorded: ask every member).
    pub sources: Vec<u64>,
    /// Listed holders outside the placement (after a scale-up, or being
    /// drained): dropped once every desired node holds a copy.
    pub surplus: Vec<u64>,
    /// Listed holders that are no longer members: their copies are gone.
    pub forget: Vec<u64>,
}

impl BlobPlan {
    /// Nothing to do.
    pub fn is_settled(&self) -> bool {
        self.copy_to.is_empty() && self.surplus.is_empty() && self.forget.is_empty()
    }

    /// Fewer live copies than the placement asks for.
    pub fn under_replicated(&self) -> bool {
        self.sources.len() < self.desired.len()
    }

    /// Copies on nodes the placement does not name.
    pub fn misplaced(&self) -> bool {
        !self.surplus.is_empty()
    }

    /// Whether the surplus may go once these desired nodes gained copies:
    /// only when every desired node then holds one, so no blob ever drops
    /// below its placement.
    pub fn surplus_may_go(&self, gained: &[u64]) -> bool {
        !self.desired.is_empty() && self.copy_to.iter().all(|node| gained.contains(node))
    }
}

/// Plans `blob`, listed on `holders`, for a group of `members` of which
/// `draining` are being drained.
pub fn plan(
    blob: &BlobId,
    holders: &[u64],
    members: &BTreeSet<u64>,
    draining: &BTreeSet<u64>,
    factor: u32,
) -> BlobPlan {
    let data: BTreeSet<u64> = members.difference(draining).copied().collect();
    let desired = if data.is_empty() {
        Vec::new()
    } else {
        targets(blob, &data, factor)
    };
    let sources: Vec<u64> = holders
        .iter()
        .copied()
        .filter(|n| members.contains(n))
        .collect();
    let forget: Vec<u64> = holders
        .iter()
        .copied()
        .filter(|n| !members.contains(n))
        .collect();
    let copy_to: Vec<u64> = desired
        .iter()
        .copied()
        .filter(|n| !sources.contains(n))
        .collect();
    let surplus: Vec<u64> = if holders.is_empty() {
        Vec::new()
    } else {
        sources
            .iter()
            .copied()
            .filter(|n| !desired.contains(n))
            .collect()
    };
    BlobPlan {
        desired,
        copy_to,
        sources,
        surplus,
        forget,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: impl IntoIterator<Item = u64>) -> BTreeSet<u64> {
        ids.into_iter().collect()
    }

    fn placed(blob: &BlobId, members: &BTreeSet<u64>) -> Vec<u64> {
        targets(blob, members, 3)
    }

    #[test]
    fn a_blob_on_its_targets_is_settled() {
        let members = set(0..5);
        let blob = BlobId::random();
        let holders = placed(&blob, &members);
        let p = plan(&blob, &holders, &members, &set([]), 3);
        assert!(p.is_settled(), "{p:?}");
        assert!(!p.under_replicated());
    }

    #[test]
    fn a_missing_copy_is_copied_from_the_others() {
        let members = set(0..3);
        let blob = BlobId::random();
        let p = plan(&blob, &[0, 2], &members, &set([]), 3);
        assert_eq!(p.copy_to, vec![1]);
        assert_eq!(p.sources, vec![0, 2]);
        assert!(p.under_replicated());
        assert!(p.surplus.is_empty());
    }

    #[test]
    fn holders_that_left_are_forgotten_and_replaced() {
        let members = set([0, 1, 2, 3]);
        let blob = BlobId::random();
        let desired = placed(&blob, &members);
        // One listed holder (7) is no longer a member.
        let holders: Vec<u64> = desired.iter().copied().take(2).chain([7]).collect();
        let p = plan(&blob, &holders, &members, &set([]), 3);
        assert_eq!(p.forget, vec![7]);
        assert_eq!(p.copy_to, vec![desired[2]]);
        assert!(p.under_replicated());
    }

    #[test]
    fn a_draining_member_loses_its_copies_only_after_they_are_replaced() {
        let members = set(0..4);
        for _ in 0..200 {
            let blob = BlobId::random();
            let before = placed(&blob, &members);
            let Some(&leaving) = before.first() else {
                continue;
            };
            let p = plan(&blob, &before, &members, &set([leaving]), 3);
            assert!(!p.desired.contains(&leaving));
            assert_eq!(p.surplus, vec![leaving]);
            assert_eq!(p.copy_to.len(), 1, "{p:?}");
            // The drained copy goes only once its replacement exists.
            assert!(!p.surplus_may_go(&[]));
            assert!(p.surplus_may_go(&p.copy_to));
            assert!(!p.under_replicated(), "a draining copy still counts");
        }
    }

    #[test]
    fn draining_every_member_moves_nothing() {
        let members = set(0..3);
        let blob = BlobId::random();
        let p = plan(&blob, &[0, 1, 2], &members, &members, 3);
        assert!(p.desired.is_empty());
        assert!(!p.surplus_may_go(&[]), "the last copies never go");
    }

    #[test]
    fn scale_up_moves_about_one_in_n_plus_one_and_drops_after_copying() {
        let before = set(0..3);
        let after = set(0..5);
        let mut copies = 0usize;
        let mut total = 0usize;
        for _ in 0..5_000 {
            let blob = BlobId::random();
            let holders = placed(&blob, &before);
            let p = plan(&blob, &holders, &after, &set([]), 3);
            // New copies only go to the new members; the surplus matches.
            assert!(p.copy_to.iter().all(|n| *n >= 3), "{p:?}");
            assert_eq!(p.copy_to.len(), p.surplus.len());
            copies += p.copy_to.len();
            total += 3;
        }
        let share = copies as f64 / total as f64;
        assert!((share - 0.4).abs() < 0.03, "{share}");
    }

    #[test]
    fn a_replaced_empty_node_gets_its_copies_back() {
        // 3 nodes, factor 3: node 1's copies were dropped when its data dir
        // was lost; the plan copies every blob back to it.
        let members = set(0..3);
        let blob = BlobId::random();
        let p = plan(&blob, &[0, 2], &members, &set([]), 3);
        assert_eq!(p.copy_to, vec![1]);
        assert!(p.surplus_may_go(&[1]));
    }

    #[test]
    fn blobs_without_recorded_holders_are_copied_to_their_targets() {
        let members = set(0..3);
        let blob = BlobId::random();
        let p = plan(&blob, &[], &members, &set([]), 3);
        assert_eq!(p.copy_to.len(), 3);
        assert!(p.sources.is_empty());
        assert!(p.surplus.is_empty());
    }
}
