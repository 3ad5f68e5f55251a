//! The sending half of a connection: frames in, wire bytes out.
//!
//! `Sender` encodes and masks data frames, compressing them when permessage-deflate was
//! agreed: its DEFLATE stream must see messages in wire order, so a driver keeps it under
//! the same lock as the socket writes. The close handshake's one bit of sending state,
//! "our close frame went out", is `CloseSent`, shared with the receiving side's replies:
//! after it, no pong is sent, and a peer's close is not echoed twice. Control replies are
//! encoded by `encode_reply` without the `Sender`, so a driver can answer a ping while a
//! large send holds the data path.

use std::sync::atomic::{AtomicBool, Ordering};

use super::codec::Reply;
use super::deflate::{Deflater, Params};
use super::frame::{self, OP_BINARY, OP_CLOSE, OP_CONT, OP_PONG, OP_TEXT};

/// Buffers above this are released after use, so idle connections stay small.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Whether our close frame was sent (or is being sent). Set once, never cleared.
#[derive(Debug, Default)]
pub struct CloseSent(AtomicBool);

impl CloseSent {
    pub fn new() -> Self {
        CloseSent(AtomicBool::new(false))
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Sets the flag; true for the one caller that set it first (who sends the frame).
    pub fn claim(&self) -> bool {
        !self.0.swap(true, Ordering::AcqRel)
    }
}

#[derive(Debug, Default)]
pub struct Sender {
    /// The compressor (None without permessage-deflate, or when our window is limited to 8
    /// bits, which zlib cannot produce: messages then go uncompressed).
    deflater: Option<Box<Deflater>>,
    /// A compressed fragmented message is in progress.
    compressing: bool,
    zbuf: Vec<u8>,
}

impl Sender {
    pub fn new(deflate: Option<&Params>) -> Self {
        Sender { deflater: deflate.and_then(Deflater::new).map(Box::new), compressing: false, zbuf: Vec::new() }
    }

    /// Appends one frame's wire bytes to `out`; returns the frame's length on the wire.
    ///
    /// With permessage-deflate, data frames whose RSV bits are clear are compressed: the
    /// first frame of a message gets RSV1; the continuation frames of a compressed message
    /// (sent with `fin=false` first) continue its DEFLATE stream, each ending in a sync
    /// flush so the peer can inflate it as it arrives, and the final one drops the
    /// `00 00 ff ff` tail. A data frame with RSV bits set by the caller, and the
    /// continuations of a message it starts, go out as given. Control frames are never
    /// compressed.
    pub fn encode(&mut self, fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let compress = match opcode {
            OP_TEXT | OP_BINARY => self.deflater.is_some() && rsv == 0,
            OP_CONT => self.compressing,
            _ => false,
        };
        if opcode == OP_TEXT || opcode == OP_BINARY {
            self.compressing = compress && !fin;
        }
        match self.deflater.as_mut() {
            Some(d) if compress => {
                self.zbuf.clear();
                d.compress(payload, fin, &mut self.zbuf);
                if fin {
                    self.compressing = false;
                }
                let rsv = if opcode == OP_CONT { rsv } else { rsv | 0b100 };
                frame::encode_frame(out, fin, rsv, opcode, &self.zbuf, Some(mask));
                if self.zbuf.capacity() > KEEP_CAPACITY {
                    self.zbuf = Vec::new();
                }
            }
            _ => frame::encode_frame(out, fin, rsv, opcode, payload, Some(mask)),
        }
        out.len() - start
    }

    /// Whether `encode` would write this frame as it is (no compression, no compressor
    /// state to move): always without permessage-deflate, and for control frames.
    pub fn writes_as_is(&self, opcode: u8) -> bool {
        self.deflater.is_none() || frame::is_control(opcode)
    }

    /// Our close frame with `payload` (code and reason), unless one was sent already:
    /// returns whether it was encoded.
    pub fn encode_close(close: &CloseSent, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) -> bool {
        if !close.claim() {
            return false;
        }
        frame::encode_frame(out, true, 0, OP_CLOSE, payload, Some(mask));
        true
    }
}

/// Encodes the answer the receiving side asked for: a pong (not after our close, RFC 6455
/// 5.5.1), or the echo of the peer's close code (only if ours was not sent). Returns the
/// frame's payload when something was encoded (for traces).
pub fn encode_reply<'a>(reply: &'a Reply, close: &CloseSent, mask: [u8; 4], out: &mut Vec<u8>) -> Option<std::borrow::Cow<'a, [u8]>> {
    match reply {
        Reply::Pong(data) => {
            if close.is_set() {
                return None;
            }
            frame::encode_frame(out, true, 0, OP_PONG, data, Some(mask));
            Some(std::borrow::Cow::Borrowed(data))
        }
        Reply::Close(code, reason) => {
            let mut payload = Vec::new();
            if let Some(c) = code {
                payload.extend_from_slice(&c.to_be_bytes());
                payload.extend_from_slice(reason);
            }
            Sender::encode_close(close, &payload, mask, out).then_some(std::borrow::Cow::Owned(payload))
        }
    }
}

/// The close frame that fails the connection after a protocol error (RFC 6455 7.1.7), unless
/// ours was sent already.
pub fn encode_failure(code: u16, close: &CloseSent, mask: [u8; 4], out: &mut Vec<u8>) -> bool {
    Sender::encode_close(close, &code.to_be_bytes(), mask, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [1, 2, 3, 4];

    #[test]
    fn frames_are_masked_and_measured() {
        let mut s = Sender::new(None);
        let mut out = Vec::new();
        assert_eq!(s.encode(true, 0, OP_TEXT, b"hello", MASK, &mut out), 11);
        let h = frame::parse_header(&out).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode, h.len, h.mask), (true, OP_TEXT, 5, Some(MASK)));
        let mut payload = out[h.header_len..].to_vec();
        frame::apply_mask(&mut payload, MASK);
        assert_eq!(payload, b"hello");
    }

    #[test]
    fn pongs_stop_after_our_close_and_close_goes_once() {
        let close = CloseSent::new();
        let mut out = Vec::new();
        assert!(encode_reply(&Reply::Pong(b"p".to_vec()), &close, MASK, &mut out).is_some());
        assert!(encode_reply(&Reply::Close(Some(1000), vec![]), &close, MASK, &mut out).is_some());
        let len = out.len();
        assert!(encode_reply(&Reply::Pong(b"p".to_vec()), &close, MASK, &mut out).is_none());
        assert!(encode_reply(&Reply::Close(Some(1000), vec![]), &close, MASK, &mut out).is_none());
        assert!(!encode_failure(1002, &close, MASK, &mut out));
        assert_eq!(out.len(), len);
    }

    #[test]
    fn compressed_messages_set_rsv1_on_the_first_frame_only() {
        let mut s = Sender::new(Some(&Params::default()));
        let mut out = Vec::new();
        s.encode(false, 0, OP_TEXT, b"Hello, ", MASK, &mut out);
        let first = frame::parse_header(&out).unwrap().unwrap();
        assert_eq!(first.rsv, 0b100);
        let mut cont = Vec::new();
        s.encode(true, 0, OP_CONT, b"world", MASK, &mut cont);
        assert_eq!(frame::parse_header(&cont).unwrap().unwrap().rsv, 0);
        let mut ping = Vec::new();
        s.encode(true, 0, frame::OP_PING, b"x", MASK, &mut ping);
        assert_eq!(frame::parse_header(&ping).unwrap().unwrap().rsv, 0);
    }
}
