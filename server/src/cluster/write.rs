//! Writes: a command becomes a proposal in the Raft log. A node that is not
//! the leader sends the proposal (not the S3 request) to the leader over
//! the internal API. A proposal keeps its id when it is resent after a lost
//! answer or a leader change, and the state machine answers a resent
//! proposal from its record instead of applying it twice.

use super::proposal::{Answer, Proposal};
use super::raft::outcome_of;
use super::raft::types::TypeConfig;
use super::transport::TransportError;
use super::{Cluster, Refused, paths};
use crate::meta::{Command, MetaError, Outcome};
use openraft::errors::{ClientWriteError, ForwardToLeader, RaftError};
use std::time::Duration;
use tokio::time::Instant;

/// Pause before trying again when no leader is known or it just moved.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

impl Cluster {
    /// Commits `command` through the group and returns what applying it did.
    pub async fn write(&self, command: Command) -> Result<Outcome, MetaError> {
        let deadline = Instant::now() + self.settings.request_timeout;
        outcome_of(self.propose(Proposal::new(command), deadline).await?)
    }

    /// Commits `proposal`, forwarding it to the leader when this node is
    /// not the leader, until `deadline`.
    pub(crate) async fn propose(
        &self,
        proposal: Proposal,
        deadline: Instant,
    ) -> Result<Answer, MetaError> {
        loop {
            let forward = match self.propose_here(&proposal, deadline).await? {
                Ok(answer) => return Ok(answer),
                Err(forward) => forward,
            };
            let leader = forward.leader_id.filter(|&leader| leader != self.node_id);
            match leader {
                Some(leader) if self.enabled => {
                    match self.forward(leader, &proposal, deadline).await {
                        Ok(answer) => return Ok(answer),
                        Err(Retry::Later) => self.pause(deadline).await?,
                        Err(Retry::Never(e)) => return Err(e),
                    }
                }
                _ => self.wait_for_leader(deadline).await?,
            }
        }
    }

    /// Proposes through the local Raft node; `Err(forward)` when another
    /// node leads (or none is known).
    pub(crate) async fn propose_here(
        &self,
        proposal: &Proposal,
        deadline: Instant,
    ) -> Result<Result<Answer, ForwardToLeader<TypeConfig>>, MetaError> {
        let written =
            match tokio::time::timeout_at(deadline, self.raft.client_write(proposal.clone())).await
            {
                Err(_) => return Err(unavailable("the write was not committed in time")),
                Ok(written) => written,
            };
        match written {
            Ok(response) => Ok(Ok(response.data)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Ok(Err(forward))
            }
            // The entry was replaced by another leader's log: it may or may
            // not commit there. Proposing it again is safe (the same id is
            // answered, not applied, a second time).
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(forward))) => {
                Ok(Err(forward))
            }
            Err(RaftError::APIError(other)) => Err(MetaError::Corrupt(format!(
                "the Raft log refused a command: {other}"
            ))),
            Err(RaftError::Fatal(fatal)) => {
                Err(unavailable(&format!("the Raft node stopped: {fatal}")))
            }
        }
    }

    async fn forward(
        &self,
        leader: u64,
        proposal: &Proposal,
        deadline: Instant,
    ) -> Result<Answer, Retry> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return Err(Retry::Never(unavailable(
                "the write was not committed in time",
            )));
        }
        self.instruments.forwarded.inc();
        let answer: Result<Result<Answer, Refused>, TransportError> =
            self.call(leader, paths::PROPOSE, proposal, timeout).await;
        match answer {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(Refused::NotLeader { .. })) => Err(Retry::Later),
            Ok(Err(Refused::Unavailable(reason))) => {
                tracing::debug!(leader, %reason, "leader could not commit; retrying");
                Err(Retry::Later)
            }
            Ok(Err(other)) => Err(Retry::Never(MetaError::Corrupt(format!(
                "the leader refused the write: {other}"
            )))),
            // Delivered or not, resending the same proposal is safe.
            Err(e) => {
                tracing::debug!(leader, error = %e, "forwarding a write failed; retrying");
                Err(Retry::Later)
            }
        }
    }

    async fn pause(&self, deadline: Instant) -> Result<(), MetaError> {
        if Instant::now() + RETRY_PAUSE >= deadline {
            return Err(unavailable("no leader could commit the write in time"));
        }
        tokio::time::sleep(RETRY_PAUSE).await;
        Ok(())
    }

    /// Waits until some node is known to lead.
    pub(crate) async fn wait_for_leader(&self, deadline: Instant) -> Result<(), MetaError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(unavailable("no leader is known"));
        }
        let me = self.node_id;
        let waited = self
            .raft
            .wait(Some(remaining))
            .metrics(
                |m| {
                    m.current_leader
                        .is_some_and(|l| l != me || m.state.is_leader())
                },
                "a leader",
            )
            .await;
        match waited {
            Ok(_) => self.pause(deadline).await,
            Err(_) => Err(unavailable("no leader is known")),
        }
    }
}

enum Retry {
    Later,
    Never(MetaError),
}

pub(crate) fn unavailable(reason: &str) -> MetaError {
    MetaError::Unavailable(reason.to_string())
}
