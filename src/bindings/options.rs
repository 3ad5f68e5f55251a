//! The options dicts the Python layer passes to `_native`, parsed in one place into the typed
//! specs of the core. Every dict is checked against the keys its consumer knows: a key nobody
//! reads is a bug in the Python layer, and is reported as one (TypeError) instead of being
//! silently ignored.

use std::time::Duration;

use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFrozenSet, PyString, PyTuple};

use crate::protocol::codec::{Config, Mode};
use crate::protocol::deflate::{Offer, Params};
use crate::protocol::handshake::RequestSpec;
use crate::transport::proxy::{ProxyKind, ProxySpec};
use crate::transport::tcp::{OptValue, SockOpt};
use crate::transport::tls::{CertReqs, TlsOptions};

/// Keys of the opening-handshake request (`build_request`, and part of `Connection.open`).
const REQUEST_KEYS: &[&str] = &[
    "header",
    "key",
    "key_in_headers",
    "version",
    "version_in_headers",
    "cookie",
    "origin",
    "suppress_origin",
    "host",
    "suppress_host",
    "subprotocols",
    "connection",
    "compression",
];
/// Keys of a connection's protocol settings (`Protocol`, and part of `Connection.open`).
const PROTOCOL_KEYS: &[&str] = &["mode", "skip_utf8_validation", "max_size", "compression"];
/// Keys only `Connection.open` (the native engine's connect) reads.
const CONNECT_KEYS: &[&str] = &["timeout", "sockopt", "tls", "socket_fd", "proxy"];
const TLS_KEYS: &[&str] = &[
    "cert_reqs",
    "check_hostname",
    "ca_certs",
    "ca_cert_path",
    "ca_der",
    "certfile",
    "keyfile",
    "password",
    "server_hostname",
    "min_version",
    "max_version",
    "keylog",
];
const PROXY_KEYS: &[&str] = &["type", "host", "port", "auth", "timeout"];
const OFFER_KEYS: [&str; 4] =
    ["client_max_window_bits", "server_max_window_bits", "client_no_context_takeover", "server_no_context_takeover"];

/// The option names a dict's consumer reads (several lists, one set), with the same
/// names as a Python frozenset of interned strs, made on first use: a key is then checked
/// by one set look-up on the str the caller already hashed (a pointer comparison, the names
/// of the Python layer's dict literals being interned too), where comparing it as Rust text
/// costs a UTF-8 copy per key (the abi3 API has no borrowed view of a str).
pub struct KeySet {
    lists: &'static [&'static [&'static str]],
    set: PyOnceLock<Py<PyFrozenSet>>,
}

impl KeySet {
    const fn new(lists: &'static [&'static [&'static str]]) -> KeySet {
        KeySet { lists, set: PyOnceLock::new() }
    }

    fn names(&self) -> impl Iterator<Item = &'static str> {
        self.lists.iter().flat_map(|l| l.iter().copied())
    }

    fn set<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        let set = self.set.get_or_try_init(py, || PyFrozenSet::new(py, self.names().map(|n| PyString::intern(py, n))).map(Bound::unbind))?;
        Ok(set.bind(py).clone())
    }
}

static CONNECT_SET: KeySet = KeySet::new(&[REQUEST_KEYS, PROTOCOL_KEYS, CONNECT_KEYS]);
static REQUEST_SET: KeySet = KeySet::new(&[REQUEST_KEYS]);
static PROTOCOL_SET: KeySet = KeySet::new(&[PROTOCOL_KEYS]);
static OFFER_SET: KeySet = KeySet::new(&[&OFFER_KEYS]);
static TLS_SET: KeySet = KeySet::new(&[TLS_KEYS]);
static PROXY_SET: KeySet = KeySet::new(&[PROXY_KEYS]);

