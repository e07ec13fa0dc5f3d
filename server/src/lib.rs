//! BleepStore: a Kubernetes-native, S3-compatible object store.
//!
//! A request flows listener → addressing → operation → authentication →
//! authorization → handler; handlers talk to exactly two services, the
//! metadata store and the blob store. See ARCHITECTURE.md.

pub mod acl;
pub mod auth;
pub mod checksum;
pub mod meta;
pub mod s3;
pub mod storage;
