//! Connection runtime: connect and handshake, shared connection state, the reactor thread.

pub mod conn;
pub mod connect;
pub mod error;
pub mod reactor;
#[cfg(test)]
mod robustness_tests;
