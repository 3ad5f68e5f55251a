//! `websocket._native.Connection`: one live WebSocket connection. Every blocking call
//! detaches from the interpreter (releases the GIL), wakes every 50 ms to run Python's signal
//! handlers on the main thread (so Ctrl-C works), and turns Rust panics into Python
//! exceptions.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple};

use super::errors::to_pyerr;
use crate::engine::conn::Conn;
use crate::engine::connect::{self, ConnectSpec, Outcome};
use crate::engine::error::Error;
use crate::protocol::codec::{Config, Item, Mode};
use crate::protocol::deflate::{Offer, Params};
use crate::protocol::frame::OP_TEXT;
use crate::protocol::handshake::RequestSpec;
use crate::transport::proxy::{ProxyKind, ProxySpec};
use crate::transport::tcp::{OptValue, SockOpt};
use crate::transport::tls::{CertReqs, TlsOptions};

fn is_main_thread() -> bool {
    unsafe { libc::gettid() == libc::getpid() }
}

/// Runs `f` detached from the interpreter, with an interrupt check for Ctrl-C, catching
/// panics; maps errors to Python exceptions.
fn blocking<T: Send>(py: Python<'_>, f: impl FnOnce(&dyn Fn() -> bool) -> Result<T, Error> + Send) -> PyResult<T> {
    // Asked only when a wait slice ends (gettid/getpid are two syscalls, a third of the
    // cost of a recv() that finds its message already queued).
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

fn secs(t: Option<f64>) -> PyResult<Option<Duration>> {
    match t {
        None => Ok(None),
        Some(v) if v.is_nan() || v < 0.0 => Err(PyValueError::new_err("Timeout value must be non-negative")),
        Some(v) => Ok(Some(Duration::from_secs_f64(v.min(1e9)))),
    }
}

fn opt<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<T>> {
    match d.get_item(key)? {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => v.extract::<T>().map(Some).map_err(|e| {
            let err: PyErr = e.into();
            PyTypeError::new_err(format!("option {key}: {err}"))
        }),
    }
}

use pyo3::conversion::FromPyObjectOwned;

fn tls_options(d: &Bound<'_, PyDict>) -> PyResult<TlsOptions> {
    let mut o = TlsOptions::default();
    if let Some(r) = opt::<i32>(d, "cert_reqs")? {
        o.cert_reqs = if r == 0 { CertReqs::None } else { CertReqs::Required };
    }
    if let Some(c) = opt::<bool>(d, "check_hostname")? {
        o.check_hostname = c;
    }
    o.ca_certs = opt::<String>(d, "ca_certs")?.map(Into::into);
    o.ca_cert_path = opt::<String>(d, "ca_cert_path")?.map(Into::into);
    o.ca_der = opt::<Vec<Vec<u8>>>(d, "ca_der")?.unwrap_or_default();
    o.certfile = opt::<String>(d, "certfile")?.map(Into::into);
    o.keyfile = opt::<String>(d, "keyfile")?.map(Into::into);
    o.password = opt::<Vec<u8>>(d, "password")?;
    o.server_hostname = opt::<String>(d, "server_hostname")?;
    o.min_version = opt::<u8>(d, "min_version")?;
    o.max_version = opt::<u8>(d, "max_version")?;
    o.keylog = opt::<String>(d, "keylog")?.map(Into::into);
    Ok(o)
}

/// `{"type": "http"|"socks4"|..., "host", "port", "auth": (user, password) | None,
/// "timeout": seconds | None}`, as `_core` resolves it.
fn proxy_spec(d: &Bound<'_, PyDict>) -> PyResult<ProxySpec> {
    let name: String = opt(d, "type")?.unwrap_or_else(|| "http".to_string());
    let kind = ProxyKind::parse(&name)
        .ok_or_else(|| PyValueError::new_err(format!("unknown proxy type {name:?}: use http, socks4, socks4a, socks5 or socks5h")))?;
    let host: String = opt(d, "host")?.ok_or_else(|| PyValueError::new_err("proxy host missing"))?;
    let port: u16 = opt(d, "port")?.ok_or_else(|| PyValueError::new_err("proxy port missing"))?;
    Ok(ProxySpec { kind, host, port, auth: opt(d, "auth")?, timeout: secs(opt(d, "timeout")?)? })
}

fn sockopts(list: Option<Vec<Bound<'_, PyAny>>>) -> PyResult<Vec<SockOpt>> {
    let mut out = Vec::new();
    for item in list.unwrap_or_default() {
        let t = item.cast::<PyTuple>().map_err(|_| PyTypeError::new_err("sockopt entries must be tuples (level, option, value)"))?;
        if t.len() != 3 {
            return Err(PyTypeError::new_err("sockopt entries must be tuples (level, option, value)"));
        }
        let level: i32 = t.get_item(0)?.extract()?;
        let name: i32 = t.get_item(1)?.extract()?;
        let v = t.get_item(2)?;
        let value = if let Ok(i) = v.extract::<i64>() {
            OptValue::Int(i as i32)
        } else {
            OptValue::Bytes(v.extract::<Vec<u8>>()?)
        };
        out.push(SockOpt { level, name, value });
    }
    Ok(out)
}

/// The `compression` option: `{"client_max_window_bits": True | 8..15 | None,
/// "server_max_window_bits": 8..15 | None, "client_no_context_takeover": bool,
/// "server_no_context_takeover": bool}`; missing keys take `Offer::default()`'s values.
fn deflate_offer(d: &Bound<'_, PyDict>) -> PyResult<Offer> {
    const KEYS: [&str; 4] =
        ["client_max_window_bits", "server_max_window_bits", "client_no_context_takeover", "server_no_context_takeover"];
    for k in d.keys() {
        let name: String = k.extract().unwrap_or_default();
        if !KEYS.contains(&name.as_str()) {
            return Err(PyValueError::new_err(format!("unknown compression parameter {}: use {}", k.repr()?, KEYS.join(", "))));
        }
    }
    let mut o = Offer::default();
    if let Some(v) = d.get_item("client_max_window_bits")? {
        o.client_max_window_bits = if v.is_none() {
            None
        } else if let Ok(b) = v.extract::<bool>() {
            b.then_some(None)
        } else {
            Some(Some(v.extract::<u8>().map_err(|_| PyValueError::new_err("client_max_window_bits must be True, None or 8..15"))?))
        };
    }
    o.server_max_window_bits = opt::<u8>(d, "server_max_window_bits")
        .map_err(|_| PyValueError::new_err("server_max_window_bits must be None or 8..15"))?;
    o.client_no_context_takeover = opt(d, "client_no_context_takeover")?.unwrap_or(false);
    o.server_no_context_takeover = opt(d, "server_no_context_takeover")?.unwrap_or(false);
    o.validate().map_err(PyValueError::new_err)?;
    Ok(o)
}

fn params_dict<'py>(py: Python<'py>, p: &Params) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("client_max_window_bits", p.client_max_window_bits)?;
    d.set_item("server_max_window_bits", p.server_max_window_bits)?;
    d.set_item("client_no_context_takeover", p.client_no_context_takeover)?;
    d.set_item("server_no_context_takeover", p.server_no_context_takeover)?;
    Ok(d)
}

