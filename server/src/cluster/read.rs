//! Consistent reads (DESIGN §7): before a request reads metadata, the node
//! learns the leader's read index (the leader confirms it still leads; a
//! follower asks it) and waits until it has applied that far. A node cut
//! off from the majority cannot, and answers 503 instead of stale data.

use super::write::unavailable;
use super::{Cluster, Refused, paths};
use crate::meta::MetaError;
use bleepstore_config::ReadConsistency;
use openraft::ReadPolicy;
use openraft::errors::{LinearizableReadError, RaftError};
use std::time::Duration;
use tokio::time::Instant;

impl Cluster {
    /// Returns once this node's metadata reflects every write acknowledged
    /// before the call (a no-op with `read_consistency: local` and on a
    /// standalone server, whose local state is always current).
    pub async fn read_barrier(&self) -> Result<(), MetaError> {
        if self.settings.read_consistency == ReadConsistency::Local {
            return Ok(());
        }
        self.caught_up().await
    }

    /// Returns once this node has applied every write committed before the
    /// call, whatever `read_consistency` says: for work that must not act
    /// on a stale view (the orphan sweep).
    pub async fn caught_up(&self) -> Result<(), MetaError> {
        if !self.enabled {
            return Ok(());
        }
        let deadline = Instant::now() + self.settings.request_timeout;
        loop {
            let index = match self.read_index_here(deadline).await? {
                Some(index) => index,
                None => match self.read_index_from_leader(deadline).await? {
                    Some(index) => index,
                    None => continue,
                },
            };
            return self.wait_applied(index, deadline).await;
        }
    }

    /// The read index, if this node is the leader and can confirm it: the
    /// index every acknowledged write is at or below.
    pub(crate) async fn read_index_here(
        &self,
        deadline: Instant,
    ) -> Result<Option<u64>, MetaError> {
        if !self.raft.is_leader() {
            return Ok(None);
        }
        let linearizer = tokio::time::timeout_at(
            deadline,
            self.raft.get_read_linearizer(ReadPolicy::LeaseRead),
        )
        .await
        .map_err(|_| unavailable("the leader could not confirm its leadership in time"))?;
        match linearizer {
            Ok(linearizer) => Ok(Some(linearizer.read_log_id().index())),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => Ok(None),
            Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(e))) => {
                Err(unavailable(&format!("no quorum: {e}")))
            }
            Err(RaftError::Fatal(fatal)) => {
                Err(unavailable(&format!("the Raft node stopped: {fatal}")))
            }
        }
    }

    /// Asks the leader for its read index; `None` to try again (the
    /// leadership moved, possibly to this node).
    async fn read_index_from_leader(&self, deadline: Instant) -> Result<Option<u64>, MetaError> {
        let leader = self.with_metrics(|m| m.current_leader);
        let Some(leader) = leader.filter(|&l| l != self.node_id) else {
            self.wait_for_leader(deadline).await?;
            return Ok(None);
        };
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return Err(unavailable("no read index from the leader in time"));
        }
        let answer: Result<Result<u64, Refused>, _> =
            self.call(leader, paths::READ_INDEX, &(), timeout).await;
        match answer {
            Ok(Ok(index)) => Ok(Some(index)),
            Ok(Err(Refused::NotLeader { .. })) => {
                self.wait_for_leader(deadline).await?;
                Ok(None)
            }
            Ok(Err(refused)) => Err(unavailable(&format!("the leader: {refused}"))),
            Err(e) => {
                tracing::debug!(leader, error = %e, "read index from the leader failed");
                // The leader may be gone: wait for a (possibly new) one.
                tokio::time::sleep(Duration::from_millis(50).min(timeout)).await;
                if Instant::now() >= deadline {
                    return Err(unavailable(&format!("cannot reach the leader: {e}")));
                }
                Ok(None)
            }
        }
    }

    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), MetaError> {
        if self.with_metrics(|m| m.last_applied.is_some_and(|applied| applied.index >= index)) {
            return Ok(());
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(remaining))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map(|_| ())
            .map_err(|_| unavailable("this node did not catch up with the leader in time"))
    }
}
