//! permessage-deflate (src/protocol/deflate.rs): the decompressor with its size allowance,
//! and the negotiation of the server's `Sec-WebSocket-Extensions` answer.
//!
//! Input: byte 0 picks the part (bits 0-1: 0 and 3 inflate hostile bytes, 1 round trip
//! through our own compressor, 2 negotiate) and the parameters (bits 2-5); byte 1 seeds the
//! cutting; the rest is the compressed stream, the plain text, or the header value.
//!
//! Checked:
//! - inflate: no panic on any bytes, however they are cut into frames and messages; every
//!   call appends at most `allowance + 1` bytes (the one byte over is how `TooBig` is seen),
//!   and at most `allowance` when it succeeds; the buffer's capacity stays within a step of
//!   what was allowed (a small message never reserves gigabytes); the outcome does not
//!   depend on the allowance: with each message's allowance set to exactly the size it
//!   inflated to, everything inflates the same, and one byte less is `TooBig` for that
//!   message;
//! - round trip: what `Deflater` compresses (fragmented, context kept or not, windows 9-15)
//!   `Inflater` gives back unchanged;
//! - negotiate: no panic on any header value; an accepted answer stays within the offer
//!   (window bits 8-15, never above what we offered, the no-context-takeover we asked for),
//!   and the agreed parameters build an `Inflater` and a `Deflater` without panicking.
#![no_main]

use _native::protocol::deflate::{negotiate, Deflater, InflateError, Inflater, Offer, Params};
use libfuzzer_sys::fuzz_target;

struct Rng(u32);
impl Rng {
    fn next(&mut self) -> u32 {
        // xorshift32
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() as usize) % n.max(1)
    }
}

/// Output step of `Inflater` (its `STEP`): the most a single reservation asks for.
const STEP: usize = 64 * 1024;

/// A message as it arrives: its frames' compressed payloads.
type Message<'a> = Vec<&'a [u8]>;

/// Cuts `wire` into messages of one or more frames (empty frames and messages included);
/// seed 0 keeps it whole, one message in one frame (the captured seeds are such messages).
fn cut(wire: &[u8], seed: u8) -> Vec<Message<'_>> {
    if seed == 0 {
        return vec![vec![wire]];
    }
    let mut rng = Rng(0x9E37_79B9 ^ (seed as u32) << 3 | 1);
    let mut messages = Vec::new();
    let mut pos = 0;
    loop {
        let mut frames = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let n = match rng.below(4) {
                0 => wire.len() - pos,
                1 => 0,
                _ => rng.below(64).min(wire.len() - pos),
            };
            frames.push(&wire[pos..pos + n]);
            pos += n;
        }
        messages.push(frames);
        if pos == wire.len() || messages.len() >= 64 {
            // Whatever is left goes into the last message.
            messages.last_mut().unwrap().push(&wire[pos..]);
            return messages;
        }
    }
}

/// What one `inflate`/`finish` call may do to `out`, whatever the input.
fn check_call(out: &[u8], capacity: usize, before: usize, allowance: u64, r: &Result<(), InflateError>) {
    let added = (out.len() - before) as u64;
    assert!(added <= allowance.saturating_add(1), "appended {added} bytes for an allowance of {allowance}");
    if r.is_ok() {
        assert!(added <= allowance, "Ok after appending {added} bytes for an allowance of {allowance}");
    }
    // `reserve` may double the buffer, never more: memory follows what was allowed.
    let bound = 2 * (out.len() + STEP + 1);
    assert!(capacity <= bound.max(before * 2 + STEP + 1), "capacity {capacity} for {} bytes", out.len());
}