/// Python's modes: 0 messages, 1 every fragment (`fire_cont_frame`), 2 raw frames. The
/// engine queues checked fragments for 0 and 1 and joins them when a message is asked for.
fn mode_from(i: u8) -> PyResult<Mode> {
    match i {
        0 | 1 => Ok(Mode::Fragments),
        2 => Ok(Mode::Raw),
        _ => Err(PyValueError::new_err("mode must be 0, 1 or 2")),
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

/// Payload of a send: borrowed from an immutable `bytes`/`str`, copied otherwise.
enum Payload<'py> {
    Bytes(Bound<'py, PyBytes>),
    Owned(Vec<u8>),
}

impl Payload<'_> {
    fn from_any<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Payload<'py>> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Payload::Bytes(b.clone()));
        }
        if let Ok(s) = obj.cast::<PyString>() {
            // `str` goes out as UTF-8 (the Python layer encodes latin-1 where the reference does).
            return Ok(Payload::Bytes(s.encode_utf8()?));
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(Payload::Owned(b.to_vec()));
        }
        obj.extract::<Vec<u8>>()
            .map(Payload::Owned)
            .or_else(|_| {
                // memoryview and other buffers
                let b = obj.py().import("builtins")?.getattr("bytes")?.call1((obj,))?;
                Ok(Payload::Owned(b.cast::<PyBytes>()?.as_bytes().to_vec()))
            })
            .map_err(|_: PyErr| PyTypeError::new_err(format!("a bytes-like object or str is required, not {}", obj.get_type().name().map(|n| n.to_string()).unwrap_or_default())))
    }
    fn as_slice(&self) -> PyResult<&[u8]> {
        match self {
            Payload::Bytes(b) => Ok(b.as_bytes()),
            Payload::Owned(v) => Ok(v),
        }
    }
}

