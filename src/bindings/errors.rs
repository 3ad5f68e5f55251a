//! Engine errors to Python exceptions, with the classes of `websocket._exceptions` and the
//! standard library (`OSError` subclasses, `ssl.SSLError` subclasses) the reference raises.

use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::engine::error::Error;
use crate::protocol::codec::Failure;
use crate::transport::tls::TlsError;
use crate::transport::NetError;

/// A class of `websocket._exceptions`.
pub(super) fn ws_exc_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("websocket._exceptions")?.getattr(name)
}

pub(super) fn ws_exc(py: Python<'_>, name: &str, msg: String) -> PyErr {
    match ws_exc_class(py, name) {
        Ok(cls) => match cls.call1((msg.clone(),)) {
            Ok(inst) => PyErr::from_value(inst),
            Err(e) => e,
        },
        Err(_) => pyo3::exceptions::PyRuntimeError::new_err(format!("{name}: {msg}")),
    }
}

fn ssl_exc(py: Python<'_>, e: &TlsError) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let ssl = py.import("ssl")?;
        Ok(match e {
            TlsError::CertVerify { code, reason } => {
                let inst = ssl.getattr("SSLCertVerificationError")?.call1((1, e.to_string()))?;
                inst.setattr("verify_code", *code)?;
                inst.setattr("verify_message", reason.as_str())?;
                inst.setattr("reason", "CERTIFICATE_VERIFY_FAILED")?;
                inst.setattr("library", "SSL")?;
                PyErr::from_value(inst)
            }
            TlsError::Protocol(m) => PyErr::from_value(ssl.getattr("SSLError")?.call1((1, m.as_str()))?),
            TlsError::Eof(m) => PyErr::from_value(ssl.getattr("SSLEOFError")?.call1((8, m.as_str()))?),
            TlsError::Config(m) => ws_exc(py, "WebSocketException", m.clone()),
        })
    };
    build().unwrap_or_else(|err| err)
}

/// Converts an engine error; `interrupted` is the exception the signal check raised.
pub fn to_pyerr(py: Python<'_>, e: Error, interrupted: Option<PyErr>) -> PyErr {
    match e {
        Error::Net(NetError::Io(io)) => PyErr::from(io),
        Error::Net(NetError::Address(m)) => address_error(py, &m),
        Error::Net(NetError::Timeout) => ws_exc(py, "WebSocketTimeoutException", "timed out".into()),
        Error::Net(NetError::ConnectTimeout) => pyo3::exceptions::PyTimeoutError::new_err("timed out"),
        Error::Net(NetError::Interrupted) => interrupted.unwrap_or_else(|| PyKeyboardInterrupt::new_err(())),
        Error::Net(NetError::Closed(m)) | Error::Closed(m) => ws_exc(py, "WebSocketConnectionClosedException", m),
        Error::Net(NetError::Tls(t)) => ssl_exc(py, &t),
        Error::Net(NetError::Proxy(m)) => ws_exc(py, "WebSocketProxyException", m),
        Error::Protocol(Failure::Protocol(m)) => ws_exc(py, "WebSocketProtocolException", m),
        Error::Protocol(Failure::Payload(m)) => ws_exc(py, "WebSocketPayloadException", m),
        Error::Protocol(Failure::TooBig(m)) => ws_exc(py, "WebSocketPayloadException", m),
        Error::Protocol(Failure::BadCloseReason(m)) => ws_exc(py, "WebSocketProtocolException", m),
        Error::Handshake(m) => ws_exc(py, "WebSocketException", m),
        Error::Value(m) => PyValueError::new_err(m),
        Error::BadStatus { status, reason, headers, body } => bad_status(py, status, reason, headers, body),
    }
}

/// `WebSocketAddressException(socket.gaierror(code, reason))`, as the reference wraps it.
fn address_error(py: Python<'_>, msg: &str) -> PyErr {
    let reason = msg.trim_start_matches("failed to lookup address information: ");
    let code = match reason {
        r if r.contains("Temporary failure") => -3,
        r if r.contains("No address associated") => -5,
        _ => -2,
    };
    let build = || -> PyResult<PyErr> {
        let gai = py.import("socket")?.getattr("gaierror")?.call1((code, reason))?;
        let cls = py.import("websocket._exceptions")?.getattr("WebSocketAddressException")?;
        Ok(PyErr::from_value(cls.call1((gai,))?))
    };
    build().unwrap_or_else(|err| err)
}

fn bad_status(py: Python<'_>, status: u16, reason: String, headers: Vec<(String, String)>, body: Vec<u8>) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let dict = PyDict::new(py);
        for (k, v) in &headers {
            dict.set_item(k.to_lowercase(), v)?;
        }
        let body_obj: Py<PyAny> = if body.is_empty() { py.None() } else { PyBytes::new(py, &body).into_any().unbind() };
        let body_text = if body.is_empty() { "None".to_string() } else { String::from_utf8_lossy(&body).into_owned() };
        let message = format!("Handshake status {status} {reason} -+-+- {} -+-+- {body_text}", dict.repr()?);
        let cls = py.import("websocket._exceptions")?.getattr("WebSocketBadStatusException")?;
        Ok(PyErr::from_value(cls.call1((message, status, reason, dict, body_obj))?))
    };
    build().unwrap_or_else(|err| err)
}
