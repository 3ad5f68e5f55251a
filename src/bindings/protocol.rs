//! The sans-I/O core as Python objects, for drivers that move the bytes themselves (the
//! Python-socket driver in `websocket._socket_driver`): the opening handshake
//! (`build_request`, `parse_response_head`, `handshake_answer`), the proxy negotiation
//! (`ProxyNegotiation`) and the connection protocol (`Protocol`). Errors are raised as the
//! same exceptions the native engine raises.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::convert::{self, Payload};
use super::errors::to_pyerr;
use super::options;
use crate::engine::error::Error;
use crate::protocol::codec::{Item, TracedFrame};
use crate::protocol::connection::Protocol as Core;
use crate::protocol::frame::{self, OP_CLOSE, OP_TEXT};
use crate::protocol::handshake::{self, Answer, ParseError};
use crate::protocol::proxy::{self, Negotiation, Target};
use crate::protocol::receiver::Ended;
use crate::transport::NetError;
use crate::trace;

fn random_mask() -> [u8; 4] {
    rand::random()
}

fn raise(py: Python<'_>, e: Error) -> PyErr {
    to_pyerr(py, e, None)
}

/// Builds the opening handshake request: `(request bytes, Sec-WebSocket-Key)`. `options`
/// are the request's keys of `Connection.open` (header lines, key/version overrides,
/// cookie, origin, host, subprotocols, connection, compression offer).
#[pyfunction]
pub fn build_request<'py>(
    py: Python<'py>,
    host: String,
    port: u16,
    resource: String,
    secure: bool,
    options: Bound<'py, PyDict>,
) -> PyResult<(Bound<'py, PyBytes>, String)> {
    options::check_request_keys(&options)?;
    let spec = options::request_spec(host, port, resource, secure, &options)?;
    let (request, key) = handshake::build_request(&spec);
    if trace::enabled() {
        trace::dump("request header", &String::from_utf8_lossy(&request));
    }
    Ok((PyBytes::new(py, &request), key))
}

/// How many bytes may be read without passing the end of a response head that starts `buf`.
#[pyfunction]
pub fn head_bytes_wanted(buf: &[u8]) -> usize {
    handshake::head_bytes_wanted(buf)
}

/// Parses a response head at the start of `buf`: `(status, reason, [(name, value)],
/// head_len)`, or None when more bytes are needed. Raises WebSocketException for a head
/// that is not HTTP or is too large.
#[pyfunction]
pub fn parse_response_head(py: Python<'_>, buf: &[u8]) -> PyResult<Option<(u16, String, Vec<(String, String)>, usize)>> {
    match handshake::parse_response(buf) {
        Ok(r) => {
            if trace::enabled() {
                let mut text = format!("HTTP/1.1 {} {}", r.status, r.reason);
                for (k, v) in &r.headers {
                    text.push_str(&format!("\n{k}: {v}"));
                }
                trace::dump("response header", &text);
            }
            Ok(Some((r.status, r.reason, r.headers, r.head_len)))
        }
        Err(ParseError::Partial) => Ok(None),
        Err(ParseError::TooLarge) => Err(raise(
            py,
            Error::Handshake(format!(
                "handshake response header too large (over {} bytes or {} headers)",
                handshake::MAX_HEAD_BYTES,
                handshake::MAX_HEADERS
            )),
        )),
        Err(ParseError::Invalid(m)) => Err(raise(py, Error::Handshake(format!("Invalid handshake response: {m}")))),
    }
}

/// What the server's answer means: `("upgraded", subprotocol, compression params or
/// None)`, `("redirect", status, location or None)` or `("refused", body_len)`. Raises
/// WebSocketException when a 101 fails its checks (headers, accept key, subprotocol,
/// extensions). `compression` is the offer that was sent (the `compression` option of
/// `build_request`), or None.
#[pyfunction]
#[pyo3(signature = (status, headers, key, subprotocols=None, compression=None))]
pub fn handshake_answer<'py>(
    py: Python<'py>,
    status: u16,
    headers: Vec<(String, String)>,
    key: &str,
    subprotocols: Option<Vec<String>>,
    compression: Option<Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let offer = match &compression {
        Some(d) => {
            let wrapper = PyDict::new(py);
            wrapper.set_item("compression", d)?;
            options::compression_offer(&wrapper)?
        }
        None => None,
    };
    let resp = handshake::Response { status, reason: String::new(), headers, head_len: 0 };
    match handshake::answer(&resp, key, &subprotocols.unwrap_or_default(), offer.as_ref()) {
        Ok(Answer::Upgraded(a)) => {
            let params = a.compression.as_ref().map(|p| options::params_dict(py, p)).transpose()?;
            PyTuple::new(py, [
                "upgraded".into_pyobject(py)?.into_any(),
                a.subprotocol.into_pyobject(py)?.into_any(),
                params.into_pyobject(py)?.into_any(),
            ])
        }
        Ok(Answer::Redirect { status, location }) => PyTuple::new(py, [
            "redirect".into_pyobject(py)?.into_any(),
            status.into_pyobject(py)?.into_any(),
            location.into_pyobject(py)?.into_any(),
        ]),
        Ok(Answer::Refused { body_len }) => {
            PyTuple::new(py, ["refused".into_pyobject(py)?.into_any(), body_len.into_pyobject(py)?.into_any()])
        }
        Err(m) => Err(raise(py, Error::Handshake(m))),
    }
}

