//! openraft's own storage test suite against the SQLite log store and the
//! metadata state machine: vote, log, purge, truncate, membership, applied
//! state and snapshot behaviour as openraft expects it.

use super::log_store::LogStore;
use super::snapshots::SnapshotStore;
use super::state_machine::{AfterApply, StateMachine};
use super::types::TypeConfig;
use crate::cluster::instruments::Instruments;
use crate::meta::Metadata;
use crate::meta::holders::DroppedCopy;
use crate::storage::BlobId;
use futures::future::BoxFuture;
use openraft::StorageError;
use openraft::errors::ErrorSource;
use openraft::testing::log::{StoreBuilder, Suite};
use std::sync::Arc;

struct NoEffects;

impl AfterApply for NoEffects {
    fn freed(&self, _blobs: Vec<BlobId>, _dropped: Vec<DroppedCopy>) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

fn failed(e: impl std::fmt::Display) -> StorageError<TypeConfig> {
    StorageError::read(ErrorSource::from_string(e))
}

struct OnDisk;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for OnDisk {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().map_err(failed)?;
        let log = LogStore::open(&dir.path().join("log.db")).map_err(failed)?;
        let meta = Metadata::open(&dir.path().join("metadata.db")).map_err(failed)?;
        let snapshots = SnapshotStore::open(dir.path().join("snapshots")).map_err(failed)?;
        let state_machine =
            StateMachine::new(meta, snapshots, Arc::new(NoEffects), Instruments::default());
        Ok((dir, log, state_machine))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_openraft_storage_suite() {
    Suite::test_all(OnDisk).await.unwrap();
}