/// Inflates each message with `allowance(i)` bytes allowed; returns the inflated messages
/// and the error that ended the run, if any (a connection fails on the first one).
fn inflate_run(p: &Params, messages: &[Message<'_>], allowance: impl Fn(usize) -> u64) -> (Vec<Vec<u8>>, Option<InflateError>) {
    let mut inf = Inflater::new(p);
    let mut done = Vec::new();
    for (i, frames) in messages.iter().enumerate() {
        let limit = allowance(i);
        let mut out = Vec::new();
        for f in frames {
            let before = out.len();
            let left = limit - before as u64;
            let r = inf.inflate(f, &mut out, left);
            check_call(&out, out.capacity(), before, left, &r);
            if let Err(e) = r {
                return (done, Some(e));
            }
        }
        let before = out.len();
        let left = limit - before as u64;
        let r = inf.finish(&mut out, left);
        check_call(&out, out.capacity(), before, left, &r);
        if let Err(e) = r {
            return (done, Some(e));
        }
        done.push(out);
    }
    (done, None)
}

fn params(b: u8) -> Params {
    Params {
        client_max_window_bits: 8 + (b >> 2 & 7),
        server_max_window_bits: 8 + (b >> 2 & 7),
        client_no_context_takeover: b & 0x20 != 0,
        server_no_context_takeover: b & 0x20 != 0,
    }
}

fn hostile(sel: u8, seed: u8, wire: &[u8]) {
    let p = params(sel);
    let messages = cut(wire, seed);
    // Unlimited, as without max_size.
    let (free, err) = inflate_run(&p, &messages, |_| u64::MAX);
    assert!(!matches!(err, Some(InflateError::TooBig)), "TooBig without a limit");
    // Each message allowed exactly what it inflated to: the same messages, the same end.
    let (exact, err2) = inflate_run(&p, &messages, |i| free.get(i).map_or(u64::MAX, |m| m.len() as u64));
    assert_eq!(free, exact, "the output depends on the allowance");
    assert_eq!(err, err2, "the outcome depends on the allowance");
    // One byte less for one non-empty message: TooBig there, not before, not something else.
    if let Some(k) = free.iter().position(|m| !m.is_empty()).map(|first| first + seed as usize % (free.len() - first)) {
        if !free[k].is_empty() {
            let (before, e) = inflate_run(&p, &messages, |i| if i == k { free[k].len() as u64 - 1 } else { u64::MAX });
            assert_eq!(&before[..], &free[..k]);
            assert_eq!(e, Some(InflateError::TooBig));
        }
    }
    // A limit that is small anyway (max_size=10).
    let _ = inflate_run(&p, &messages, |_| 10);
}

fn round_trip(sel: u8, seed: u8, text: &[u8]) {
    let mut p = params(sel);
    p.client_max_window_bits = p.client_max_window_bits.max(9);
    p.server_max_window_bits = p.client_max_window_bits;
    let Some(mut d) = Deflater::new(&p) else { panic!("no Deflater for {p:?}") };
    let mut inf = Inflater::new(&p);
    for frames in cut(text, seed) {
        let mut wire: Vec<Vec<u8>> = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let mut out = Vec::new();
            d.compress(f, i + 1 == frames.len(), &mut out);
            wire.push(out);
        }
        let mut out = Vec::new();
        for w in &wire {
            inf.inflate(w, &mut out, u64::MAX).expect("our own compressed data");
        }
        inf.finish(&mut out, u64::MAX).expect("our own compressed data");
        assert_eq!(out, frames.concat(), "round trip changed the message");
    }
}

fn negotiation(sel: u8, seed: u8, header: &[u8]) {
    let offer = Offer {
        client_max_window_bits: match sel >> 2 & 3 {
            0 => None,
            1 => Some(None),
            _ => Some(Some(8 + seed % 8)),
        },
        server_max_window_bits: (sel & 0x10 != 0).then_some(8 + (seed >> 3) % 8),
        client_no_context_takeover: sel & 0x20 != 0,
        server_no_context_takeover: sel & 0x40 != 0,
    };
    let value = String::from_utf8_lossy(header);
    let offered = sel & 0x80 == 0;
    let r = negotiate(offered.then_some(&offer), Some(&value));
    let Ok(Some(p)) = r else { return };
    assert!(offered, "permessage-deflate accepted without an offer: {value:?}");
    assert!((8..=15).contains(&p.client_max_window_bits) && (8..=15).contains(&p.server_max_window_bits), "{p:?}");
    if let Some(Some(max)) = offer.client_max_window_bits {
        assert!(p.client_max_window_bits <= max, "{p:?} for {value:?}");
    }
    if offer.client_max_window_bits.is_none() {
        assert_eq!(p.client_max_window_bits, 15, "{value:?}");
    }
    if let Some(max) = offer.server_max_window_bits {
        assert!(p.server_max_window_bits <= max, "{p:?} for {value:?}");
    }
    if offer.server_no_context_takeover {
        assert!(p.server_no_context_takeover, "{value:?}");
    }
    if offer.client_no_context_takeover {
        assert!(p.client_no_context_takeover, "{value:?}");
    }
    let _ = Inflater::new(&p);
    let _ = Deflater::new(&p);
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (sel, seed, rest) = (data[0], data[1], &data[2..]);
    match sel & 3 {
        1 => round_trip(sel, seed, rest),
        2 => negotiation(sel, seed, rest),
        _ => hostile(sel, seed, rest),
    }
});
