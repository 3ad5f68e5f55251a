//! The client state machine (src/protocol/codec.rs) in its three modes, fed the way the
//! engine feeds it: socket reads of any size, direct reads into the message buffer for
//! large payloads (`direct_read_hint` / `take_buffer` / `return_buffer`), and read buffers
//! the codec may take over as a payload (`feed_read`; here from payloads of 1 byte on, with
//! buffers of random spare room, so short inputs take that path too).
//!
//! Input: byte 0 is the configuration (bits 0-1 mode: 0 messages, 1 fragments, 2 raw,
//! 3 messages; bit 2 skip_utf8; bit 3 permessage-deflate negotiated, bit 4 with
//! server_no_context_takeover and a 9-bit window; bits 5-7 max_message), byte 1 seeds the
//! read sizes, the rest is what the server sends after the handshake.
//!
//! Checked:
//! - no panic, whatever the bytes and however they are cut;
//! - the same items, replies and failure whether the stream arrives in one read or in many
//!   (with or without direct reads and tracing), compressed messages included;
//! - without deflate, the outcome equals the one of `model`, a plain whole-buffer reading
//!   of RFC 6455 written independently here (items, replies, and the close code of a
//!   failure); with deflate (RSV1 messages inflated as they arrive) the invariants below
//!   must hold, inflated sizes included;
//! - invariants a Python caller relies on: text is valid UTF-8 unless skip_utf8 is set, no
//!   item exceeds max_message, nor do the fragments of one message joined (the engine
//!   joins them for recv()), nothing follows the close item, pongs echo <= 125 bytes;
//! - switching the mode between reads (as `set_mode` may) never panics.
//!
//! The model has unit tests of its own (`cargo test --manifest-path fuzz/Cargo.toml`, run by
//! `scripts/fuzz --ci`): without `cfg(test)` this is a libFuzzer binary with no `main`.
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code, unused_imports))]

use std::collections::VecDeque;

use _native::protocol::deflate::Params;
use _native::protocol::codec::{is_valid_close_code, Codec, Config, Failure, Item, Mode, Reply, Sink, TracedFrame};
use _native::protocol::frame::{apply_mask, is_known_opcode, parse_header, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT};
#[cfg(not(test))]
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    items: Vec<Item>,
    replies: Vec<Reply>,
    failure: Option<Failure>,
}

fn config(b: u8) -> Config {
    let mode = match b & 3 {
        1 => Mode::Fragments,
        2 => Mode::Raw,
        _ => Mode::Messages,
    };
    let max_message = match b >> 5 {
        4 => Some(0),
        5 => Some(125),
        6 => Some(1000),
        7 => Some(70_000),
        _ => None,
    };
    let deflate = (b & 8 != 0).then(|| {
        if b & 16 != 0 {
            Params { server_max_window_bits: 9, server_no_context_takeover: true, ..Params::default() }
        } else {
            Params::default()
        }
    });
    Config { mode, skip_utf8: b & 4 != 0, max_message, deflate }
}

