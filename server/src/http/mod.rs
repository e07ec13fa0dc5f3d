//! HTTP listeners and the operations port.

pub mod admin;
pub mod admin_cluster;
pub mod ops;
pub mod server;
