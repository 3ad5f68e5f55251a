//! The Python side of the seam: `websocket._native`.

mod connection;
mod convert;
mod errors;
mod options;
mod protocol;
mod websocket;

use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

static LOG_RESET: OnceLock<pyo3_log::ResetHandle> = OnceLock::new();

/// Turns `++Sent`/`++Rcv` frame traces and header dumps on or off (`enableTrace`).
#[pyfunction]
fn set_trace(on: bool) {
    crate::trace::set_enabled(on);
}

/// Forgets pyo3-log's cached logger levels, after a level or handler change in Python.
#[pyfunction]
fn reset_log_cache() {
    if let Some(h) = LOG_RESET.get() {
        h.reset();
    }
}

/// `data` XOR-ed with the 4-byte `mask_key` (vectorised); for `ABNF.mask`.
#[pyfunction]
fn apply_mask<'py>(py: Python<'py>, mask_key: &[u8], data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let key: [u8; 4] = mask_key
        .get(..4)
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| pyo3::exceptions::PyValueError::new_err("mask key must be 4 bytes"))?;
    PyBytes::new_with(py, data.len(), |buf| {
        buf.copy_from_slice(data);
        crate::protocol::frame::apply_mask(buf, key);
        Ok(())
    })
}

/// Whether `data` is valid UTF-8 (SIMD).
#[pyfunction]
fn validate_utf8(data: &[u8]) -> bool {
    crate::protocol::utf8::is_valid(data)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    if LOG_RESET.get().is_none() {
        // Loggers are cached, levels are not: a `setLevel` on the "websocket" logger takes
        // effect at once. Frame traces are gated by `set_trace` before `log` is reached, so
        // the only per-frame cost when tracing is off is one atomic load.
        let logger = pyo3_log::Logger::new(m.py(), pyo3_log::Caching::Loggers)?;
        let handle = logger.reset_handle();
        if logger.install().is_ok() {
            let _ = LOG_RESET.set(handle);
        }
    }
    m.add_function(wrap_pyfunction!(set_trace, m)?)?;
    m.add_function(wrap_pyfunction!(reset_log_cache, m)?)?;
    m.add_function(wrap_pyfunction!(apply_mask, m)?)?;
    m.add_function(wrap_pyfunction!(validate_utf8, m)?)?;
    connection::record_main_thread(m.py())?;
    m.add_class::<connection::Connection>()?;
    m.add_class::<websocket::WebSocketBase>()?;
    m.add_class::<websocket::SockOptBase>()?;
    m.add_class::<protocol::Protocol>()?;
    m.add_class::<protocol::ProxyNegotiation>()?;
    m.add_function(wrap_pyfunction!(protocol::build_request, m)?)?;
    m.add_function(wrap_pyfunction!(protocol::head_bytes_wanted, m)?)?;
    m.add_function(wrap_pyfunction!(protocol::parse_response_head, m)?)?;
    m.add_function(wrap_pyfunction!(protocol::handshake_answer, m)?)?;
    m.add_function(wrap_pyfunction!(protocol::proxy_target, m)?)?;
    m.add_function(wrap_pyfunction!(protocol::proxy_needs_ipv4, m)?)?;
    m.add("ENGINE_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