struct Rng(u32);
impl Rng {
    fn next(&mut self) -> u32 {
        // xorshift32
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    /// A read size: mostly small, sometimes everything left.
    fn read_size(&mut self, left: usize) -> usize {
        let r = self.next();
        let n = match r % 8 {
            0 => left,
            1 => 1,
            2 => 2 + (r >> 8) as usize % 14,
            _ => 1 + (r >> 8) as usize % 512,
        };
        n.clamp(1, left.max(1))
    }
}

fn one_read(cfg: &Config, wire: &[u8]) -> Outcome {
    let mut c = Codec::new(cfg.clone());
    let (mut items, mut replies) = (VecDeque::new(), Vec::new());
    let mut sink = Sink { items: &mut items, replies: &mut replies, traced: None };
    let failure = c.feed(wire, &mut sink).err();
    Outcome { items: items.into(), replies, failure }
}

fn many_reads(cfg: &Config, wire: &[u8], seed: u8) -> Outcome {
    let mut rng = Rng(0x9E37_79B9 ^ seed as u32 | 1);
    let mut c = Codec::new(cfg.clone());
    let (mut items, mut replies, mut traced) = (VecDeque::new(), Vec::<Reply>::new(), Vec::<TracedFrame>::new());
    let trace = seed & 1 != 0;
    let mut pos = 0;
    let mut failure = None;
    while pos < wire.len() {
        let n = rng.read_size(wire.len() - pos);
        let mut sink = Sink { items: &mut items, replies: &mut replies, traced: if trace { Some(&mut traced) } else { None } };
        let res = match c.direct_read_hint() {
            // What the engine does for a large payload: read straight into the buffer.
            Some(remaining) => {
                let take = (n as u64).min(remaining) as usize;
                let mut buf = c.take_buffer();
                buf.extend_from_slice(&wire[pos..pos + take]);
                pos += take;
                c.return_buffer(buf, take, &mut sink)
            }
            None if rng.next() % 2 == 0 => {
                // A read buffer as the engine's, with spare room of 0-63 bytes.
                let mut buf = Vec::with_capacity(n + (rng.next() % 64) as usize);
                buf.extend_from_slice(&wire[pos..pos + n]);
                pos += n;
                c.feed_read(buf, 1 + (rng.next() % 4) as u64, &mut sink).0
            }
            None => {
                let r = c.feed(&wire[pos..pos + n], &mut sink);
                pos += n;
                r
            }
        };
        if let Err(f) = res {
            failure = Some(f);
            break;
        }
    }
    if trace && cfg.mode == Mode::Raw {
        assert_eq!(traced.len(), items.len());
    }
    Outcome { items: items.into(), replies, failure }
}

/// Mode switches between reads: only "no panic" is checked.
fn switching(cfg: &Config, wire: &[u8], seed: u8) {
    let mut rng = Rng(0x1234_5678 ^ (seed as u32) << 8 | 1);
    let mut c = Codec::new(cfg.clone());
    let (mut items, mut replies) = (VecDeque::new(), Vec::new());
    let mut pos = 0;
    while pos < wire.len() {
        let r = rng.next();
        if r % 4 == 0 {
            c.set_mode([Mode::Messages, Mode::Fragments, Mode::Raw][(r >> 4) as usize % 3]);
            c.set_skip_utf8(r & 0x100 != 0);
        }
        let n = rng.read_size(wire.len() - pos);
        let mut sink = Sink { items: &mut items, replies: &mut replies, traced: None };
        if let Some(remaining) = c.direct_read_hint() {
            let take = (n as u64).min(remaining) as usize;
            let mut buf = c.take_buffer();
            buf.extend_from_slice(&wire[pos..pos + take]);
            pos += take;
            if c.return_buffer(buf, take, &mut sink).is_err() {
                return;
            }
        } else {
            if c.feed(&wire[pos..pos + n], &mut sink).is_err() {
                return;
            }
            pos += n;
        }
    }
}

/// Whether `b` can still be the start of valid UTF-8 (an incomplete last sequence is fine).
fn utf8_prefix_ok(b: &[u8]) -> bool {
    match std::str::from_utf8(b) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

fn proto<T>(_: T) -> Option<u16> {
    Some(1002)
}

/// RFC 6455 as a whole-buffer loop, independent of the codec's incremental design.
/// Returns items, replies and the close code of a failure.
fn model(cfg: &Config, wire: &[u8]) -> (Vec<Item>, Vec<Reply>, Option<u16>) {
    let mut items = Vec::new();
    let mut replies = Vec::new();
    let mut pos = 0usize;
    let mut msg_op: Option<u8> = None;
    let mut message: Vec<u8> = Vec::new(); // the whole data message so far
    let fail = loop {
        let h = match parse_header(&wire[pos..]) {
            Ok(Some(h)) => h,
            Ok(None) => break None,
            Err(e) => break proto(e),
        };
        pos += h.header_len;
        if h.len > i64::MAX as u64 {
            break Some(1002);
        }
        let end = pos.saturating_add(h.len.min(usize::MAX as u64) as usize).min(wire.len());
        let avail = &wire[pos..end];
        let complete = avail.len() as u64 == h.len;
        if cfg.mode == Mode::Raw {
            if cfg.max_message.is_some_and(|m| h.len > m) {
                break Some(1009);
            }
            if !complete {
                break None;
            }
            let mut data = avail.to_vec();
            if let Some(k) = h.mask {
                apply_mask(&mut data, k);
            }
            items.push(Item { opcode: h.opcode, fin: h.fin, rsv: h.rsv, data: data.into() });
            pos = end;
            continue;
        }
        if h.mask.is_some() || h.rsv != 0 || !is_known_opcode(h.opcode) {
            break Some(1002);
        }
        if h.opcode & 8 != 0 {
            if !h.fin || h.len > 125 {
                break Some(1002);
            }
            if !complete {
                break None;
            }
            pos = end;
            let data = avail.to_vec();
            match h.opcode {
                OP_PING => {
                    replies.push(Reply::Pong(data.clone()));
                    items.push(Item { opcode: OP_PING, fin: true, rsv: 0, data: data.into() });
                }
                OP_PONG => items.push(Item { opcode: OP_PONG, fin: true, rsv: 0, data: data.into() }),
                _ => {
                    let code = match data.len() {
                        0 => None,
                        1 => break Some(1002),
                        _ => {
                            let code = u16::from_be_bytes([data[0], data[1]]);
                            if !is_valid_close_code(code) {
                                break Some(1002);
                            }
                            if std::str::from_utf8(&data[2..]).is_err() {
                                break Some(1007);
                            }
                            Some(code)
                        }
                    };
                    replies.push(Reply::Close(code, vec![]));
                    items.push(Item { opcode: OP_CLOSE, fin: true, rsv: 0, data: data.into() });
                    break None;
                }
            }
            continue;
        }
        match (h.opcode, msg_op) {
            (OP_CONT, None) | (OP_TEXT | OP_BINARY, Some(_)) => break Some(1002),
            (OP_TEXT | OP_BINARY, None) => {
                msg_op = Some(h.opcode);
                message.clear();
            }
            _ => {}
        }
        // max_message bounds the whole message in the fragment mode too: the engine joins
        // the fragments it delivers one by one (recv_frame) into one message for recv().
        if cfg.max_message.is_some_and(|m| (message.len() as u64).saturating_add(h.len) > m) {
            break Some(1009);
        }
        let checks = !cfg.skip_utf8 && msg_op == Some(OP_TEXT);
        let before = message.len();
        message.extend_from_slice(avail);
        if checks && !utf8_prefix_ok(&message) {
            break Some(1007);
        }
        if !complete {
            break None;
        }
        pos = end;
        if h.fin && checks && std::str::from_utf8(&message).is_err() {
            break Some(1007);
        }
        if cfg.mode == Mode::Fragments {
            items.push(Item { opcode: h.opcode, fin: h.fin, rsv: 0, data: message[before..].to_vec().into() });
        } else if h.fin {
            items.push(Item { opcode: msg_op.unwrap(), fin: true, rsv: 0, data: message.clone().into() });
        }
        if h.fin {
            msg_op = None;
        }
    };
    (items, replies, fail)
}

fn check_invariants(cfg: &Config, out: &Outcome) {
    // The data fragments of the message in progress so far, joined as the engine joins them.
    let mut joined = 0u64;
    for (i, item) in out.items.iter().enumerate() {
        if let Some(m) = cfg.max_message {
            if item.opcode & 8 == 0 || cfg.mode == Mode::Raw {
                assert!(item.data.len() as u64 <= m, "item over max_message");
            }
            if cfg.mode == Mode::Fragments && item.opcode & 8 == 0 {
                joined += item.data.len() as u64;
                assert!(joined <= m, "fragments joined over max_message");
                if item.fin {
                    joined = 0;
                }
            }
        }
        if cfg.mode == Mode::Raw {
            continue;
        }
        assert_eq!(item.rsv & 0b100, 0, "RSV1 left on an inflated or plain item");
        if item.opcode == OP_CLOSE {
            assert_eq!(i, out.items.len() - 1, "an item after the close item");
        }
        if cfg.mode == Mode::Messages && item.opcode == OP_TEXT && !cfg.skip_utf8 {
            assert!(std::str::from_utf8(&item.data).is_ok(), "invalid UTF-8 delivered as text");
        }
        if cfg.mode == Mode::Messages && item.opcode & 8 == 0 {
            assert!(item.fin && item.opcode != OP_CONT);
        }
    }
    for r in &out.replies {
        if let Reply::Pong(d) = r {
            assert!(d.len() <= 125);
        }
    }
    if let Some(f) = &out.failure {
        assert!(matches!(f.close_code(), 1002 | 1007 | 1009));
    }
}

#[cfg(not(test))]
fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cfg = config(data[0]);
    let wire = &data[2..];

    let whole = one_read(&cfg, wire);
    check_invariants(&cfg, &whole);

    let pieces = many_reads(&cfg, wire, data[1]);
    assert_eq!(whole, pieces, "the outcome depends on how the stream was cut");

    if cfg.deflate.is_none() {
        let (items, replies, code) = model(&cfg, wire);
        assert_eq!(whole.items, items, "items differ from the model");
        assert_eq!(whole.replies, replies, "replies differ from the model");
        assert_eq!(whole.failure.as_ref().map(Failure::close_code), code, "failure differs from the model: {:?}", whole.failure);
    }

    switching(&cfg, wire, data[1]);
});

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, op: u8, len: u8, payload: &[u8]) -> Vec<u8> {
        [&[(fin as u8) << 7 | op, len][..], payload].concat()
    }

    /// Found by this target (scripts/fuzz 45 codec): the fragment mode, max_message 125, UTF-8
    /// checked. A text message begins with an empty frame, then a continuation of 88 bytes
    /// (valid: "X" and NULs), 10 empty continuations, and a continuation whose header
    /// announces 88 bytes more (176 in all) and whose payload has a 0xff 24 bytes in.
    ///
    /// The codec said 1009 at that header, the model 1007 at the 0xff: the model counted
    /// max_message per frame in the fragment mode (as the codec did before the engine began
    /// joining fragments for recv()), so it saw no size violation at all. The codec is right:
    /// the limit bounds the joined message in every mode, and the size violation is known at
    /// the header's last byte, before any of that frame's payload, so it comes first on the
    /// wire however the reads cut it (the 0xff is 25 bytes later).
    #[test]
    fn max_message_counts_the_whole_message_in_the_fragment_mode() {
        let input = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/codec/regression-fragments-max-message")).unwrap();
        assert_eq!(input.len(), 153);
        let cfg = config(input[0]);
        assert_eq!((cfg.mode, cfg.max_message, cfg.skip_utf8, cfg.deflate.is_some()), (Mode::Fragments, Some(125), false, false));
        let mut wire = frame(false, OP_TEXT, 0, b"");
        wire.extend(frame(false, OP_CONT, 88, &[&[b'X'; 14][..], &[0; 74]].concat()));
        for _ in 0..10 {
            wire.extend(frame(false, OP_CONT, 0, b""));
        }
        wire.extend(frame(false, OP_CONT, 88, b"XXXXXXXXXXXXXXXXXXXXXX*\x00\xff\x01\xf4\xffstom\xff\xf9\x00\xce\xb5"));
        assert_eq!(&input[2..], &wire[..]);

        let (items, _, code) = model(&cfg, &wire);
        assert_eq!(code, Some(1009));
        assert_eq!(items.len(), 12, "every frame before the oversized one is delivered");
        assert_eq!(one_read(&cfg, &wire).failure.as_ref().map(Failure::close_code), Some(1009));
        // Without the limit, the 0xff is what fails it; one byte less than the 176 bytes is
        // too little, exactly 176 is enough.
        for (max, want) in [(None, 1007), (Some(175), 1009), (Some(176), 1007)] {
            let cfg = Config { max_message: max, ..cfg.clone() };
            assert_eq!(model(&cfg, &wire).2, Some(want), "{max:?}");
            assert_eq!(one_read(&cfg, &wire).failure.as_ref().map(Failure::close_code), Some(want), "{max:?}");
        }
    }

    #[test]
    fn max_message_counts_the_whole_message_in_every_mode_but_raw() {
        let wire = [frame(false, OP_BINARY, 100, &[1; 100]), frame(true, OP_CONT, 100, &[2; 100])].concat();
        for mode in [Mode::Messages, Mode::Fragments] {
            let cfg = Config { mode, max_message: Some(125), ..Config::default() };
            assert_eq!(model(&cfg, &wire).2, Some(1009), "{mode:?}");
            let cfg = Config { max_message: Some(200), ..cfg };
            assert_eq!(model(&cfg, &wire).2, None, "{mode:?}");
        }
        // Raw mode: frames, not messages, are what the limit bounds.
        let cfg = Config { mode: Mode::Raw, max_message: Some(125), ..Config::default() };
        assert_eq!(model(&cfg, &wire), (vec![
            Item { opcode: OP_BINARY, fin: false, rsv: 0, data: vec![1; 100].into() },
            Item { opcode: OP_CONT, fin: true, rsv: 0, data: vec![2; 100].into() },
        ], vec![], None));
    }
}
