//! A classified, authenticated S3 request as handlers see it.

use crate::acl::Requester;
use crate::auth::Authenticated;
use crate::s3::addressing::Target;
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::operation::Operation;
use crate::storage::BodyStream;
use http::{HeaderMap, Method};

pub struct S3Request {
    pub id: String,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
    pub target: Target,
    pub operation: Operation,
    pub auth: Authenticated,
    /// The request arrived over TLS.
    pub secure: bool,
    /// The client's address, as the connection shows it.
    pub peer: Option<std::net::IpAddr>,
    /// What authorization decided; the handler finishes object checks.
    pub access: crate::s3::access::Access,
    /// The raw body; taken once by whoever consumes it. Behind a mutex only
    /// so that `&S3Request` can be held across awaits (the stream is `Send`
    /// but not `Sync`).
    pub body: std::sync::Mutex<Option<BodyStream>>,
}

impl S3Request {
    pub fn take_body(&self) -> Option<BodyStream> {
        self.body.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub fn requester(&self) -> &Requester {
        &self.auth.requester
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    pub fn bucket(&self) -> S3Result<&str> {
        self.target
            .bucket
            .as_deref()
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest))
    }

    pub fn key(&self) -> S3Result<&str> {
        self.target
            .key
            .as_deref()
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidRequest))
    }

    /// A page size (`max-keys`, `max-uploads`, `max-parts`): 1000 by default
    /// and at most; negative or non-numeric values are `InvalidArgument`.
    pub fn count_param(&self, name: &str) -> S3Result<usize> {
        match self.int_param(name)? {
            None => Ok(1000),
            Some(n) if n < 0 => Err(S3Error::invalid_argument(format!(
                "{name} cannot be negative"
            ))
            .detail("ArgumentName", name)),
            Some(n) => Ok((n as usize).min(1000)),
        }
    }

    /// An integer query parameter, or `InvalidArgument` naming it.
    pub fn int_param(&self, name: &str) -> S3Result<Option<i64>> {
        match self.param(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                S3Error::invalid_argument(format!(
                    "Provided {name} not an integer or within integer range"
                ))
                .detail("ArgumentName", name)
                .detail("ArgumentValue", v)
            }),
        }
    }
}
