//! Blobs as objects in an S3 bucket, through aws-sdk-s3. A blob that fits
//! in one part goes up with one PutObject; a larger one as a multipart
//! upload while it streams in (a few parts in memory at most), aborted if
//! anything fails. Ranged reads are ranged GETs.

use super::{
    CONNECT_TIMEOUT, Head, PARTS_IN_FLIGHT, Parts, READ_TIMEOUT, blob_of, object_key, read_head,
    redact,
};
use crate::storage::{BlobId, BlobInfo, BlobStore, BodyStream, StorageError, joined};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bleepstore_config::AwsBackendConfig;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// Parts after which the part size doubles: S3 allows 10,000 parts, and we
/// do not know a blob's length before it has arrived.
const PARTS_PER_SIZE: i32 = 1000;
/// Multipart uploads older than this found at start-up were abandoned (a
/// crash); younger ones may belong to another node of the cluster.
const STALE_UPLOAD: Duration = Duration::from_secs(3600);

pub struct AwsBlobStore {
    name: String,
    client: Client,
    bucket: String,
    prefix: String,
    part_size: usize,
}

impl AwsBlobStore {
    /// Builds the client; `check` (run by the caller at start-up) tells
    /// whether the bucket and credentials work.
    pub async fn connect(name: &str, c: &AwsBackendConfig) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &c.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let (Some(key), Some(secret)) = (
            c.access_key_id.as_ref().and_then(|s| s.expose()),
            c.secret_access_key.as_ref().and_then(|s| s.expose()),
        ) {
            let token = c
                .session_token
                .as_ref()
                .and_then(|s| s.expose())
                .map(str::to_string);
            loader = loader.credentials_provider(Credentials::new(
                key,
                secret,
                token,
                None,
                "bleepstore-config",
            ));
        }
        let shared = loader.load().await;
        let region = shared
            .region()
            .cloned()
            .unwrap_or_else(|| Region::new("us-east-1"));
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .region(region)
            .force_path_style(c.force_path_style)
            .retry_config(RetryConfig::standard().with_max_attempts(c.max_attempts.max(1)))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(READ_TIMEOUT)
                    .build(),
            )
            // Our own CRC32C guards every blob end to end; S3-compatible
            // upstreams vary in their support of flexible checksums.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &c.endpoint {
            config = config.endpoint_url(endpoint);
        }
        AwsBlobStore {
            name: name.to_string(),
            client: Client::from_conf(config.build()),
            bucket: c.bucket.clone(),
            prefix: c.prefix.clone(),
            part_size: c.part_size.0 as usize,
        }
    }

    fn key(&self, id: &BlobId) -> String {
        object_key(&self.prefix, id)
    }

    fn error<E>(&self, e: SdkError<E, HttpResponse>) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        classify(&self.name, e)
    }

    async fn put_whole(&self, key: &str, data: Bytes) -> Result<u64, StorageError> {
        let len = data.len() as u64;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(len as i64)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| self.error(e))?;
        Ok(len)
    }

    async fn put_multipart(
        &self,
        key: &str,
        first: Bytes,
        rest: BodyStream,
    ) -> Result<u64, StorageError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let sent = self.send_parts(key, &upload_id, first, rest).await;
        let finished = match sent {
            Ok((parts, len)) => self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map(|_| len)
                .map_err(|e| self.error(e)),
            Err(e) => Err(e),
        };
        if finished.is_err() {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(backend = %self.name, error = %self.error(e), "cannot abort an upstream multipart upload; the start-up recovery will");
            }
        }
        finished
    }

    /// Uploads the parts, a few at a time, while the rest of the body arrives.
    async fn send_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: Bytes,
        rest: BodyStream,
    ) -> Result<(Vec<CompletedPart>, u64), StorageError> {
        type Sending = tokio::task::JoinHandle<Result<CompletedPart, StorageError>>;
        let mut parts = Parts::new(rest, self.part_size);
        let mut in_flight: VecDeque<Sending> = VecDeque::new();
        let mut done = Vec::new();
        let mut number = 0i32;
        let mut total = 0u64;
        let mut next = Some(first);
        let result = loop {
            let data = match next.take() {
                Some(data) => data,
                None => match parts.next().await {
                    Ok(Some(data)) => data,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                },
            };
            number += 1;
            total += data.len() as u64;
            if number % PARTS_PER_SIZE == 0 {
                parts.size = parts.size.saturating_mul(2);
            }
            if in_flight.len() >= PARTS_IN_FLIGHT
                && let Some(oldest) = in_flight.pop_front()
            {
                match joined(oldest).await {
                    Ok(part) => done.push(part),
                    Err(e) => break Err(e),
                }
            }
            in_flight.push_back(tokio::spawn(self.upload_part(key, upload_id, number, data)));
        };
        if let Err(e) = result {
            in_flight.iter().for_each(|t| t.abort());
            return Err(e);
        }
        for sending in in_flight {
            done.push(joined(sending).await?);
        }
        Ok((done, total))
    }

    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        data: Bytes,
    ) -> impl Future<Output = Result<CompletedPart, StorageError>> + Send + 'static {
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(data.len() as i64)
            .body(ByteStream::from(data));
        let backend = self.name.clone();
        async move {
            let out = request.send().await.map_err(|e| classify(&backend, e))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build())
        }
    }

    /// Aborts multipart uploads a crash left behind.
    async fn abort_stale_uploads(&self) -> Result<usize, StorageError> {
        let cutoff = SystemTime::now() - STALE_UPLOAD;
        let mut aborted = 0;
        let mut key_marker: Option<String> = None;
        let mut upload_marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(upload_marker.take())
                .send()
                .await
                .map_err(|e| self.error(e))?;
            for upload in page.uploads() {
                let stale = upload
                    .initiated()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .is_some_and(|t| t < cutoff);
                if let (true, Some(key), Some(id)) = (stale, upload.key(), upload.upload_id()) {
                    self.client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(id)
                        .send()
                        .await
                        .map_err(|e| self.error(e))?;
                    aborted += 1;
                }
            }
            if !page.is_truncated().unwrap_or(false) {
                return Ok(aborted);
            }
            key_marker = page.next_key_marker().map(str::to_string);
            upload_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() {
                return Ok(aborted);
            }
        }
    }
}