/// How the proxy of `kind` must be told about `host`: the host itself (an IP literal, or a
/// name the proxy resolves), or None when the caller must resolve it first (to an IPv4
/// address for SOCKS4: see `needs_ipv4`).
#[pyfunction]
pub fn proxy_target(kind: &str, host: &str) -> PyResult<Option<String>> {
    let kind = options::proxy_kind(kind)?;
    Ok(proxy::target_for(kind, host).map(|t| match t {
        Target::Ip(ip) => ip.to_string(),
        Target::Name(n) => n,
    }))
}

/// One proxy exchange as a state machine: send `data_to_send()`, read at most
/// `bytes_wanted()` bytes and pass them to `receive()`, until `done`. Failures raise
/// WebSocketProxyException.
#[pyclass(module = "websocket._native")]
pub struct ProxyNegotiation {
    inner: Negotiation,
}

#[pymethods]
impl ProxyNegotiation {
    /// `target`: what `proxy_target` returned, or the address the caller resolved.
    #[new]
    #[pyo3(signature = (kind, target, port, auth=None))]
    fn new(py: Python<'_>, kind: &str, target: &str, port: u16, auth: Option<(String, String)>) -> PyResult<Self> {
        let kind = options::proxy_kind(kind)?;
        let t = match target.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) => Target::Ip(ip),
            Err(_) => Target::Name(target.to_string()),
        };
        let inner = Negotiation::start(kind, t, port, auth).map_err(|e| raise(py, Error::Net(NetError::from(e))))?;
        Ok(ProxyNegotiation { inner })
    }

    fn data_to_send<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.data_to_send())
    }

    fn bytes_wanted(&self) -> usize {
        self.inner.bytes_wanted()
    }

    /// Feeds bytes from the proxy; returns how many belonged to its answers.
    fn receive(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<usize> {
        self.inner.receive(data).map_err(|e| raise(py, Error::Net(NetError::from(e))))
    }

    #[getter]
    fn done(&self) -> bool {
        self.inner.is_done()
    }

    /// The HTTP CONNECT request text (for traces).
    #[getter]
    fn http_request(&self) -> &str {
        self.inner.http_request()
    }

    #[getter]
    fn http_response_head<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.http_response_head())
    }
}

/// Whether a locally resolved SOCKS target must be IPv4 (SOCKS4).
#[pyfunction]
pub fn proxy_needs_ipv4(kind: &str) -> PyResult<bool> {
    Ok(proxy::needs_ipv4(options::proxy_kind(kind)?))
}

/// A connection's protocol, sans I/O: the driver feeds what it read (`receive_data`) and
/// writes what the methods return. Items come out through the `next_*` methods, which
/// return None when more bytes are needed; once the items before a failure or the peer's
/// close were taken, they raise (WebSocketProtocolException / WebSocketPayloadException,
/// or WebSocketConnectionClosedException) and `fail()` gives the close frame owed.
#[pyclass(module = "websocket._native")]
pub struct Protocol {
    core: Core,
}

impl Protocol {
    fn ended_error(&self) -> Option<Error> {
        match self.core.receiver_ref().ended()? {
            Ended::Failed(f) => Some(Error::Protocol(f)),
            Ended::Closed => Some(Error::Closed("Connection to remote host was lost.".into())),
        }
    }

    fn take<T>(&mut self, py: Python<'_>, f: impl FnOnce(&mut Core) -> Option<T>) -> PyResult<Option<T>> {
        if let Some(v) = f(&mut self.core) {
            return Ok(Some(v));
        }
        match self.ended_error() {
            Some(e) => Err(raise(py, e)),
            None => Ok(None),
        }
    }

