//! HTTP listeners and the operations port.

pub mod ops;
pub mod server;