fn mask_key(key: Option<&[u8]>) -> PyResult<Option<[u8; 4]>> {
    match key {
        None => Ok(None),
        Some(k) => k.get(..4).and_then(|k| k.try_into().ok()).map(Some).ok_or_else(|| PyValueError::new_err("mask key must be 4 bytes")),
    }
}

impl Connection {
    fn data_obj<'py>(&self, py: Python<'py>, item: &Item, decode: bool) -> PyResult<Bound<'py, PyAny>> {
        if decode && item.opcode == OP_TEXT && item.fin {
            Ok(PyString::from_bytes(py, &item.data)?.into_any())
        } else {
            Ok(PyBytes::new(py, &item.data).into_any())
        }
    }
}

#[pymethods]
impl Connection {
    /// Connects and runs the handshake. Returns a Connection, or `(status, location)` for a
    /// redirect the caller may follow.
    #[staticmethod]
    fn open<'py>(py: Python<'py>, host: String, port: u16, resource: String, secure: bool, options: Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
        let o = &options;
        let deflate = match o.get_item("compression")? {
            Some(d) if !d.is_none() => Some(deflate_offer(d.cast::<PyDict>()?)?),
            _ => None,
        };
        let request = RequestSpec {
            host: host.clone(),
            port,
            resource,
            secure,
            host_header: opt(o, "host")?,
            suppress_host: opt(o, "suppress_host")?.unwrap_or(false),
            origin: opt(o, "origin")?,
            suppress_origin: opt(o, "suppress_origin")?.unwrap_or(false),
            key: opt(o, "key")?,
            version: opt(o, "version")?,
            key_in_headers: opt(o, "key_in_headers")?.unwrap_or(false),
            version_in_headers: opt(o, "version_in_headers")?.unwrap_or(false),
            connection: opt(o, "connection")?,
            subprotocols: opt(o, "subprotocols")?.unwrap_or_default(),
            headers: opt(o, "header")?.unwrap_or_default(),
            cookie: opt(o, "cookie")?,
            extensions: deflate.as_ref().map(Offer::header_value),
        };
        let tls = match (secure, o.get_item("tls")?) {
            (true, Some(d)) if !d.is_none() => Some(tls_options(d.cast::<PyDict>()?)?),
            (true, _) => Some(TlsOptions::default()),
            _ => None,
        };
        let skip_utf8: bool = opt(o, "skip_utf8_validation")?.unwrap_or(false);
        let spec = ConnectSpec {
            request,
            timeout: secs(opt(o, "timeout")?)?,
            sockopts: sockopts(opt(o, "sockopt")?)?,
            tls,
            socket_fd: opt(o, "socket_fd")?,
            proxy: match o.get_item("proxy")? {
                Some(d) if !d.is_none() => Some(proxy_spec(d.cast::<PyDict>()?)?),
                _ => None,
            },
            codec: Config {
                mode: mode_from(opt(o, "mode")?.unwrap_or(0))?,
                skip_utf8,
                max_message: opt(o, "max_size")?,
                deflate: None,
            },
            deflate,
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
        let p = Payload::from_any(payload)?;
        let data = p.as_slice()?;
        let mask = self::mask_key(mask_key)?;
        let timeout = secs(timeout)?;
        let conn = &self.conn;
        blocking(py, |check| conn.send_frame(fin, rsv & 7, opcode & 0xF, data, mask, timeout, check))
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
        Ok((item.opcode, self.data_obj(py, &item, decode)?))
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
            list.append((item.opcode, item.fin, self.data_obj(py, item, decode)?))?;
        }
        Ok(list)
    }

    /// Close handshake: sends our close frame if not yet sent, waits up to `timeout` for the
    /// peer's, then shuts the socket down. Returns the peer's close payload, if any.
    #[pyo3(signature = (payload, timeout=None))]
    fn close<'py>(&self, py: Python<'py>, payload: &[u8], timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let timeout = secs(timeout)?;
        let conn = &self.conn;
        let peer = blocking(py, |check| {
            let _ = conn.send_close(payload, timeout, check);
            let peer = conn.await_peer_close(timeout, check);
            conn.shutdown();
            Ok(peer)
        })?;
        Ok(peer.map(|p| PyBytes::new(py, &p)))
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

    /// An fd readable exactly while a recv would not block (for select()).
    fn readiness_fd(&self) -> PyResult<i32> {
        Ok(self.conn.readiness_fd()?)
    }

    fn fileno(&self) -> i32 {
        self.conn.fd()
    }

    fn set_mode(&self, py: Python<'_>, mode: u8) -> PyResult<()> {
        let m = mode_from(mode)?;
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
        self.compression.as_ref().map(|p| params_dict(py, p)).transpose()
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
