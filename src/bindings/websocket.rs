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
use pyo3::types::{PyBool, PyBytes, PyDict, PyString, PyTuple};
use pyo3::{ffi, intern, PyTraverseError};

use super::connection::Connection;
use super::errors::{ws_exc, ws_exc_class};
use super::options::secs;

/// A `timeout` as Python gave it (None: wait forever) as the engine's.
fn duration(timeout: &Bound<'_, PyAny>) -> PyResult<Option<std::time::Duration>> {
    if timeout.is_none() {
        Ok(None)
    } else {
        secs(Some(timeout.extract()?))
    }
}

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
    /// The class sends through the engine (no `send_frame` override).
    fast_send: AtomicBool,
    get_mask_key: PyField,
    fire_cont_frame: PyField,
    /// websocket-client's `sock_opt` (its `timeout` is read per call, as the reference's
    /// recv reads the socket's).
    sock_opt: PyField,
}

impl WebSocketBase {
    /// `self.sock_opt.timeout`, from the field when `sock_opt` is the package's own.
    fn timeout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let sock_opt = self.sock_opt.get(py);
        match sock_opt.cast::<SockOptBase>() {
            Ok(opt) => Ok(opt.get().timeout.get(py)),
            Err(_) => sock_opt.getattr(intern!(py, "timeout")),
        }
    }
}

#[pymethods]
impl WebSocketBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(py: Python<'_>, _args: &Bound<'_, PyAny>, _kwargs: Option<&Bound<'_, PyAny>>) -> Self {
        WebSocketBase {
            conn: PyField::new(py.None().into_bound(py)),
            fast_recv: AtomicBool::new(false),
            fast_send: AtomicBool::new(false),
            get_mask_key: PyField::new(py.None().into_bound(py)),
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

    #[getter(_fast_send)]
    fn fast_send(&self) -> bool {
        self.fast_send.load(Ordering::Relaxed)
    }

    #[setter(_fast_send)]
    fn set_fast_send(&self, value: bool) {
        self.fast_send.store(value, Ordering::Relaxed);
    }

    #[getter(get_mask_key)]
    fn mask_key_function<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.get_mask_key.get(py)
    }

    #[setter(get_mask_key)]
    fn set_mask_key_function(&self, value: Bound<'_, PyAny>) {
        self.get_mask_key.set(value);
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

    /// Sends ``payload`` in one frame and returns the frame's length on the wire.
    ///
    /// As in the reference, ``bytes`` go out as a TEXT frame unless ``opcode`` says
    /// otherwise, and a ``str`` with a non-text opcode is encoded as latin-1.
    #[pyo3(signature = (payload, *args, **kwargs), text_signature = "($self, payload, opcode=1)")]
    fn send<'py>(
        slf: &Bound<'py, Self>,
        payload: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        // `opcode` by position or by name (1, TEXT, when not given): parsed here so that an
        // explicit None or any other odd value reaches _send_slow() as the caller gave it.
        let named = match kwargs.filter(|k| k.len() == 1) {
            Some(k) => k.get_item(intern!(py, "opcode"))?,
            None => None,
        };
        let opcode = match (args.len(), kwargs.map_or(0, |k| k.len()), named) {
            (0, 0, _) => None,
            (1, 0, _) => Some(args.get_item(0)?),
            (0, 1, Some(o)) => Some(o),
            // Anything else (too many arguments, an unknown name) fails as Python's own
            // call would, in _send_slow().
            _ => return slf.getattr(intern!(py, "_send_slow"))?.call((payload,).into_pyobject(py)?.add(args)?.cast_into::<PyTuple>()?, kwargs),
        };
        // The common case here; a mask function, a send_frame override, a str with
        // another opcode or an opcode that is not a small int: WebSocket._send_slow().
        let op = match &opcode {
            None => 1,
            Some(o) => match o.extract::<u8>() {
                Ok(op) => op,
                Err(_) => return slf.call_method1(intern!(py, "_send_slow"), (payload, o)),
            },
        };
        if !this.fast_send.load(Ordering::Relaxed) || !this.get_mask_key.get(py).is_none() {
            return slf.call_method1(intern!(py, "_send_slow"), (payload, op));
        }
        if op != 1 && payload.is_instance_of::<PyString>() {
            return slf.call_method1(intern!(py, "_send_slow"), (payload, op));
        }
        let conn = this.conn.get(py);
        if conn.is_none() {
            return Err(ws_exc(py, "WebSocketConnectionClosedException", "socket is already closed.".into()));
        }
        let timeout = this.timeout(py)?;
        if let Ok(native) = conn.cast::<Connection>() {
            let n = native.get().send_payload(py, payload, op, true, 0, None, duration(&timeout)?)?;
            return Ok(n.into_pyobject(py)?.into_any());
        }
        conn.call_method1(intern!(py, "send"), (payload, op, true, 0, py.None(), timeout))
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
        let timeout = this.timeout(py)?;
        let got = if let Ok(native) = conn.cast::<Connection>() {
            native.get().next_payload(py, duration(&timeout)?).map(|p| p.map(Bound::into_any))
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
                if e.is_instance(py, &ws_exc_class(py, "WebSocketConnectionClosedException")?) {
                    slf.call_method0(intern!(py, "shutdown"))?;
                }
                Err(e)
            }
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.conn.visit(&visit)?;
        self.get_mask_key.visit(&visit)?;
        self.fire_cont_frame.visit(&visit)?;
        self.sock_opt.visit(&visit)
    }

    fn __clear__(&self) {
        Python::attach(|py| {
            self.conn.set(py.None().into_bound(py));
            self.get_mask_key.set(py.None().into_bound(py));
            self.fire_cont_frame.set(py.None().into_bound(py));
            self.sock_opt.set(py.None().into_bound(py));
        });
    }
}
