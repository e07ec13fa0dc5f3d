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
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// What a read-index round tells the reads that waited for it: the index,
/// `None` to try again, or why there is none.
pub(crate) type RoundAnswer = Result<Option<u64>, String>;

/// A read waiting for a round: until when it waits, and where to answer.
pub(crate) type WaitingRead = (Instant, oneshot::Sender<RoundAnswer>);

/// Where reads queue for the next read-index round.
pub(crate) type ReadRounds = mpsc::UnboundedSender<WaitingRead>;

/// How many waiting reads one round answers at most.
const ROUND_MAX: usize = 1024;

/// How long the next round waits for the one before it. Rounds follow one
/// another so that the reads arriving meanwhile share the next; a round
/// stuck on an unreachable leader must not hold back the reads after it
/// (they may find a new leader).
const ROUND_PATIENCE: Duration = Duration::from_millis(50);

/// Serves read-index rounds: a round takes every read queued when it
/// starts, learns one read index (one lease check on the leader, one call
/// to it on a follower) and answers them all. A read never joins a round
/// that started before it arrived — that round's index could predate a
/// write acknowledged before the read — so under load many concurrent
/// reads share one confirmation instead of making one each.
pub(crate) async fn serve_rounds(
    cluster: Arc<Cluster>,
    mut queue: mpsc::UnboundedReceiver<WaitingRead>,
) {
    let mut waiting = Vec::new();
    let mut running: Option<tokio::task::JoinHandle<()>> = None;
    while queue.recv_many(&mut waiting, ROUND_MAX).await > 0 {
        if let Some(previous) = running.as_mut() {
            let _ = tokio::time::timeout(ROUND_PATIENCE, previous).await;
        }
        // Reads that queued while the previous round ended arrived before
        // this one starts: they may share it.
        while waiting.len() < ROUND_MAX {
            match queue.try_recv() {
                Ok(read) => waiting.push(read),
                Err(_) => break,
            }
        }
        let reads = std::mem::take(&mut waiting);
        running = Some(tokio::spawn(run_round(cluster.clone(), reads)));
    }
}

async fn run_round(cluster: Arc<Cluster>, reads: Vec<WaitingRead>) {
    // No longer than its most patient read waits.
    let Some(deadline) = reads.iter().map(|(until, _)| *until).max() else {
        return;
    };
    let answer = cluster
        .read_index_once(deadline)
        .await
        .map_err(|e| match e {
            MetaError::Unavailable(reason) => reason,
            other => other.to_string(),
        });
    cluster
        .instruments
        .read_round_reads
        .observe(reads.len() as f64);
    for (_, read) in reads {
        let _ = read.send(answer.clone());
    }
}

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
            let (answer, round) = oneshot::channel();
            if self.read_rounds.send((deadline, answer)).is_err() {
                return Err(unavailable("the node is stopping"));
            }
            let index = tokio::time::timeout_at(deadline, round)
                .await
                .map_err(|_| unavailable("no read index from the leader in time"))?
                .map_err(|_| unavailable("the node is stopping"))?;
            match index {
                Ok(Some(index)) => return self.wait_applied(index, deadline).await,
                Ok(None) => continue,
                Err(reason) => return Err(unavailable(&reason)),
            }
        }
    }

    /// One try at learning the read index: here on the leader, else from
    /// it; `None` to try again (the leadership moved).
    async fn read_index_once(&self, deadline: Instant) -> Result<Option<u64>, MetaError> {
        match self.read_index_here(deadline).await? {
            Some(index) => Ok(Some(index)),
            None => self.read_index_from_leader(deadline).await,
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