/// Fails on a key outside `known`, naming it.
pub fn check_keys(d: &Bound<'_, PyDict>, what: &str, known: &KeySet) -> PyResult<()> {
    let set = known.set(d.py())?;
    let mut all_known = true;
    // Iterated in place (`keys()` would build a list of them first).
    for (k, _) in d.iter() {
        if !k.is_instance_of::<PyString>() || !set.contains(&k)? {
            all_known = false;
            break;
        }
    }
    if all_known {
        return Ok(());
    }
    for k in d.keys() {
        let name: String = k.extract().map_err(|_| PyTypeError::new_err(format!("{what}: option names must be str")))?;
        if !known.names().any(|n| n == name) {
            return Err(PyTypeError::new_err(format!("{what}: unknown option {name:?}")));
        }
    }
    Ok(())
}

pub fn check_connect_keys(d: &Bound<'_, PyDict>) -> PyResult<()> {
    check_keys(d, "Connection.open", &CONNECT_SET)
}

pub fn check_request_keys(d: &Bound<'_, PyDict>) -> PyResult<()> {
    check_keys(d, "build_request", &REQUEST_SET)
}

pub fn check_protocol_keys(d: &Bound<'_, PyDict>) -> PyResult<()> {
    check_keys(d, "Protocol", &PROTOCOL_SET)
}

/// Seconds as a Duration; None waits forever.
pub fn secs(t: Option<f64>) -> PyResult<Option<Duration>> {
    match t {
        None => Ok(None),
        Some(v) if v.is_nan() || v < 0.0 => Err(PyValueError::new_err("Timeout value must be non-negative")),
        Some(v) => Ok(Some(Duration::from_secs_f64(v.min(1e9)))),
    }
}

/// `opt` with the key as an interned Python str (made once per call site): no str to
/// create and hash for each look-up. `opt_k!(dict, "key")`, or `opt_k!(dict, "key", T)`.
macro_rules! opt_k {
    ($d:expr, $key:literal) => {
        $crate::bindings::options::opt_key($d, pyo3::intern!($d.py(), $key), $key)
    };
    ($d:expr, $key:literal, $t:ty) => {
        $crate::bindings::options::opt_key::<$t>($d, pyo3::intern!($d.py(), $key), $key)
    };
}
pub(crate) use opt_k;

/// The value of `key` (`name` in errors), None when missing or None.
pub fn opt_key<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &Bound<'py, PyString>, name: &str) -> PyResult<Option<T>> {
    match d.get_item(key)? {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => v.extract::<T>().map(Some).map_err(|e| {
            let err: PyErr = e.into();
            PyTypeError::new_err(format!("option {name}: {err}"))
        }),
    }
}

/// The value of `key`, None when missing or None (a key named at run time; `opt_k!` for
/// a literal one).
pub fn opt<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<T>> {
    opt_key(d, &PyString::new(d.py(), key), key)
}

/// The dict under `key` (`name` in errors), None when missing or None.
fn sub_dict<'py>(d: &Bound<'py, PyDict>, key: &Bound<'py, PyString>, name: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
    match d.get_item(key)? {
        Some(v) if !v.is_none() => Ok(Some(v.cast_into::<PyDict>().map_err(|_| PyTypeError::new_err(format!("option {name} must be a dict")))?)),
        _ => Ok(None),
    }
}

/// The opening handshake request.
pub fn request_spec(host: String, port: u16, resource: String, secure: bool, o: &Bound<'_, PyDict>) -> PyResult<RequestSpec> {
    Ok(RequestSpec {
        host,
        port,
        resource,
        secure,
        host_header: opt_k!(o, "host")?,
        suppress_host: opt_k!(o, "suppress_host")?.unwrap_or(false),
        origin: opt_k!(o, "origin")?,
        suppress_origin: opt_k!(o, "suppress_origin")?.unwrap_or(false),
        key: opt_k!(o, "key")?,
        version: opt_k!(o, "version")?,
        key_in_headers: opt_k!(o, "key_in_headers")?.unwrap_or(false),
        version_in_headers: opt_k!(o, "version_in_headers")?.unwrap_or(false),
        connection: opt_k!(o, "connection")?,
        subprotocols: opt_k!(o, "subprotocols")?.unwrap_or_default(),
        headers: opt_k!(o, "header")?.unwrap_or_default(),
        cookie: opt_k!(o, "cookie")?,
        extensions: compression_offer(o)?.as_ref().map(Offer::header_value),
    })
}

