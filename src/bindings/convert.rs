//! Python values to core values and back, for both pyclasses of the seam: send payloads,
//! mask keys, received items.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};

use crate::protocol::codec::Item;
use crate::protocol::frame::OP_TEXT;

/// Payload of a send: borrowed from an immutable `bytes`/`str`, copied otherwise.
pub enum Payload<'py> {
    Bytes(Bound<'py, PyBytes>),
    Owned(Vec<u8>),
}

impl Payload<'_> {
    pub fn from_any<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Payload<'py>> {
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
    pub fn as_slice(&self) -> PyResult<&[u8]> {
        match self {
            Payload::Bytes(b) => Ok(b.as_bytes()),
            Payload::Owned(v) => Ok(v),
        }
    }
}

pub fn mask_key(key: Option<&[u8]>) -> PyResult<Option<[u8; 4]>> {
    match key {
        None => Ok(None),
        Some(k) => k.get(..4).and_then(|k| k.try_into().ok()).map(Some).ok_or_else(|| PyValueError::new_err("mask key must be 4 bytes")),
    }
}

/// An item's payload: `str` for a whole text message when `decode`, `bytes` otherwise.
pub fn item_data<'py>(py: Python<'py>, item: &Item, decode: bool) -> PyResult<Bound<'py, PyAny>> {
    if decode && item.opcode == OP_TEXT && item.fin {
        Ok(PyString::from_bytes(py, &item.data)?.into_any())
    } else {
        Ok(PyBytes::new(py, &item.data).into_any())
    }
}

