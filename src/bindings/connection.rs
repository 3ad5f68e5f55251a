//! `websocket._native.Connection`: one live WebSocket connection. Every blocking call
//! detaches from the interpreter (releases the GIL), wakes every 50 ms to run Python's signal
//! handlers on the main thread (so Ctrl-C works), and turns Rust panics into Python
//! exceptions.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::convert::{self, Payload};
use super::errors::to_pyerr;
use super::options::{self, secs};
use crate::engine::conn::{Conn, TrySend};
use crate::engine::connect::{self, ConnectSpec, Outcome};
use crate::engine::error::Error;
use crate::protocol::deflate::Params;
use crate::protocol::frame::{OP_CLOSE, OP_TEXT};
use crate::transport;
use crate::transport::sys::{self, RawSock};
use crate::transport::tls::TlsOptions;

extern "C" fn after_fork_in_child() {
    // The thread that forked is the child's main thread (CPython makes it so).
    transport::set_interruptible_thread(sys::thread_ident());
}

/// Called once at import, with the interpreter attached: records Python's main thread (the
/// only one that runs signal handlers), as `threading.get_ident()` names it.
pub(super) fn record_main_thread(py: Python<'_>) -> PyResult<()> {
    let ident: u64 = py.import("threading")?.call_method0("main_thread")?.getattr("ident")?.extract()?;
    transport::set_interruptible_thread(ident);
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    AT_FORK.call_once(|| sys::at_fork(None, None, Some(after_fork_in_child)));
    Ok(())
}

/// Whether this is Python's main thread, the only one worth taking the GIL for between wait
/// slices: a thread id compared with the one recorded at import (no system call, and no
/// Python code, which could run a signal handler and lose its exception).
fn is_main_thread() -> bool {
    transport::interruptible_here()
}

/// Runs `f` detached from the interpreter, with an interrupt check for Ctrl-C, catching
/// panics; maps errors to Python exceptions.
fn blocking<T: Send>(py: Python<'_>, f: impl FnOnce(&dyn Fn() -> bool) -> Result<T, Error> + Send) -> PyResult<T> {
    // Asked only when a wait slice ends (not on the fast path of a recv() that finds its
    // message already queued).
    let main = std::sync::OnceLock::new();
    let pending: Mutex<Option<PyErr>> = Mutex::new(None);
    let check = || -> bool {
        if !*main.get_or_init(is_main_thread) {
            return false;
        }
        Python::try_attach(|py| match py.check_signals() {
            Ok(()) => false,
            Err(e) => {
                *pending.lock() = Some(e);
                true
            }
        })
        .unwrap_or(false)
    };
    let result = py.detach(|| std::panic::catch_unwind(AssertUnwindSafe(|| f(&check))));
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_pyerr(py, e, pending.lock().take())),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Err(to_pyerr(py, Error::Handshake(format!("internal error in the websocket engine: {msg}")), None))
        }
    }
}

#[pyclass(frozen, module = "websocket._native")]
pub struct Connection {
    conn: Arc<Conn>,
    status: u16,
    /// Handed to Python once (`take_headers`), so idle connections don't keep two copies.
    headers: Mutex<Vec<(String, String)>>,
    subprotocol: Option<String>,
    skip_utf8: AtomicBool,
    compression: Option<Params>,
}

impl Connection {
    /// The next message's payload (`str` for text), or None once the peer's close frame is
    /// here: from the queue without detaching when one waits, else waiting up to `timeout`.
    /// One frame of `payload` (str, bytes-like), as `send()`; for `WebSocketBase.send()` too.
    pub(super) fn send_payload(
        &self,
        py: Python<'_>,
        payload: &Bound<'_, PyAny>,
        opcode: u8,
        fin: bool,
        rsv: u8,
        mask: Option<[u8; 4]>,
        timeout: Option<std::time::Duration>,
    ) -> PyResult<usize> {
        let p = Payload::from_any(payload)?;
        let data = p.as_slice()?;
        let conn = &self.conn;
        // Most writes complete at once: tried without giving up the GIL first (a release
        // and a take of the GIL cost about what the rest of a small send does).
        match conn.try_send_frame(fin, rsv & 7, opcode & 0xF, data, mask) {
            TrySend::Done(len) => Ok(len),
            TrySend::Rest(len) => blocking(py, |check| conn.finish_send(timeout, check)).map(|()| len),
            TrySend::Failed(e) => Err(to_pyerr(py, e, None)),
            TrySend::NotNow => blocking(py, |check| conn.send_frame(fin, rsv & 7, opcode & 0xF, data, mask, timeout, check)),
        }
    }

    pub(super) fn next_payload<'py>(&self, py: Python<'py>, timeout: Option<std::time::Duration>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let conn = &self.conn;
        let item = match conn.try_recv_queued(false) {
            Some(item) => item,
            None => blocking(py, |check| conn.recv(false, timeout, check))?,
        };
        if item.opcode == OP_CLOSE {
            return Ok(None);
        }
        Ok(Some(convert::item_data(py, &item, true)?))
    }
}