/// The permessage-deflate offer of a request: `{"client_max_window_bits": True | 8..15 |
/// None, "server_max_window_bits": 8..15 | None, "client_no_context_takeover": bool,
/// "server_no_context_takeover": bool}` (missing keys take `Offer::default()`'s values), or
/// None for no offer.
pub fn compression_offer(o: &Bound<'_, PyDict>) -> PyResult<Option<Offer>> {
    let Some(d) = sub_dict(o, pyo3::intern!(o.py(), "compression"), "compression")? else { return Ok(None) };
    for k in d.keys() {
        let name: String = k.extract().unwrap_or_default();
        if !OFFER_KEYS.contains(&name.as_str()) {
            return Err(PyValueError::new_err(format!("unknown compression parameter {}: use {}", k.repr()?, OFFER_KEYS.join(", "))));
        }
    }
    let mut offer = Offer::default();
    if let Some(v) = d.get_item("client_max_window_bits")? {
        offer.client_max_window_bits = if v.is_none() {
            None
        } else if let Ok(b) = v.extract::<bool>() {
            b.then_some(None)
        } else {
            Some(Some(v.extract::<u8>().map_err(|_| PyValueError::new_err("client_max_window_bits must be True, None or 8..15"))?))
        };
    }
    offer.server_max_window_bits =
        opt_k!(&d, "server_max_window_bits", u8).map_err(|_| PyValueError::new_err("server_max_window_bits must be None or 8..15"))?;
    offer.client_no_context_takeover = opt_k!(&d, "client_no_context_takeover")?.unwrap_or(false);
    offer.server_no_context_takeover = opt_k!(&d, "server_no_context_takeover")?.unwrap_or(false);
    offer.validate().map_err(PyValueError::new_err)?;
    Ok(Some(offer))
}

/// Agreed permessage-deflate parameters as a dict (`compression` of a connection).
pub fn params_dict<'py>(py: Python<'py>, p: &Params) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("client_max_window_bits", p.client_max_window_bits)?;
    d.set_item("server_max_window_bits", p.server_max_window_bits)?;
    d.set_item("client_no_context_takeover", p.client_no_context_takeover)?;
    d.set_item("server_no_context_takeover", p.server_no_context_takeover)?;
    Ok(d)
}

/// `params_dict`'s inverse (a driver hands back what the handshake agreed).
pub fn params_from(d: &Bound<'_, PyDict>) -> PyResult<Params> {
    check_keys(d, "compression parameters", &OFFER_SET)?;
    let bits = |key: &str, default: u8| -> PyResult<u8> {
        let b = opt::<u8>(d, key)?.unwrap_or(default);
        if (8..=15).contains(&b) {
            Ok(b)
        } else {
            Err(PyValueError::new_err(format!("{key} must be 8..15")))
        }
    };
    Ok(Params {
        client_max_window_bits: bits("client_max_window_bits", 15)?,
        server_max_window_bits: bits("server_max_window_bits", 15)?,
        client_no_context_takeover: opt_k!(d, "client_no_context_takeover")?.unwrap_or(false),
        server_no_context_takeover: opt_k!(d, "server_no_context_takeover")?.unwrap_or(false),
    })
}

/// Python's modes: 0 messages, 1 every fragment (`fire_cont_frame`), 2 raw frames. Checked
/// fragments are queued for 0 and 1 and joined when a message is asked for.
pub fn mode_from(i: u8) -> PyResult<Mode> {
    match i {
        0 | 1 => Ok(Mode::Fragments),
        2 => Ok(Mode::Raw),
        _ => Err(PyValueError::new_err("mode must be 0, 1 or 2")),
    }
}

/// A connection's protocol settings; `deflate` is what the handshake agreed.
pub fn codec_config(o: &Bound<'_, PyDict>, deflate: Option<Params>) -> PyResult<Config> {
    Ok(Config {
        mode: mode_from(opt_k!(o, "mode")?.unwrap_or(0))?,
        skip_utf8: opt_k!(o, "skip_utf8_validation")?.unwrap_or(false),
        max_message: opt_k!(o, "max_size")?,
        deflate,
    })
}