    /// Bytes read from the peer into the core (frames traced when tracing is on); what
    /// they call for stays in the core's output.
    fn feed(&mut self, data: &[u8]) {
        let tracing = trace::enabled();
        let mut traced: Vec<TracedFrame> = Vec::new();
        self.core.receive_data(data, random_mask, tracing.then_some(&mut traced), |wire, opcode, payload| {
            trace::frame("Sent", wire, true, opcode, payload)
        });
        for t in &traced {
            let mut raw = Vec::new();
            frame::encode_frame(&mut raw, t.fin, t.rsv, t.opcode, &t.payload, None);
            trace::frame("Rcv", &raw, t.fin, t.opcode, &t.payload);
        }
    }

    fn tuple<'py>(py: Python<'py>, item: Item) -> (u8, bool, u8, Bound<'py, PyBytes>) {
        (item.opcode, item.fin, item.rsv, PyBytes::new(py, &item.data))
    }
}

#[pymethods]
impl Protocol {
    /// `options`: `mode` (0 messages, 1 every fragment, 2 raw frames), `skip_utf8_validation`,
    /// `max_size`, and `compression`: the permessage-deflate parameters the handshake agreed
    /// (a dict, as `handshake_answer` returns them) or None.
    #[new]
    #[pyo3(signature = (options=None))]
    fn new(options: Option<Bound<'_, PyDict>>) -> PyResult<Self> {
        let cfg = match &options {
            Some(o) => {
                options::check_protocol_keys(o)?;
                let deflate = match o.get_item("compression")? {
                    Some(d) if !d.is_none() => Some(options::params_from(d.cast::<PyDict>()?)?),
                    _ => None,
                };
                options::codec_config(o, deflate)?
            }
            None => Default::default(),
        };
        Ok(Protocol { core: Core::new(cfg) })
    }

