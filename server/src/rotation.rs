//! Master key rotation: the data keys wrapped by old master keys are
//! unwrapped and wrapped anew by the target key, in batches, each swapped in
//! by one metadata command. No object data is read or rewritten.

use crate::app::App;
use crate::meta::Command;
use crate::meta::rewrap::{self, RewrapBatch, SealUpdate};

const BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("no such key in the keyring: {0}")]
    UnknownKey(String),
    #[error("the keyring is empty")]
    NoKeyring,
    #[error(transparent)]
    Meta(#[from] crate::meta::MetaError),
    #[error("cannot re-wrap a data key: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
}

/// Re-wraps every data key held by a master key in `from` (by default every
/// key but the target) with `to` (by default the keyring's default key).
/// Returns how many data keys were re-wrapped.
pub async fn rewrap(
    app: &App,
    from: Option<Vec<String>>,
    to: Option<String>,
) -> Result<usize, RotationError> {
    let keyring = &app.keyring;
    let to = match to {
        Some(id) => keyring
            .resolve(&id)
            .map(str::to_string)
            .ok_or(RotationError::UnknownKey(id))?,
        None => keyring
            .default_id()
            .map(str::to_string)
            .ok_or(RotationError::NoKeyring)?,
    };
    // Keys named but absent from the keyring can still be listed: their
    // data keys are then reported as failures, never silently skipped.
    let from: Vec<String> = match from {
        Some(ids) => ids.into_iter().filter(|id| *id != to).collect(),
        None => {
            let usage = app.meta.read(rewrap::master_key_usage).await?;
            usage
                .into_iter()
                .map(|(id, _)| id)
                .filter(|id| *id != to)
                .collect()
        }
    };
    if from.is_empty() {
        return Ok(0);
    }
    let mut total = 0;
    let mut after = None;
    loop {
        let (wanted, cursor) = (from.clone(), after.clone());
        let found = app
            .meta
            .read(move |c| rewrap::seals_to_rewrap(c, &wanted, cursor.as_ref(), BATCH))
            .await?;
        let Some((last, _)) = found.last() else {
            return Ok(total);
        };
        after = Some(last.clone());
        let mut updates = Vec::with_capacity(found.len());
        for (row, old) in found {
            let key = keyring.unwrap(&old)?;
            let new = keyring.wrap(&key, &to, old.blob_len)?;
            updates.push(SealUpdate { row, old, new });
        }
        let outcome = app
            .cluster
            .write(Command::Rewrap(RewrapBatch { updates }))
            .await?;
        total += outcome.count;
    }
}
