//! `enableTrace` output, in websocket-client's format, sent through `log` (which pyo3-log
//! forwards to the Python logger "websocket"). A relaxed atomic load is all it costs when off.

use std::sync::atomic::{AtomicBool, Ordering};

static TRACE: AtomicBool = AtomicBool::new(false);

pub fn set_enabled(on: bool) {
    TRACE.store(on, Ordering::Relaxed);
}

#[inline]
pub fn enabled() -> bool {
    TRACE.load(Ordering::Relaxed)
}

pub const TARGET: &str = "websocket";

/// Python's `repr()` of a bytes object.
pub fn bytes_repr(data: &[u8]) -> String {
    let quote = if data.contains(&b'\'') && !data.contains(&b'"') { '"' } else { '\'' };
    let mut s = String::with_capacity(data.len() + 3);
    s.push('b');
    s.push(quote);
    for &b in data {
        match b {
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\\' => s.push_str("\\\\"),
            b'\'' if quote == '\'' => s.push_str("\\'"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push(quote);
    s
}

pub fn dump(title: &str, message: &str) {
    log::debug!(target: TARGET, "--- {title} ---");
    log::debug!(target: TARGET, "{message}");
    log::debug!(target: TARGET, "-----------------------");
}

/// `++Sent raw` / `++Sent decoded` (or `++Rcv ...`) for one frame.
pub fn frame(direction: &str, raw: &[u8], fin: bool, opcode: u8, payload: &[u8]) {
    log::debug!(target: TARGET, "++{direction} raw: {}", bytes_repr(raw));
    log::debug!(target: TARGET, "++{direction} decoded: fin={} opcode={} data={}", fin as u8, opcode, bytes_repr(payload));
}

#[cfg(test)]
mod tests {
    #[test]
    fn repr_matches_python() {
        assert_eq!(super::bytes_repr(b"\x81\x05hi'\n\\"), "b\"\\x81\\x05hi'\\n\\\\\"");
        assert_eq!(super::bytes_repr(b"a'b\"c"), "b'a\\'b\"c'");
        assert_eq!(super::bytes_repr(b""), "b''");
    }
}