pub fn tls_options(o: &Bound<'_, PyDict>) -> PyResult<Option<TlsOptions>> {
    let Some(d) = sub_dict(o, pyo3::intern!(o.py(), "tls"), "tls")? else { return Ok(None) };
    check_keys(&d, "tls", &TLS_SET)?;
    let mut t = TlsOptions::default();
    if let Some(r) = opt_k!(&d, "cert_reqs", i32)? {
        t.cert_reqs = if r == 0 { CertReqs::None } else { CertReqs::Required };
    }
    if let Some(c) = opt_k!(&d, "check_hostname", bool)? {
        t.check_hostname = c;
    }
    t.ca_certs = opt_k!(&d, "ca_certs", String)?.map(Into::into);
    t.ca_cert_path = opt_k!(&d, "ca_cert_path", String)?.map(Into::into);
    t.ca_der = opt_k!(&d, "ca_der", Vec<Vec<u8>>)?.unwrap_or_default();
    t.certfile = opt_k!(&d, "certfile", String)?.map(Into::into);
    t.keyfile = opt_k!(&d, "keyfile", String)?.map(Into::into);
    t.password = opt_k!(&d, "password", Vec<u8>)?;
    t.server_hostname = opt_k!(&d, "server_hostname", String)?;
    t.min_version = opt_k!(&d, "min_version", u8)?;
    t.max_version = opt_k!(&d, "max_version", u8)?;
    t.keylog = opt_k!(&d, "keylog", String)?.map(Into::into);
    Ok(Some(t))
}

pub fn proxy_kind(name: &str) -> PyResult<ProxyKind> {
    ProxyKind::parse(name)
        .ok_or_else(|| PyValueError::new_err(format!("unknown proxy type {name:?}: use http, socks4, socks4a, socks5 or socks5h")))
}

/// `{"type": "http"|"socks4"|..., "host", "port", "auth": (user, password) | None,
/// "timeout": seconds | None}`, as `_proxy` resolves it.
pub fn proxy_spec(o: &Bound<'_, PyDict>) -> PyResult<Option<ProxySpec>> {
    let Some(d) = sub_dict(o, pyo3::intern!(o.py(), "proxy"), "proxy")? else { return Ok(None) };
    check_keys(&d, "proxy", &PROXY_SET)?;
    let name: String = opt_k!(&d, "type")?.unwrap_or_else(|| "http".to_string());
    let host: String = opt_k!(&d, "host")?.ok_or_else(|| PyValueError::new_err("proxy host missing"))?;
    let port: u16 = opt_k!(&d, "port")?.ok_or_else(|| PyValueError::new_err("proxy port missing"))?;
    Ok(Some(ProxySpec { kind: proxy_kind(&name)?, host, port, auth: opt_k!(&d, "auth")?, timeout: secs(opt_k!(&d, "timeout")?)? }))
}

/// `sockopt`: `(level, option, value)` tuples, value an int or bytes.
pub fn sockopts(o: &Bound<'_, PyDict>) -> PyResult<Vec<SockOpt>> {
    let list: Option<Vec<Bound<'_, PyAny>>> = opt_k!(o, "sockopt")?;
    let mut out = Vec::new();
    for item in list.unwrap_or_default() {
        let t = item.cast::<PyTuple>().map_err(|_| PyTypeError::new_err("sockopt entries must be tuples (level, option, value)"))?;
        if t.len() != 3 {
            return Err(PyTypeError::new_err("sockopt entries must be tuples (level, option, value)"));
        }
        let level: i32 = t.get_item(0)?.extract()?;
        let name: i32 = t.get_item(1)?.extract()?;
        let v = t.get_item(2)?;
        let value = if let Ok(i) = v.extract::<i64>() { OptValue::Int(i as i32) } else { OptValue::Bytes(v.extract::<Vec<u8>>()?) };
        out.push(SockOpt { level, name, value });
    }
    Ok(out)
}
