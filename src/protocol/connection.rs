//! The whole client protocol as one sans-I/O object, for a driver that reads and writes from
//! one place at a time (the Python-socket driver; later an asyncio one): bytes from the
//! peer in, messages out; frames to send in, wire bytes out.
//!
//! It is the receiving half (`Receiver`), the sending half (`Sender`) and the close state
//! together; the native engine holds the same parts under separate locks instead, so that
//! a large send never stops it from answering pings.

use super::codec::{Config, Reply, TracedFrame};
use super::receiver::Receiver;
use super::sender::{encode_failure, encode_reply, CloseSent, Sender};

/// Where the close handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    /// Our close frame went out; the peer's has not come yet.
    Closing,
    /// Both close frames were exchanged, or the connection failed.
    Closed,
}

#[derive(Debug)]
pub struct Protocol {
    rx: Receiver,
    tx: Sender,
    close: CloseSent,
    /// Wire bytes waiting to be written by the driver (replies, frames).
    out: Vec<u8>,
    replies: Vec<Reply>,
}

impl Protocol {
    /// `cfg.deflate` holds the permessage-deflate parameters agreed in the handshake (both
    /// directions use them).
    pub fn new(cfg: Config) -> Self {
        let tx = Sender::new(cfg.deflate.as_ref());
        Protocol { rx: Receiver::new(cfg), tx, close: CloseSent::new(), out: Vec::new(), replies: Vec::new() }
    }

    pub fn receiver(&mut self) -> &mut Receiver {
        &mut self.rx
    }

    pub fn receiver_ref(&self) -> &Receiver {
        &self.rx
    }

    /// Feeds bytes read from the peer; the replies they call for (pong, close echo) are
    /// queued for `data_to_send`, each encoded frame's payload reported to `on_reply` (for
    /// traces). Returns whether something new can be taken.
    pub fn receive_data(
        &mut self,
        data: &[u8],
        mask: impl FnMut() -> [u8; 4],
        traced: Option<&mut Vec<TracedFrame>>,
        on_reply: impl FnMut(&[u8], u8, &[u8]),
    ) -> bool {
        let mut replies = std::mem::take(&mut self.replies);
        let progress = self.rx.receive(data, &mut replies, traced);
        self.encode_replies(&mut replies, mask, on_reply);
        self.replies = replies;
        progress
    }

    fn encode_replies(&mut self, replies: &mut Vec<Reply>, mut mask: impl FnMut() -> [u8; 4], mut on_reply: impl FnMut(&[u8], u8, &[u8])) {
        for r in replies.drain(..) {
            let start = self.out.len();
            if let Some(payload) = encode_reply(&r, &self.close, mask(), &mut self.out) {
                let opcode = match r {
                    Reply::Pong(_) => super::frame::OP_PONG,
                    Reply::Close(..) => super::frame::OP_CLOSE,
                };
                on_reply(&self.out[start..], opcode, &payload);
            }
        }
    }

    /// Encodes a frame to send; returns its length on the wire.
    pub fn send_frame(&mut self, fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: [u8; 4]) -> usize {
        if opcode == super::frame::OP_CLOSE {
            // A close frame built by the caller counts as our close.
            self.close.claim();
        }
        self.tx.encode(fin, rsv, opcode, payload, mask, &mut self.out)
    }

    /// The wire length of a frame `encode_as_is` can write into a buffer of that size (no
    /// compression applies to it), or None.
    pub fn as_is_len(&self, opcode: u8, payload_len: usize) -> Option<usize> {
        self.tx.writes_as_is(opcode).then(|| super::frame::frame_len(payload_len, true))
    }

    /// Writes a frame `as_is_len` accepted straight into `dst` (exactly that long): the
    /// header, then the payload masked, with no buffer in between.
    pub fn encode_as_is(&mut self, fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: [u8; 4], dst: &mut [u8]) {
        if opcode == super::frame::OP_CLOSE {
            self.close.claim();
        }
        let mut header = Vec::with_capacity(super::frame::MAX_HEADER_LEN);
        super::frame::encode_header(&mut header, fin, rsv, opcode, payload.len(), Some(mask));
        dst[..header.len()].copy_from_slice(&header);
        super::frame::mask_to(&mut dst[header.len()..], payload, mask);
    }