#[pymethods]
impl Connection {
    /// Connects and runs the handshake. Returns a Connection, or `(status, location)` for a
    /// redirect the caller may follow.
    #[staticmethod]
    fn open<'py>(py: Python<'py>, host: String, port: u16, resource: String, secure: bool, options: Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
        let o = &options;
        options::check_connect_keys(o)?;
        let tls = match options::tls_options(o)? {
            Some(t) if secure => Some(t),
            _ if secure => Some(TlsOptions::default()),
            _ => None,
        };
        let codec = options::codec_config(o, None)?;
        let skip_utf8 = codec.skip_utf8;
        let spec = ConnectSpec {
            request: options::request_spec(host, port, resource, secure, o)?,
            timeout: secs(options::opt_k!(o, "timeout")?)?,
            sockopts: options::sockopts(o)?,
            tls,
            socket_fd: options::opt_k!(o, "socket_fd")?,
            proxy: options::proxy_spec(o)?,
            codec,
            deflate: options::compression_offer(o)?,
        };
        let outcome = blocking(py, |check| connect::connect(&spec, check))?;
        match outcome {
            Outcome::Redirect { status, location } => Ok((status, location).into_pyobject(py)?.into_any()),
            Outcome::Connected(conn, hs) => Ok(Bound::new(
                py,
                Connection {
                    conn,
                    status: hs.status,
                    headers: Mutex::new(hs.headers),
                    subprotocol: hs.subprotocol,
                    skip_utf8: AtomicBool::new(skip_utf8),
                    compression: hs.compression,
                },
            )?
            .into_any()),
        }
    }

    /// Sends one frame with `payload` (bytes-like or str, str sent as UTF-8); returns its
    /// length on the wire.
    #[pyo3(signature = (payload, opcode=OP_TEXT, fin=true, rsv=0, mask_key=None, timeout=None))]
    fn send(&self, py: Python<'_>, payload: &Bound<'_, PyAny>, opcode: u8, fin: bool, rsv: u8, mask_key: Option<&[u8]>, timeout: Option<f64>) -> PyResult<usize> {
        let mask = convert::mask_key(mask_key)?;
        self.send_payload(py, payload, opcode, fin, rsv, mask, secs(timeout)?)
    }

    /// Sends our close frame (once); returns whether it was sent now.
    #[pyo3(signature = (payload, timeout=None))]
    fn send_close(&self, py: Python<'_>, payload: &[u8], timeout: Option<f64>) -> PyResult<bool> {
        let timeout = secs(timeout)?;
        let conn = &self.conn;
        blocking(py, |check| conn.send_close(payload, timeout, check))
    }

    /// The next frame as it arrived, `(opcode, fin, rsv, data: bytes)`; pings/pongs only
    /// if `control`.
    #[pyo3(signature = (control=false, timeout=None))]
    fn recv_frame<'py>(&self, py: Python<'py>, control: bool, timeout: Option<f64>) -> PyResult<(u8, bool, u8, Bound<'py, PyBytes>)> {
        let timeout = secs(timeout)?;
        let conn = &self.conn;
        let item = blocking(py, |check| conn.recv_frame(control, timeout, check))?;
        Ok((item.opcode, item.fin, item.rsv, PyBytes::new(py, &item.data)))
    }

    /// The next message, fragments joined, `(opcode, fin, rsv, data: bytes)`.
    #[pyo3(signature = (control=false, timeout=None))]
    fn recv_message<'py>(&self, py: Python<'py>, control: bool, timeout: Option<f64>) -> PyResult<(u8, bool, u8, Bound<'py, PyBytes>)> {
        let timeout = secs(timeout)?;
        let conn = &self.conn;
        let item = blocking(py, |check| conn.recv(control, timeout, check))?;
        Ok((item.opcode, item.fin, item.rsv, PyBytes::new(py, &item.data)))
    }

    /// The next message as `(opcode, data)`, text decoded to `str` when `decode` is set.
    #[pyo3(signature = (timeout=None, decode=true, control=false))]
    fn recv_data<'py>(&self, py: Python<'py>, timeout: Option<f64>, decode: bool, control: bool) -> PyResult<(u8, Bound<'py, PyAny>)> {
        let timeout = secs(timeout)?;
        let conn = &self.conn;
        // A message already queued is taken without detaching from the interpreter.
        let item = match conn.try_recv_queued(control) {
            Some(item) => item,
            None => blocking(py, |check| conn.recv(control, timeout, check))?,
        };
        Ok((item.opcode, convert::item_data(py, &item, decode)?))
    }

    /// `WebSocket.recv()`'s fast path: the next message's payload (`str` for text, `bytes`
    /// for binary), or None once the peer's close frame is here (its payload is
    /// `peer_close`). Pings and pongs are skipped. One argument and no result tuple: on a
    /// queued 100-byte message the call costs about what building its `str` does.
    #[pyo3(signature = (timeout=None))]
    fn recv_text_or_binary<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.next_payload(py, secs(timeout)?)
    }

    /// `recv_text_or_binary()` without a timeout, as a method without arguments: no
    /// argument tuple to build and parse per message (`WebSocket.recv()` with the default
    /// timeout, None).
    fn recv_next<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.next_payload(py, None)
    }

    /// Up to `max` items `(opcode, fin, data)` at once, waiting for at least one: whole
    /// messages, or every fragment when `fragments` is set.
    #[pyo3(signature = (max=256, timeout=None, decode=true, fragments=false))]
    fn recv_batch<'py>(&self, py: Python<'py>, max: usize, timeout: Option<f64>, decode: bool, fragments: bool) -> PyResult<Bound<'py, PyList>> {
        let timeout = secs(timeout)?;
        let conn = &self.conn;
        let items = blocking(py, |check| conn.recv_batch(max, fragments, timeout, check))?;
        let list = PyList::empty(py);
        for item in &items {
            list.append((item.opcode, item.fin, convert::item_data(py, item, decode)?))?;
        }
        Ok(list)
    }

    /// Close handshake: sends our close frame if not yet sent, waits up to `timeout` for the
    /// peer's, then shuts the socket down. Returns the peer's close payload, if any.
    #[pyo3(signature = (payload, timeout=None))]
    fn close<'py>(&self, py: Python<'py>, payload: &[u8], timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let timeout = secs(timeout)?;
        let conn = &self.conn;
        let peer = blocking(py, |check| Ok(conn.close(payload, timeout, check)))?;
        Ok(peer.map(|p| PyBytes::new(py, &p)))
    }

    /// Writes bytes the caller formatted (frames) in order with the engine's own frames.
    #[pyo3(signature = (data, timeout=None))]
    fn send_raw(&self, py: Python<'_>, data: &[u8], timeout: Option<f64>) -> PyResult<()> {
        let timeout = secs(timeout)?;
        let conn = &self.conn;
        blocking(py, |check| conn.send_raw(data, timeout, check))
    }

    /// Up to `max` bytes of the server's frame stream (`ws.sock.recv`); b"" at its end.
    #[pyo3(signature = (max, timeout=None))]
    fn recv_raw<'py>(&self, py: Python<'py>, max: usize, timeout: Option<f64>) -> PyResult<Bound<'py, PyBytes>> {
        let timeout = secs(timeout)?;
        let conn = &self.conn;
        let data = blocking(py, |check| conn.recv_raw(max, timeout, check))?;
        Ok(PyBytes::new(py, &data))
    }

    /// Shuts the socket down both ways; wakes every thread blocked on it.
    fn shutdown(&self) {
        self.conn.shutdown();
    }

    /// Whether a recv would return at once.
    fn has_item(&self, py: Python<'_>) -> bool {
        let conn = &self.conn;
        py.detach(|| conn.has_item())
    }

    /// A handle readable exactly while a recv would not block (for select()); always
    /// writable.
    fn readiness_fd(&self) -> PyResult<RawSock> {
        Ok(self.conn.readiness_fd()?)
    }

    fn fileno(&self) -> RawSock {
        self.conn.fd()
    }

    fn set_mode(&self, py: Python<'_>, mode: u8) -> PyResult<()> {
        let m = options::mode_from(mode)?;
        let conn = &self.conn;
        py.detach(|| conn.set_mode(m));
        Ok(())
    }

    fn set_skip_utf8(&self, py: Python<'_>, skip: bool) {
        self.skip_utf8.store(skip, Ordering::Relaxed);
        let conn = &self.conn;
        py.detach(|| conn.set_skip_utf8(skip));
    }

    #[pyo3(signature = (max=None))]
    fn set_max_size(&self, py: Python<'_>, max: Option<u64>) {
        let conn = &self.conn;
        py.detach(|| conn.set_max_message(max));
    }

    #[getter]
    fn status(&self) -> u16 {
        self.status
    }

    /// The handshake response headers `(name, value)` as sent; empty after the first call.
    fn take_headers(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.headers.lock())
    }

    #[getter]
    fn subprotocol(&self) -> Option<String> {
        self.subprotocol.clone()
    }

    /// The permessage-deflate parameters in force (a dict), or None without compression.
    #[getter]
    fn compression<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.compression.as_ref().map(|p| options::params_dict(py, p)).transpose()
    }

    #[getter]
    fn is_ssl(&self) -> bool {
        self.conn.is_tls()
    }

    #[getter]
    fn close_sent(&self) -> bool {
        self.conn.close_sent()
    }

    #[getter]
    fn peer_close<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        let conn = &self.conn;
        py.detach(|| conn.peer_close()).map(|p| PyBytes::new(py, &p))
    }

    #[getter]
    fn text_decoding_checked(&self) -> bool {
        !self.skip_utf8.load(Ordering::Relaxed)
    }

}
