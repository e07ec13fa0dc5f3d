//! The S3 API on port 9000.

pub mod access;
pub mod addressing;
pub mod body;
pub mod conditional;
pub mod cors;
pub mod error;
pub mod handlers;
pub mod headers;
pub mod lifecycle;
pub mod object_lock;
pub mod operation;
pub mod post_policy;
pub mod range;
pub mod request;
pub mod service;
pub mod sse;
pub mod tags;
pub mod xml;
