//! BleepStore: a Kubernetes-native, S3-compatible object store.
//!
//! A request flows listener → addressing → operation → authentication →
//! authorization → handler; handlers talk to exactly two services, the
//! metadata store and the blob store. See ARCHITECTURE.md.

pub mod acl;
pub mod app;
pub mod auth;
pub mod backend_watch;
pub mod checksum;
pub mod cluster;
pub mod crypto;
pub mod http;
pub mod lifecycle;
pub mod logging;
pub mod meta;
pub mod metrics;
pub mod policy;
pub mod rotation;
pub mod s3;
pub mod sqlite_file;
pub mod storage;
pub mod sweep;
pub mod tls;
pub mod wal_checkpoint;

pub use app::App;
pub use http::server::{RunningServer, start};
