//! The S3 API on port 9000.

pub mod error;
pub mod xml;