    /// Encodes our close frame unless one was sent; returns whether it was.
    pub fn send_close(&mut self, payload: &[u8], mask: [u8; 4]) -> bool {
        Sender::encode_close(&self.close, payload, mask, &mut self.out)
    }

    /// After a failure was reached: encodes the close frame it owes the peer (RFC 6455
    /// 7.1.7), unless ours was sent. Returns the code when the driver must now drop the
    /// connection.
    pub fn fail(&mut self, mask: [u8; 4]) -> Option<u16> {
        let code = self.rx.take_owed_close()?;
        encode_failure(code, &self.close, mask, &mut self.out);
        Some(code)
    }

    /// The wire bytes to write now (taken: the driver owns them).
    pub fn data_to_send(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn has_data_to_send(&self) -> bool {
        !self.out.is_empty()
    }

    pub fn close_sent(&self) -> bool {
        self.close.is_set()
    }

    pub fn state(&self) -> State {
        let received = self.rx.peer_close().is_some() || self.rx.bytes_wanted() == 0;
        match (self.close.is_set(), received) {
            (_, true) => State::Closed,
            (true, false) => State::Closing,
            (false, false) => State::Open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::Mode;
    use crate::protocol::frame::{self, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

    const MASK: [u8; 4] = [9, 9, 9, 9];

    fn server_frame(op: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        frame::encode_frame(&mut v, true, 0, op, payload, None);
        v
    }

    fn ops(wire: &[u8]) -> Vec<u8> {
        let mut ops = Vec::new();
        let mut rest = wire;
        while let Some(h) = frame::parse_header(rest).unwrap() {
            ops.push(h.opcode);
            rest = &rest[h.header_len + h.len as usize..];
        }
        ops
    }

    #[test]
    fn a_ping_is_answered_and_the_close_handshake_completes() {
        let mut p = Protocol::new(Config { mode: Mode::Fragments, ..Config::default() });
        assert_eq!(p.state(), State::Open);
        p.receive_data(&server_frame(OP_PING, b"hi"), || MASK, None, |_, _, _| {});
        assert_eq!(ops(&p.data_to_send()), vec![OP_PONG]);
        assert!(p.send_close(&1000u16.to_be_bytes(), MASK));
        assert!(!p.send_close(&1000u16.to_be_bytes(), MASK), "once");
        assert_eq!(p.state(), State::Closing);
        // A ping after our close is not answered; the peer's close is not echoed again.
        let mut wire = server_frame(OP_PING, b"late");
        wire.extend(server_frame(OP_CLOSE, &1000u16.to_be_bytes()));
        p.receive_data(&wire, || MASK, None, |_, _, _| {});
        assert_eq!(ops(&p.data_to_send()), vec![OP_CLOSE]);
        assert_eq!(p.state(), State::Closed);
    }

    #[test]
    fn a_failure_owes_one_close_frame_with_its_code() {
        let mut p = Protocol::new(Config::default());
        let mut wire = server_frame(OP_TEXT, b"ok");
        wire.extend(server_frame(OP_TEXT, b"\xff"));
        p.receive_data(&wire, || MASK, None, |_, _, _| {});
        assert_eq!(p.fail(MASK), None, "the reader has not reached it");
        assert_eq!(p.receiver().take_message(false).unwrap().data, b"ok");
        assert_eq!(p.fail(MASK), Some(1007));
        let out = p.data_to_send();
        let h = frame::parse_header(&out).unwrap().unwrap();
        assert_eq!(h.opcode, OP_CLOSE);
        let mut payload = out[h.header_len..].to_vec();
        frame::apply_mask(&mut payload, MASK);
        assert_eq!(payload, 1007u16.to_be_bytes());
        assert_eq!(p.state(), State::Closed);
    }
}
