//! `WebSocketBase`: the compiled base of `websocket.WebSocket`, holding the attributes its
//! receive fast path reads and that fast path itself, `recv()`.
//!
//! A queued 100-byte message cost about 250 ns through `Connection.recv_next()` and 75 ns
//! more through the Python method `WebSocket.recv()` around it (a frame and five attribute
//! look-ups; bench/RESULTS.md, push100). As a method of the base class, `recv()` reads its
//! state from fields, not from the instance dict, and calls the engine without a second
//! call. Everything else of `WebSocket` stays Python (python/websocket/_core.py); the slow
//! cases (no connection yet, `fire_cont_frame`, a subclass that reads frames itself) go
//! back to `WebSocket._recv_slow()`. A subclass may still override `recv` in Python, and
//! `mock.patch.object(WebSocket, "recv")` still wins: `WebSocket`'s own dict comes first.

use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyString};
use pyo3::{intern, PyTraverseError};

use super::connection::Connection;
use super::options::secs;

#[pyclass(subclass, module = "websocket._native")]
pub struct WebSocketBase {
    /// The connection object: a native `Connection`, the Python-socket driver's
    /// `SocketConnection`, or None.
    #[pyo3(get, set, name = "_conn")]
    conn: Py<PyAny>,
    /// The class reads messages through the engine (no `recv_frame`/`recv_data*` override).
    #[pyo3(get, set, name = "_fast_recv")]
    fast_recv: bool,
    #[pyo3(get, set)]
    fire_cont_frame: Py<PyAny>,
    /// websocket-client's `sock_opt` (its `timeout` is read per call, as the reference's
    /// recv reads the socket's).
    #[pyo3(get, set)]
    sock_opt: Py<PyAny>,
}

#[pymethods]
impl WebSocketBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(py: Python<'_>, _args: &Bound<'_, PyAny>, _kwargs: Option<&Bound<'_, PyAny>>) -> Self {
        WebSocketBase { conn: py.None(), fast_recv: false, fire_cont_frame: PyBool::new(py, false).to_owned().into_any().unbind(), sock_opt: py.None() }
    }

    /// The next message: ``str`` for text, ``bytes`` for binary, ``""`` after a close.
    ///
    /// Pings are answered by the engine and never returned. Raises
    /// WebSocketTimeoutException on timeout (the connection stays usable),
    /// WebSocketConnectionClosedException when the connection is gone,
    /// WebSocketProtocolException / WebSocketPayloadException when the server breaks the
    /// protocol (a 1002 / 1007 close is sent first).
    fn recv<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let (conn, sock_opt) = {
            let this = slf.borrow();
            if !this.fast_recv || this.conn.is_none(py) || this.fire_cont_frame.bind(py).is_truthy()? {
                drop(this);
                return slf.call_method0(intern!(py, "_recv_slow"));
            }
            (this.conn.clone_ref(py).into_bound(py), this.sock_opt.clone_ref(py).into_bound(py))
        };
        let timeout = sock_opt.getattr(intern!(py, "timeout"))?;
        let got = if let Ok(native) = conn.cast::<Connection>() {
            let t = if timeout.is_none() { None } else { secs(Some(timeout.extract()?))? };
            native.get().next_payload(py, t).map(|p| p.map(Bound::into_any))
        } else if timeout.is_none() {
            conn.call_method0(intern!(py, "recv_next")).map(|p| (!p.is_none()).then_some(p))
        } else {
            conn.call_method1(intern!(py, "recv_text_or_binary"), (timeout,)).map(|p| (!p.is_none()).then_some(p))
        };
        match got {
            Ok(Some(payload)) => Ok(payload),
            Ok(None) => {
                // The peer's close frame: answered and recorded as the reference does.
                let payload = conn.getattr(intern!(py, "peer_close"))?;
                let payload = if payload.is_none() { PyBytes::new(py, b"").into_any() } else { payload };
                slf.call_method1(intern!(py, "_on_peer_close"), (payload,))?;
                Ok(PyString::new(py, "").into_any())
            }
            Err(e) => {
                let closed = py.import(intern!(py, "websocket._exceptions"))?.getattr(intern!(py, "WebSocketConnectionClosedException"))?;
                if e.is_instance(py, &closed) {
                    slf.call_method0(intern!(py, "shutdown"))?;
                }
                Err(e)
            }
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.conn)?;
        visit.call(&self.fire_cont_frame)?;
        visit.call(&self.sock_opt)
    }

    fn __clear__(&mut self) {
        Python::attach(|py| {
            self.conn = py.None();
            self.fire_cont_frame = py.None();
            self.sock_opt = py.None();
        });
    }
}
