//! Blob writes to Google Cloud Storage through its JSON API: one media upload
//! for a small blob, a resumable upload fed part by part for a large one.
//!
//! object_store writes through GCS's XML API, which is fine on GCS itself but
//! which fake-gcs-server (the emulator the tests run against) does not route;
//! the JSON API is what Google's own client libraries use, so every write is
//! tested here against the same protocol it speaks in production. Reads,
//! listings and deletes stay with object_store, and so do credentials: the
//! bearer token comes from its provider (service-account key, workload
//! identity, application default credentials).

use super::{Parts, redact};
use crate::storage::StorageError;
use bytes::Bytes;
use object_store::gcp::GcpCredentialProvider;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Client, Response, StatusCode};
use std::time::Duration;

/// GCS resumable uploads take chunks in multiples of this (all but the last).
pub const CHUNK_GRANULE: u64 = 256 * 1024;

pub struct GcsUploads {
    backend: String,
    http: Client,
    /// `{base}/upload/storage/v1/b/{bucket}/o`
    upload_url: String,
    credentials: GcpCredentialProvider,
    max_attempts: u32,
}

impl GcsUploads {
    pub fn new(
        backend: &str,
        base_url: &str,
        bucket: &str,
        credentials: GcpCredentialProvider,
        max_attempts: u32,
        http: Client,
    ) -> Self {
        GcsUploads {
            backend: backend.to_string(),
            http,
            upload_url: format!(
                "{}/upload/storage/v1/b/{}/o",
                base_url.trim_end_matches('/'),
                utf8_percent_encode(bucket, NON_ALPHANUMERIC)
            ),
            credentials,
            max_attempts: max_attempts.max(1),
        }
    }

    fn url(&self, upload_type: &str, name: &str) -> String {
        format!(
            "{}?uploadType={upload_type}&name={}",
            self.upload_url,
            utf8_percent_encode(name, NON_ALPHANUMERIC)
        )
    }

    async fn bearer(&self) -> Result<Option<String>, StorageError> {
        let credential =
            self.credentials
                .get_credential()
                .await
                .map_err(|e| StorageError::Upstream {
                    backend: self.backend.clone(),
                    reason: format!(
                        "no credentials, check the credentials: {}",
                        redact(&e.to_string())
                    ),
                })?;
        Ok((!credential.bearer.is_empty()).then(|| credential.bearer.clone()))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, StorageError> {
        let request = match self.bearer().await? {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send().await.map_err(|e| StorageError::Busy {
            backend: self.backend.clone(),
            reason: redact(&e.to_string()),
        })
    }

    /// Turns an answer the upload did not expect into the error the S3
    /// client sees: 503 SlowDown for what is worth a retry, a refusal else.
    async fn refused(&self, what: &str, response: Response) -> StorageError {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let reason = redact(&format!(
            "{what}: status code: {}, {}",
            status.as_u16(),
            body.chars().take(300).collect::<String>()
        ));
        let backend = self.backend.clone();
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => StorageError::Upstream {
                backend,
                reason: format!("access denied, check the credentials: {reason}"),
            },
            StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => {
                StorageError::Busy { backend, reason }
            }
            s if s.is_server_error() => StorageError::Busy { backend, reason },
            _ => StorageError::Upstream { backend, reason },
        }
    }

    /// Writes a whole small blob in one request. A repeated media upload of
    /// the same bytes to the same name is harmless, so throttling, 5xx and
    /// connection failures are retried with backoff, `max_attempts` in all.
    pub async fn put_whole(&self, name: &str, data: Bytes) -> Result<(), StorageError> {
        let mut attempt = 1;
        loop {
            let sent = self
                .send(
                    self.http
                        .post(self.url("media", name))
                        .header("content-type", "application/octet-stream")
                        .body(data.clone()),
                )
                .await;
            let error = match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => self.refused("media upload", response).await,
                Err(e) => e,
            };
            if !matches!(error, StorageError::Busy { .. }) || attempt >= self.max_attempts {
                return Err(error);
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Streams a large blob as a resumable upload: `first`, then the parts
    /// `rest` yields, each sent once the next is known (the last one tells
    /// GCS the total size). At most two parts are held in memory. A failed
    /// upload is cancelled so no session lingers.
    pub async fn put_streamed(
        &self,
        name: &str,
        first: Bytes,
        mut rest: Parts,
    ) -> Result<u64, StorageError> {
        let session = self.start_session(name).await?;
        let sent: Result<u64, StorageError> = async {
            let mut offset = 0u64;
            let mut current = first;
            loop {
                let next = rest.next().await?;
                let end = offset + current.len() as u64;
                let total = match next {
                    Some(_) => "*".to_string(),
                    None => end.to_string(),
                };
                let range = format!("bytes {offset}-{}/{total}", end - 1);
                let response = self
                    .send(
                        self.http
                            .put(&session)
                            .header("content-range", range)
                            .body(current),
                    )
                    .await?;
                match (next, response.status().as_u16()) {
                    (Some(following), 308) => {
                        offset = end;
                        current = following;
                    }
                    (None, 200 | 201) => return Ok(end),
                    _ => return Err(self.refused("resumable upload", response).await),
                }
            }
        }
        .await;
        if sent.is_err() {
            // 499 is GCS's answer to a cancelled session; anything else
            // only leaves a session that expires on its own within a week.
            if let Err(e) = self.send(self.http.delete(&session)).await {
                tracing::warn!(backend = %self.backend, error = %e, "cannot cancel a resumable upload");
            }
        }
        sent
    }

    async fn start_session(&self, name: &str) -> Result<String, StorageError> {
        let response = self
            .send(
                self.http
                    .post(self.url("resumable", name))
                    .header("content-type", "application/json")
                    .body("{}"),
            )
            .await?;
        if !response.status().is_success() {
            return Err(self.refused("starting a resumable upload", response).await);
        }
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| StorageError::Upstream {
                backend: self.backend.clone(),
                reason: "a resumable upload was started without a session location".into(),
            })
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64 << attempt.min(6))
}

/// The part size rounded up to what resumable uploads accept.
pub fn chunk_size(part_size: u64) -> u64 {
    part_size.div_ceil(CHUNK_GRANULE).max(1) * CHUNK_GRANULE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_whole_granules() {
        assert_eq!(chunk_size(1), CHUNK_GRANULE);
        assert_eq!(chunk_size(8 * 1024 * 1024), 8 * 1024 * 1024);
        assert_eq!(chunk_size(5 * 1000 * 1000), 20 * CHUNK_GRANULE);
    }
}
