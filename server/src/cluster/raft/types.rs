//! The type configuration of BleepStore's Raft group and short names for the
//! openraft types the rest of the glue uses.

use super::snapshots::SnapshotFile;
use super::state_machine::StateMachine;
use crate::cluster::proposal::{Answer, Proposal};
use openraft::type_config::alias;

openraft::declare_raft_types!(
    /// Commands travel as [`Proposal`]s and come back as [`Answer`]s; nodes
    /// are numbered (the StatefulSet ordinal) and known by their address.
    pub TypeConfig:
        D = Proposal,
        R = Answer,
        NodeId = u64,
        Node = openraft::BasicNode,
);

pub type NodeId = u64;
pub type Node = openraft::BasicNode;
pub type LogId = alias::LogIdOf<TypeConfig>;
pub type Vote = alias::VoteOf<TypeConfig>;
pub type Entry = alias::EntryOf<TypeConfig>;
pub type StoredMembership = alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = alias::SnapshotOf<TypeConfig, SnapshotFile>;
pub type Raft = openraft::Raft<TypeConfig, StateMachine>;
