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

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyString};
use pyo3::{ffi, intern, PyTraverseError};

use super::connection::Connection;
use super::options::secs;

/// A Python object held by a frozen pyclass, replaced by its setter. Both classes here
/// are frozen because PyO3's borrow flag of a mutable pyclass is an atomic
/// compare-and-swap to take and an atomic decrement to give back: four locked operations
/// per `recv()` cost 20 ns of a queued message's 175 on this VM. Reading this is a plain
/// load and an incref.
///
/// Every access happens with the GIL held (these are methods and slots of the classes),
/// and the abi3 builds this crate makes never run on a free-threaded interpreter: no other
/// thread can release the object between the load and the incref.
struct PyField(AtomicPtr<ffi::PyObject>);

impl PyField {
    fn new(value: Bound<'_, PyAny>) -> Self {
        PyField(AtomicPtr::new(value.into_ptr()))
    }

    fn get<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        // SAFETY: the pointer is a strong reference this field owns (see `new`, `set`), only
        // released by `set` and `drop`, which run under the GIL as this does.
        unsafe { Bound::from_borrowed_ptr(py, self.0.load(Ordering::Acquire)) }
    }

    fn set(&self, value: Bound<'_, PyAny>) {
        let py = value.py();
        let old = self.0.swap(value.into_ptr(), Ordering::AcqRel);
        // SAFETY: `old` was this field's strong reference; it is released here, once.
        drop(unsafe { Bound::<PyAny>::from_owned_ptr(py, old) });
    }

    fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        // SAFETY: tp_traverse runs with the GIL held. The reference is lent to the visitor,
        // not taken: ManuallyDrop keeps its count as it is.
        let held = ManuallyDrop::new(unsafe { Bound::<PyAny>::from_owned_ptr(Python::assume_attached(), self.0.load(Ordering::Acquire)) });
        visit.call(held.as_unbound())
    }
}

impl Drop for PyField {
    fn drop(&mut self) {
        let ptr = *self.0.get_mut();
        // SAFETY: a pyclass is dropped by its tp_dealloc, with the GIL held; the field's
        // strong reference is released once.
        unsafe { drop(Bound::<PyAny>::from_owned_ptr(Python::assume_attached(), ptr)) }
    }
}

/// The compiled base of `websocket._socket.sock_opt`: its `timeout` in a field, which
/// `WebSocketBase.recv()` reads per call (a look-up in the instance dict cost 14 ns of a
/// queued message's 175). `sockopt` and `sslopt` stay in the instance dict.
#[pyclass(subclass, frozen, module = "websocket._native")]
pub struct SockOptBase {
    timeout: PyField,
}

#[pymethods]
impl SockOptBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(py: Python<'_>, _args: &Bound<'_, PyAny>, _kwargs: Option<&Bound<'_, PyAny>>) -> Self {
        SockOptBase { timeout: PyField::new(py.None().into_bound(py)) }
    }

    #[getter]
    fn timeout<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.timeout.get(py)
    }

    #[setter]
    fn set_timeout(&self, value: Bound<'_, PyAny>) {
        self.timeout.set(value);
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.timeout.visit(&visit)
    }

    fn __clear__(&self) {
        Python::attach(|py| self.timeout.set(py.None().into_bound(py)));
    }
}

#[pyclass(subclass, frozen, module = "websocket._native")]
pub struct WebSocketBase {
    /// The connection object: a native `Connection`, the Python-socket driver's
    /// `SocketConnection`, or None.
    conn: PyField,
    /// The class reads messages through the engine (no `recv_frame`/`recv_data*` override).
    fast_recv: AtomicBool,
    fire_cont_frame: PyField,
    /// websocket-client's `sock_opt` (its `timeout` is read per call, as the reference's
    /// recv reads the socket's).
    sock_opt: PyField,
}

#[pymethods]
impl WebSocketBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(py: Python<'_>, _args: &Bound<'_, PyAny>, _kwargs: Option<&Bound<'_, PyAny>>) -> Self {
        WebSocketBase {
            conn: PyField::new(py.None().into_bound(py)),
            fast_recv: AtomicBool::new(false),
            fire_cont_frame: PyField::new(PyBool::new(py, false).to_owned().into_any()),
            sock_opt: PyField::new(py.None().into_bound(py)),
        }
    }

    #[getter(_conn)]
    fn conn<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.conn.get(py)
    }

    #[setter(_conn)]
    fn set_conn(&self, value: Bound<'_, PyAny>) {
        self.conn.set(value);
    }

    #[getter(_fast_recv)]
    fn fast_recv(&self) -> bool {
        self.fast_recv.load(Ordering::Relaxed)
    }

    #[setter(_fast_recv)]
    fn set_fast_recv(&self, value: bool) {
        self.fast_recv.store(value, Ordering::Relaxed);
    }

    #[getter]
    fn fire_cont_frame<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.fire_cont_frame.get(py)
    }

    #[setter]
    fn set_fire_cont_frame(&self, value: Bound<'_, PyAny>) {
        self.fire_cont_frame.set(value);
    }

    #[getter]
    fn sock_opt<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.sock_opt.get(py)
    }

    #[setter]
    fn set_sock_opt(&self, value: Bound<'_, PyAny>) {
        self.sock_opt.set(value);
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
        let this = slf.get();
        let conn = this.conn.get(py);
        if !this.fast_recv.load(Ordering::Relaxed) || conn.is_none() || this.fire_cont_frame.get(py).is_truthy()? {
            return slf.call_method0(intern!(py, "_recv_slow"));
        }
        let sock_opt = this.sock_opt.get(py);
        let timeout = match sock_opt.cast::<SockOptBase>() {
            Ok(opt) => opt.get().timeout.get(py),
            Err(_) => sock_opt.getattr(intern!(py, "timeout"))?,
        };
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
        self.conn.visit(&visit)?;
        self.fire_cont_frame.visit(&visit)?;
        self.sock_opt.visit(&visit)
    }

    fn __clear__(&self) {
        Python::attach(|py| {
            self.conn.set(py.None().into_bound(py));
            self.fire_cont_frame.set(py.None().into_bound(py));
            self.sock_opt.set(py.None().into_bound(py));
        });
    }
}
