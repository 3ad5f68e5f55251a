//! websocket-rust: the engine behind the `websocket` Python package.
//!
//! `protocol` is sans-I/O, `transport` owns sockets and TLS, `engine` runs connections
//! (shared state, the reactor thread), `bindings` is the only place that knows Python.

pub mod engine;
pub mod protocol;
pub mod trace;
pub mod transport;

#[cfg(feature = "python")]
mod bindings;

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _native(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    bindings::register(m)
}