/// Sorts an SDK failure into busy (throttled, 5xx, unreachable: retry
/// later) or refused for good.
fn classify<E>(backend: &str, e: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let backend = backend.to_string();
    let busy = match &e {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            status == 429
                || status >= 500
                || matches!(
                    ctx.err().code().unwrap_or(""),
                    "SlowDown" | "Throttling" | "ThrottlingException" | "RequestTimeout"
                )
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => false,
    };
    let reason = redact(&DisplayErrorContext(&e).to_string());
    if busy {
        StorageError::Busy { backend, reason }
    } else {
        StorageError::Upstream { backend, reason }
    }
}

/// The HTTP status the upstream answered with, if it answered.
fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    match e {
        SdkError::ServiceError(ctx) => Some(ctx.raw().status().as_u16()),
        _ => None,
    }
}

fn is_not_found<E>(e: &SdkError<E, HttpResponse>) -> bool {
    status(e) == Some(404)
}

#[async_trait]
impl BlobStore for AwsBlobStore {
    async fn put(&self, id: &BlobId, body: BodyStream) -> Result<u64, StorageError> {
        let key = self.key(id);
        match read_head(body, self.part_size).await? {
            Head::Whole(data) => self.put_whole(&key, data).await,
            Head::Part(first, rest) => self.put_multipart(&key, first, rest).await,
        }
    }

    async fn get(&self, id: &BlobId, offset: u64, length: u64) -> Result<BodyStream, StorageError> {
        if length == 0 {
            return Ok(futures::stream::empty().boxed());
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(id))
            .range(format!("bytes={}-{}", offset, offset + length - 1))
            .send()
            .await
            .map_err(|e| {
                if is_not_found(&e) {
                    StorageError::NotFound(id.clone())
                } else {
                    self.error(e)
                }
            })?;
        let body = futures::stream::try_unfold(out.body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(bytes)) => Ok(Some((bytes, body))),
                Ok(None) => Ok(None),
                Err(e) => Err(std::io::Error::other(e)),
            }
        });
        Ok(body.boxed())
    }

    async fn delete(&self, id: &BlobId) -> Result<(), StorageError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(id))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn list(&self) -> BoxStream<'_, Result<BlobInfo, StorageError>> {
        let pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .into_paginator()
            .send();
        futures::stream::unfold(pages, |mut pages| async move {
            pages.next().await.map(|page| (page, pages))
        })
        .map(move |page| {
            let page = page.map_err(|e| self.error(e))?;
            let infos: Vec<Result<BlobInfo, StorageError>> = page
                .contents()
                .iter()
                .filter_map(|object| {
                    let id = blob_of(&self.prefix, object.key()?)?;
                    let created = object
                        .last_modified()
                        .and_then(|t| SystemTime::try_from(*t).ok())
                        .unwrap_or_else(SystemTime::now);
                    Some(Ok(BlobInfo { id, created }))
                })
                .collect();
            Ok::<_, StorageError>(futures::stream::iter(infos))
        })
        .try_flatten()
        .boxed()
    }

    async fn check(&self) -> Result<(), StorageError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let backend = self.name.clone();
                match status(&e) {
                    Some(404) => Err(StorageError::Upstream {
                        backend,
                        reason: format!("bucket {:?} does not exist", self.bucket),
                    }),
                    Some(401 | 403) => Err(StorageError::Upstream {
                        backend,
                        reason: format!(
                            "access to bucket {:?} denied: check the credentials",
                            self.bucket
                        ),
                    }),
                    _ => Err(self.error(e)),
                }
            }
        }
    }

    async fn recover(&self) -> Result<(), StorageError> {
        let aborted = self.abort_stale_uploads().await?;
        if aborted > 0 {
            tracing::info!(backend = %self.name, aborted, "aborted abandoned upstream multipart uploads");
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "aws"
    }

    fn is_shared(&self) -> bool {
        true
    }
}