    /// Feeds bytes read from the peer; returns the bytes to write back now (pongs, the
    /// close echo), possibly empty.
    fn receive_data<'py>(&mut self, py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
        self.feed(data);
        PyBytes::new(py, &self.core.data_to_send())
    }

    /// `receive_data(data)` then `next_payload()`, in one call: the Python-socket driver's
    /// `recv()` step. When the bytes called for replies (pongs, the close echo), returns
    /// them first as `(replies,)`; the driver writes them, then calls `next_payload()`.
    fn feed_payload<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        self.feed(data);
        if self.core.has_data_to_send() {
            let out = PyBytes::new(py, &self.core.data_to_send());
            return Ok(PyTuple::new(py, [out])?.into_any());
        }
        self.next_payload(py)
    }

    /// The most bytes the driver may read now without reading past the frame in progress
    /// (0 once nothing more is expected).
    fn bytes_wanted(&self) -> usize {
        self.core.receiver_ref().bytes_wanted()
    }

    /// One frame to send (payload bytes-like or str, str as UTF-8): its wire bytes.
    #[pyo3(signature = (payload, opcode=1, fin=true, rsv=0, mask_key=None))]
    fn send<'py>(&mut self, py: Python<'py>, payload: &Bound<'py, PyAny>, opcode: u8, fin: bool, rsv: u8, mask_key: Option<&[u8]>) -> PyResult<Bound<'py, PyBytes>> {
        let p = Payload::from_any(payload)?;
        let data = p.as_slice()?;
        let mask = convert::mask_key(mask_key)?.unwrap_or_else(random_mask);
        let (rsv, opcode) = (rsv & 7, opcode & 0xF);
        let bytes = match self.core.as_is_len(opcode, data.len()) {
            // Masked straight into the bytes object: one pass over the payload, no copy.
            Some(len) => PyBytes::new_with(py, len, |buf| {
                self.core.encode_as_is(fin, rsv, opcode, data, mask, buf);
                Ok(())
            })?,
            None => {
                self.core.send_frame(fin, rsv, opcode, data, mask);
                PyBytes::new(py, &self.core.data_to_send())
            }
        };
        if trace::enabled() {
            trace::frame("Sent", bytes.as_bytes(), fin, opcode, data);
        }
        Ok(bytes)
    }

    /// Our close frame, or None when one was sent already.
    fn send_close<'py>(&mut self, py: Python<'py>, payload: &[u8]) -> Option<Bound<'py, PyBytes>> {
        if !self.core.send_close(payload, random_mask()) {
            return None;
        }
        let wire = self.core.data_to_send();
        if trace::enabled() {
            trace::frame("Sent", &wire, true, OP_CLOSE, payload);
        }
        Some(PyBytes::new(py, &wire))
    }

    /// After a take raised for a protocol failure: the close frame owed to the peer (RFC
    /// 6455 7.1.7), once; None otherwise. The driver writes it and drops the connection.
    fn fail<'py>(&mut self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        let code = self.core.fail(random_mask())?;
        let wire = self.core.data_to_send();
        if trace::enabled() && !wire.is_empty() {
            trace::frame("Sent", &wire, true, OP_CLOSE, &code.to_be_bytes());
        }
        Some(PyBytes::new(py, &wire))
    }

    /// The next message `(opcode, fin, rsv, data)`, fragments joined; None when more bytes
    /// are needed.
    #[pyo3(signature = (control=false))]
    fn next_message<'py>(&mut self, py: Python<'py>, control: bool) -> PyResult<Option<(u8, bool, u8, Bound<'py, PyBytes>)>> {
        Ok(self.take(py, |c| c.receiver().take_message(control))?.map(|i| Self::tuple(py, i)))
    }

    /// The next frame as it arrived `(opcode, fin, rsv, data)`; None when more bytes are
    /// needed.
    #[pyo3(signature = (control=false))]
    fn next_frame<'py>(&mut self, py: Python<'py>, control: bool) -> PyResult<Option<(u8, bool, u8, Bound<'py, PyBytes>)>> {
        Ok(self.take(py, |c| c.receiver().take_frame(control))?.map(|i| Self::tuple(py, i)))
    }

    /// The next message as `(opcode, data)`, text decoded to `str` when `decode`; None when
    /// more bytes are needed.
    #[pyo3(signature = (decode=true, control=false))]
    fn next_data<'py>(&mut self, py: Python<'py>, decode: bool, control: bool) -> PyResult<Option<(u8, Bound<'py, PyAny>)>> {
        match self.take(py, |c| c.receiver().take_message(control))? {
            Some(item) => Ok(Some((item.opcode, convert::item_data(py, &item, decode)?))),
            None => Ok(None),
        }
    }

    /// `WebSocket.recv()`'s step, in one call without tuples: the next message's payload
    /// (`str` for text, `bytes` for binary), None once the peer's close frame is here, or,
    /// when more bytes are needed, how many the driver may read (`bytes_wanted()`, an int).
    fn next_payload<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.take(py, |c| c.receiver().take_message(false))? {
            Some(item) if item.opcode == OP_CLOSE => Ok(py.None().into_bound(py)),
            Some(item) if item.opcode == OP_TEXT => Ok(PyString::from_bytes(py, &item.data)?.into_any()),
            Some(item) => Ok(PyBytes::new(py, &item.data).into_any()),
            None => Ok(self.core.receiver_ref().bytes_wanted().into_pyobject(py)?.into_any()),
        }
    }

    /// Up to `max` items `(opcode, fin, data)`, possibly none: whole messages (every
    /// fragment with `fragments`) and every control frame.
    #[pyo3(signature = (max=256, decode=true, fragments=false))]
    fn next_batch<'py>(&mut self, py: Python<'py>, max: usize, decode: bool, fragments: bool) -> PyResult<Bound<'py, PyList>> {
        let items = self.core.receiver().take_batch(max, fragments);
        if items.is_empty() {
            if let Some(e) = self.ended_error() {
                return Err(raise(py, e));
            }
        }
        let list = PyList::empty(py);
        for item in &items {
            list.append((item.opcode, item.fin, convert::item_data(py, item, decode)?))?;
        }
        Ok(list)
    }

    /// Whether a `next_*` call would return an item or raise without more bytes.
    fn has_item(&self) -> bool {
        self.core.receiver_ref().has_item() || self.core.receiver_ref().ended().is_some()
    }

    /// Drops every queued item (data arriving while closing is not delivered).
    fn discard(&mut self) {
        self.core.receiver().discard();
    }

    fn set_mode(&mut self, mode: u8) -> PyResult<()> {
        self.core.receiver().set_mode(options::mode_from(mode)?);
        Ok(())
    }

    fn set_skip_utf8(&mut self, skip: bool) {
        self.core.receiver().set_skip_utf8(skip);
    }

    #[pyo3(signature = (max=None))]
    fn set_max_size(&mut self, max: Option<u64>) {
        self.core.receiver().set_max_message(max);
    }

    #[getter]
    fn close_sent(&self) -> bool {
        self.core.close_sent()
    }

    /// The peer's close frame payload, once it came.
    #[getter]
    fn peer_close<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.core.receiver_ref().peer_close().map(|p| PyBytes::new(py, p))
    }

    #[getter]
    fn mode(&self) -> u8 {
        match self.core.receiver_ref().config().mode {
            crate::protocol::codec::Mode::Raw => 2,
            _ => 0,
        }
    }
}
