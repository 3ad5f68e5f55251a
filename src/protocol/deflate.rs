//! permessage-deflate (RFC 7692), without I/O: the client's offer, the check of the server's
//! answer, and the per-message compressor and decompressor.
//!
//! Wire format (RFC 7692 7.2): a compressed message is raw DEFLATE data ending in a sync
//! flush whose last four bytes (`00 00 ff ff`) are removed by the sender and appended again
//! by the receiver. RSV1 on the first frame marks the message as compressed.
//!
//! Window bits: zlib cannot make a raw DEFLATE stream with a 256-byte window (8 bits). When
//! the server limits our window to 8 bits we therefore send messages uncompressed (RSV1
//! clear, always allowed by RFC 7692 6.1) rather than risk a window the server cannot
//! inflate. Inflating uses at least 9 bits: a larger window decodes a smaller one's output.

use std::mem::MaybeUninit;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

pub const EXTENSION: &str = "permessage-deflate";
/// The sync-flush marker removed from the end of every compressed message.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Compression level 1 (fastest), as Go's gorilla/websocket: on text it is several times
/// faster than zlib's default of 6 for a ratio a few points worse, and compressing is
/// the costly side of an echo.
const LEVEL: u32 = 1;

/// What the client offers (`compression=` option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// `client_max_window_bits`: `None` not offered, `Some(None)` offered without a value
    /// (the server may limit our window), `Some(Some(n))` we will use at most `n` bits.
    pub client_max_window_bits: Option<Option<u8>>,
    /// `server_max_window_bits=n`: asks the server to use at most `n` bits.
    pub server_max_window_bits: Option<u8>,
    /// We will not keep our compression context between messages.
    pub client_no_context_takeover: bool,
    /// Asks the server not to keep its compression context between messages.
    pub server_no_context_takeover: bool,
}

impl Default for Offer {
    /// `permessage-deflate; client_max_window_bits`, as browsers send it.
    fn default() -> Self {
        Offer {
            client_max_window_bits: Some(None),
            server_max_window_bits: None,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
        }
    }
}

fn check_bits(name: &str, bits: u8) -> Result<(), String> {
    if (8..=15).contains(&bits) {
        Ok(())
    } else {
        Err(format!("{name} must be between 8 and 15, not {bits}"))
    }
}

impl Offer {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(Some(b)) = self.client_max_window_bits {
            check_bits("client_max_window_bits", b)?;
        }
        if let Some(b) = self.server_max_window_bits {
            check_bits("server_max_window_bits", b)?;
        }
        Ok(())
    }

    /// The `Sec-WebSocket-Extensions` value.
    pub fn header_value(&self) -> String {
        let mut s = String::from(EXTENSION);
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if let Some(b) = self.server_max_window_bits {
            s.push_str(&format!("; server_max_window_bits={b}"));
        }
        match self.client_max_window_bits {
            Some(Some(b)) => s.push_str(&format!("; client_max_window_bits={b}")),
            Some(None) => s.push_str("; client_max_window_bits"),
            None => {}
        }
        s
    }
}

/// What was agreed: the parameters both sides use for the whole connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub client_max_window_bits: u8,
    pub server_max_window_bits: u8,
    pub client_no_context_takeover: bool,
    pub server_no_context_takeover: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            client_max_window_bits: 15,
            server_max_window_bits: 15,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
        }
    }
}

/// Splits a `Sec-WebSocket-Extensions` value into extensions, each a name and its
/// parameters (`name`, optional value with quotes removed). RFC 6455 9.1 grammar.
fn parse_extensions(value: &str) -> Result<Vec<(String, Vec<(String, Option<String>)>)>, String> {
    let mut out = Vec::new();
    let bad = || format!("malformed Sec-WebSocket-Extensions header: {value:?}");
    for ext in split_outside_quotes(value, ',') {
        let ext = ext.trim();
        if ext.is_empty() {
            continue; // `1#` lists allow empty elements
        }
        let mut parts = split_outside_quotes(ext, ';').into_iter();
        let name = parts.next().unwrap_or_default().trim().to_string();
        if !is_token(&name) {
            return Err(bad());
        }
        let mut params = Vec::new();
        for p in parts {
            let (k, v) = match p.split_once('=') {
                None => (p.trim(), None),
                Some((k, v)) => (k.trim(), Some(v.trim())),
            };
            if !is_token(k) {
                return Err(bad());
            }
            let v = match v {
                None => None,
                Some(v) if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') => {
                    let inner = &v[1..v.len() - 1];
                    if inner.contains('"') || inner.contains('\\') || !is_token(inner) {
                        return Err(bad());
                    }
                    Some(inner.to_string())
                }
                Some(v) if is_token(v) => Some(v.to_string()),
                Some(_) => return Err(bad()),
            };
            params.push((k.to_ascii_lowercase(), v));
        }
        out.push((name.to_ascii_lowercase(), params));
    }
    Ok(out)
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn bits_value(name: &str, v: Option<String>) -> Result<u8, String> {
    let v = v.ok_or_else(|| format!("permessage-deflate: {name} needs a value in a response"))?;
    match v.as_str() {
        "8" | "9" | "10" | "11" | "12" | "13" | "14" | "15" => Ok(v.parse().unwrap()),
        _ => Err(format!("permessage-deflate: invalid {name} value {v:?}")),
    }
}

/// Checks the server's `Sec-WebSocket-Extensions` answer (all such header values, joined)
/// against our offer: `Ok(None)` when nothing was agreed, the parameters when
/// permessage-deflate was accepted, an error (the handshake fails) for an extension we did
/// not offer, an unknown or repeated parameter, or parameters our offer does not allow.
pub fn negotiate(offer: Option<&Offer>, response: Option<&str>) -> Result<Option<Params>, String> {
    let Some(value) = response else { return Ok(None) };
    let exts = parse_extensions(value)?;
    if exts.is_empty() {
        return Ok(None);
    }
    let Some(offer) = offer else {
        return Err(format!("server chose an extension that was not offered: {value}"));
    };
    if exts.len() > 1 {
        return Err(format!("server chose more than one extension: {value}"));
    }
    let (name, params) = exts.into_iter().next().unwrap();
    if name != EXTENSION {
        return Err(format!("server chose an extension that was not offered: {name}"));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut p = Params::default();
    let mut server_bits = None;
    let mut client_bits = None;
    let mut server_nct = false;
    for (k, v) in params {
        if seen.contains(&k) {
            return Err(format!("permessage-deflate: parameter {k} repeated"));
        }
        seen.push(k.clone());
        match k.as_str() {
            "server_no_context_takeover" | "client_no_context_takeover" => {
                if v.is_some() {
                    return Err(format!("permessage-deflate: {k} takes no value"));
                }
                if k == "server_no_context_takeover" {
                    server_nct = true;
                } else {
                    p.client_no_context_takeover = true;
                }
            }
            "server_max_window_bits" => server_bits = Some(bits_value(&k, v)?),
            "client_max_window_bits" => {
                if offer.client_max_window_bits.is_none() {
                    return Err("permessage-deflate: client_max_window_bits in the response, but not offered".into());
                }
                client_bits = Some(bits_value(&k, v)?);
            }
            _ => return Err(format!("permessage-deflate: unknown parameter {k}")),
        }
    }
    // What we asked of the server must have been accepted (RFC 7692 7.1.1.1, 7.1.2.1).
    if offer.server_no_context_takeover && !server_nct {
        return Err("permessage-deflate: server_no_context_takeover was offered but not accepted".into());
    }
    if let Some(max) = offer.server_max_window_bits {
        match server_bits {
            Some(b) if b <= max => {}
            Some(b) => return Err(format!("permessage-deflate: server_max_window_bits={b} exceeds the offered {max}")),
            None => return Err("permessage-deflate: server_max_window_bits was offered but not accepted".into()),
        }
    }
    if let (Some(Some(max)), Some(b)) = (offer.client_max_window_bits, client_bits) {
        if b > max {
            return Err(format!("permessage-deflate: client_max_window_bits={b} exceeds the offered {max}"));
        }
    }
    p.server_no_context_takeover = server_nct;
    p.server_max_window_bits = server_bits.unwrap_or(15);
    // Our own window: the server's limit, else what we said we would use.
    p.client_max_window_bits = client_bits.or(offer.client_max_window_bits.flatten()).unwrap_or(15);
    // A hint we gave in the offer binds us even if the server did not repeat it.
    p.client_no_context_takeover |= offer.client_no_context_takeover;
    Ok(Some(p))
}

/// Compresses outgoing messages.
pub struct Deflater {
    c: Compress,
    no_context: bool,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").field("no_context", &self.no_context).finish()
    }
}

impl Deflater {
    /// None when our window is limited to 8 bits (messages then go out uncompressed).
    pub fn new(p: &Params) -> Option<Deflater> {
        if p.client_max_window_bits < 9 {
            return None;
        }
        Some(Deflater {
            c: Compress::new_with_window_bits(Compression::new(LEVEL), false, p.client_max_window_bits),
            no_context: p.client_no_context_takeover,
        })
    }

    /// Appends the compressed form of `data`, one fragment of a message, to `out`; `fin`
    /// ends the message (its trailing `00 00 ff ff` is dropped, the context reset when it
    /// is not taken over). Fragments of one message are parts of one DEFLATE stream.
    pub fn compress(&mut self, data: &[u8], fin: bool, out: &mut Vec<u8>) {
        let start = out.len();
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve((data.len() - consumed) / 2 + 256);
            }
            let before_in = self.c.total_in();
            let before_out = self.c.total_out();
            let spare = out.capacity() - out.len();
            self.c
                .compress_vec(&data[consumed..], out, FlushCompress::Sync)
                .expect("deflate with a valid configuration cannot fail");
            consumed += (self.c.total_in() - before_in) as usize;
            let written = (self.c.total_out() - before_out) as usize;
            // Done once every input byte is in and the flush did not fill the space.
            if consumed == data.len() && written < spare {
                break;
            }
        }
        if fin {
            if out[start..].ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            }
            if out.len() == start {
                // A sync flush right after another one emits nothing (zlib has no progress
                // to make), but the receiver appends `00 00 ff ff` to every message, which
                // only parses after a block header: send the empty stored block's header
                // byte, as RFC 7692 7.2.3.6 suggests for an empty message.
                out.push(0x00);
            }
            if self.no_context {
                self.c.reset();
            }
        }
    }
}

/// Why inflating failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InflateError {
    /// Not valid DEFLATE data (close code 1002).
    Corrupt(String),
    /// The message would grow past the size limit (close code 1009).
    TooBig,
}

fn corrupt() -> InflateError {
    InflateError::Corrupt("invalid compressed data".into())
}

/// Decompresses incoming messages.
pub struct Inflater {
    d: Decompress,
    no_context: bool,
    /// The DEFLATE stream ended (BFINAL) inside the current message: the rest of the
    /// message is ignored and the next one starts a fresh stream.
    ended: bool,
    /// Compressed bytes arrived for the current message.
    fed: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").field("no_context", &self.no_context).finish()
    }
}

/// Output is produced in steps of at most this many bytes, so the limit is checked often.
const STEP: usize = 64 * 1024;

impl Inflater {
    pub fn new(p: &Params) -> Inflater {
        Inflater {
            d: Decompress::new_with_window_bits(false, p.server_max_window_bits.max(9)),
            no_context: p.server_no_context_takeover,
            ended: false,
            fed: false,
        }
    }

    /// Inflates the next piece of a compressed message, appending to `out` at most
    /// `allowance` bytes; `TooBig` as soon as the output would exceed it (checked while
    /// inflating, so a small message cannot expand into gigabytes first), even when corrupt
    /// data follows. On any error `out` keeps what was inflated before it (one byte over
    /// the allowance at most), so the caller can report the first problem in the stream,
    /// whatever the cutting of the input.
    pub fn inflate(&mut self, mut input: &[u8], out: &mut Vec<u8>, allowance: u64) -> Result<(), InflateError> {
        self.fed |= !input.is_empty();
        let mut produced = 0u64;
        loop {
            if self.ended {
                // Bytes after a BFINAL block are ignored, as zlib's inflate does (the
                // RFC 7692 7.2.3.4 sample has one); the next message starts a new stream.
                return Ok(());
            }
            // Room for this step: capped one byte past the allowance to detect overflow.
            let room = (allowance - produced).saturating_add(1).min(STEP as u64) as usize;
            out.reserve(room);
            let before_in = self.d.total_in();
            let before_out = self.d.total_out();
            let spare: &mut [MaybeUninit<u8>] = &mut out.spare_capacity_mut()[..room];
            let result = self.d.decompress_uninit(input, spare, FlushDecompress::Sync);
            // The counters move on an error too: what was inflated before it is kept.
            let used = (self.d.total_in() - before_in) as usize;
            let written = (self.d.total_out() - before_out) as usize;
            // SAFETY: the decompressor initialised exactly `written` bytes of the spare
            // capacity, starting at the current length.
            unsafe { out.set_len(out.len() + written) };
            input = &input[used..];
            produced += written as u64;
            if produced > allowance {
                return Err(InflateError::TooBig);
            }
            // The backend's own message is not passed on: zlib-rs reports an error found on
            // its fast path (taken when enough input and output room are at hand) as
            // "repeated call with bad state", the same error found byte by byte with its
            // real name, so the message would depend on how the socket reads were cut.
            let status = result.map_err(|_| corrupt())?;
            if status == Status::StreamEnd {
                self.ended = true;
                continue;
            }
            if input.is_empty() && written < room {
                return Ok(());
            }
            if used == 0 && written == 0 {
                // No progress with input left: a BufError the backend reports as Ok.
                return Err(corrupt());
            }
        }
    }

    /// Ends the message: inflates the removed `00 00 ff ff` tail and resets the context
    /// when the server does not take it over.
    pub fn finish(&mut self, out: &mut Vec<u8>, allowance: u64) -> Result<(), InflateError> {
        // A message with no compressed bytes at all is empty. The tail is not inflated
        // then: after an earlier flush it would not parse (see `Deflater::compress`), and
        // would leave the stream broken for the next message.
        let r = if self.ended || !self.fed { Ok(()) } else { self.inflate(&TAIL, out, allowance) };
        self.fed = false;
        if self.no_context || self.ended {
            self.d.reset(false);
            self.ended = false;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    fn inflate_all(inf: &mut Inflater, parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            inf.inflate(p, &mut out, u64::MAX).unwrap();
        }
        inf.finish(&mut out, u64::MAX).unwrap();
        out
    }

    #[test]
    fn offer_strings() {
        assert_eq!(Offer::default().header_value(), "permessage-deflate; client_max_window_bits");
        let o = Offer {
            client_max_window_bits: Some(Some(10)),
            server_max_window_bits: Some(12),
            client_no_context_takeover: true,
            server_no_context_takeover: true,
        };
        assert_eq!(
            o.header_value(),
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=10"
        );
        let none = Offer { client_max_window_bits: None, ..Offer::default() };
        assert_eq!(none.header_value(), "permessage-deflate");
        assert!(Offer { server_max_window_bits: Some(7), ..Offer::default() }.validate().is_err());
        assert!(Offer { client_max_window_bits: Some(Some(16)), ..Offer::default() }.validate().is_err());
    }

    #[test]
    fn rfc7692_hello_inflates() {
        // RFC 7692 7.2.3.1: "Hello" as one compressed frame.
        let mut inf = Inflater::new(&Params::default());
        assert_eq!(inflate_all(&mut inf, &[&HELLO]), b"Hello");
        // 7.2.3.1 again, split over two fragments.
        assert_eq!(inflate_all(&mut inf, &[&HELLO[..3], &HELLO[3..]]), b"Hello");
    }

    #[test]
    fn rfc7692_context_takeover_sample() {
        // RFC 7692 7.2.3.2: the second "Hello" refers back into the first message.
        let mut inf = Inflater::new(&Params::default());
        assert_eq!(inflate_all(&mut inf, &[&HELLO]), b"Hello");
        assert_eq!(inflate_all(&mut inf, &[&[0xf2, 0x00, 0x11, 0x00, 0x00]]), b"Hello");
    }

    #[test]
    fn rfc7692_stored_and_bfinal_samples() {
        // 7.2.3.3: an uncompressed (stored) DEFLATE block.
        let mut inf = Inflater::new(&Params::default());
        let stored = [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00];
        assert_eq!(inflate_all(&mut inf, &[&stored]), b"Hello");
        // 7.2.3.4: a BFINAL block, then a new message on a fresh stream.
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(inflate_all(&mut inf, &[&bfinal]), b"Hello");
        assert_eq!(inflate_all(&mut inf, &[&HELLO]), b"Hello");
    }

    #[test]
    fn hello_compresses_to_the_rfc_bytes() {
        let mut d = Deflater::new(&Params::default()).unwrap();
        let mut out = Vec::new();
        d.compress(b"Hello", true, &mut out);
        assert_eq!(out, HELLO);
        // With context takeover the second "Hello" is a back-reference (7.2.3.2 shows one
        // encoding; level 1 finds a shorter one).
        let mut out2 = Vec::new();
        d.compress(b"Hello", true, &mut out2);
        assert!(out2.len() < HELLO.len(), "{out2:x?}");
        let mut inf = Inflater::new(&Params::default());
        assert_eq!(inflate_all(&mut inf, &[&out]), b"Hello");
        assert_eq!(inflate_all(&mut inf, &[&out2]), b"Hello");
    }

    #[test]
    fn no_context_takeover_resets_between_messages() {
        let p = Params { client_no_context_takeover: true, ..Params::default() };
        let mut d = Deflater::new(&p).unwrap();
        for _ in 0..3 {
            let mut out = Vec::new();
            d.compress(b"Hello", true, &mut out);
            assert_eq!(out, HELLO);
        }
        let p = Params { server_no_context_takeover: true, ..Params::default() };
        let mut inf = Inflater::new(&p);
        assert_eq!(inflate_all(&mut inf, &[&HELLO]), b"Hello");
        // A back-reference into the previous message is invalid after a reset.
        let mut out = Vec::new();
        let r = inf.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, u64::MAX).and_then(|_| inf.finish(&mut out, u64::MAX));
        assert!(matches!(r, Err(InflateError::Corrupt(_))), "{r:?} {out:?}");
    }

    #[test]
    fn round_trip_fragmented_and_windowed() {
        let text: Vec<u8> = (0..200_000u32).map(|i| b"abcdefghij klmnop"[(i * 7 % 17) as usize]).collect();
        for bits in [9u8, 12, 15] {
            let p = Params { client_max_window_bits: bits, server_max_window_bits: bits, ..Params::default() };
            let mut d = Deflater::new(&p).unwrap();
            let mut inf = Inflater::new(&p);
            for _ in 0..2 {
                let mut parts = Vec::new();
                for (i, chunk) in text.chunks(70_000).enumerate() {
                    let mut c = Vec::new();
                    d.compress(chunk, i == 2, &mut c);
                    parts.push(c);
                }
                let refs: Vec<&[u8]> = parts.iter().map(|v| &v[..]).collect();
                assert_eq!(inflate_all(&mut inf, &refs), text, "bits {bits}");
            }
        }
    }

    #[test]
    fn empty_message_and_empty_final_fragment() {
        let mut d = Deflater::new(&Params::default()).unwrap();
        let mut out = Vec::new();
        d.compress(b"", true, &mut out);
        let mut inf = Inflater::new(&Params::default());
        assert_eq!(inflate_all(&mut inf, &[&out]), b"");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        d.compress(b"abc", false, &mut a);
        d.compress(b"", true, &mut b);
        assert_eq!(inflate_all(&mut inf, &[&a, &b]), b"abc");
    }

    /// What a standard receiver does (RFC 7692 7.2.2): one raw DEFLATE stream, each
    /// message's payload followed by `00 00 ff ff`; every byte must be consumed.
    fn standard_inflate(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut d = Decompress::new(false);
        messages
            .iter()
            .map(|m| {
                let mut input = m.clone();
                input.extend_from_slice(&TAIL);
                let mut out = Vec::with_capacity(1 << 20);
                let before = d.total_in();
                d.decompress_vec(&input, &mut out, FlushDecompress::Sync).unwrap();
                assert_eq!((d.total_in() - before) as usize, input.len(), "message not fully consumed");
                out
            })
            .collect()
    }

    #[test]
    fn empty_messages_keep_the_stream_valid_for_a_standard_receiver() {
        let mut d = Deflater::new(&Params::default()).unwrap();
        let plain: [&[u8]; 6] = [b"abc", b"", b"", "\u{e9}\u{e9}".as_bytes(), b"", b"abc"];
        let wire: Vec<Vec<u8>> = plain
            .iter()
            .map(|m| {
                let mut out = Vec::new();
                d.compress(m, true, &mut out);
                assert!(!out.is_empty(), "a compressed message is never empty on the wire");
                out
            })
            .collect();
        let got = standard_inflate(&wire);
        assert_eq!(got, plain.iter().map(|m| m.to_vec()).collect::<Vec<_>>());
        // Ours too, message by message, with the context kept.
        let mut inf = Inflater::new(&Params::default());
        for (w, m) in wire.iter().zip(plain) {
            assert_eq!(inflate_all(&mut inf, &[w]), m);
        }
        // A fragmented message whose last fragment is empty.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        d.compress(b"xyz", false, &mut a);
        d.compress(b"", true, &mut b);
        let mut joined = a.clone();
        joined.extend_from_slice(&b);
        assert_eq!(standard_inflate(&[joined]), vec![b"xyz".to_vec()]);
    }

    #[test]
    fn a_peer_sending_no_bytes_for_an_empty_message_does_not_break_the_stream() {
        // Some peers send an empty payload (RSV1 set) for an empty message.
        let mut d = Deflater::new(&Params::default()).unwrap();
        let mut inf = Inflater::new(&Params::default());
        let mut first = Vec::new();
        d.compress(b"hello", true, &mut first);
        assert_eq!(inflate_all(&mut inf, &[&first]), b"hello");
        assert_eq!(inflate_all(&mut inf, &[]), b"");
        assert_eq!(inflate_all(&mut inf, &[&[]]), b"");
        let mut next = Vec::new();
        d.compress(b"hello again", true, &mut next);
        assert_eq!(inflate_all(&mut inf, &[&next]), b"hello again");
    }

    #[test]
    fn window_of_8_bits_sends_uncompressed() {
        let p = Params { client_max_window_bits: 8, ..Params::default() };
        assert!(Deflater::new(&p).is_none());
        // Inflating an 8-bit server window works (with a 9-bit inflate window).
        let p = Params { server_max_window_bits: 8, ..Params::default() };
        let mut inf = Inflater::new(&p);
        assert_eq!(inflate_all(&mut inf, &[&HELLO]), b"Hello");
    }

    #[test]
    fn bomb_stops_at_the_limit() {
        // 10 MB of zeros compress to about 100 kB (level 1).
        let zeros = vec![0u8; 10 << 20];
        let mut d = Deflater::new(&Params::default()).unwrap();
        let mut z = Vec::new();
        d.compress(&zeros, true, &mut z);
        assert!(z.len() < 128 * 1024, "{}", z.len());
        let mut inf = Inflater::new(&Params::default());
        let mut out = Vec::new();
        assert_eq!(inf.inflate(&z, &mut out, 1 << 20), Err(InflateError::TooBig));
        assert!(out.len() <= (1 << 20) + 1 && out.capacity() <= 2 << 20, "{} {}", out.len(), out.capacity());
        // Exactly at the limit is fine.
        let mut inf = Inflater::new(&Params::default());
        let mut out = Vec::new();
        inf.inflate(&z, &mut out, 10 << 20).unwrap();
        let left = (10 << 20) - out.len() as u64;
        inf.finish(&mut out, left).unwrap();
        assert_eq!(out.len(), 10 << 20);
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let mut inf = Inflater::new(&Params::default());
        let mut out = Vec::new();
        // BTYPE=11 is reserved.
        assert!(matches!(inf.inflate(&[0xff, 0xff, 0xff], &mut out, u64::MAX), Err(InflateError::Corrupt(_))));
    }

    #[test]
    fn corrupt_data_fails_the_same_however_it_is_cut() {
        // Found by fuzz/codec: a distance too far back, in one read, was reported by
        // zlib-rs as "repeated call with bad state" (its fast path), and byte by byte as
        // "invalid distance too far back": the error must not depend on the reads.
        let data: Vec<u8> = [0x42u8; 22].iter().copied().chain(*b"Zgo \n").collect();
        let mut whole = Inflater::new(&Params::default());
        let expected = whole.inflate(&data, &mut Vec::new(), u64::MAX);
        assert_eq!(expected, Err(InflateError::Corrupt("invalid compressed data".into())));
        for step in [1, 2, 5, 13] {
            let mut inf = Inflater::new(&Params::default());
            let mut out = Vec::new();
            let r = data.chunks(step).map(|c| inf.inflate(c, &mut out, u64::MAX)).find(Result::is_err);
            assert_eq!(r, Some(expected.clone()), "step {step}");
        }
    }

    #[test]
    fn output_before_an_error_is_kept() {
        // A stored block "abc", then a block of the reserved type 11; then the same with
        // an allowance of 2, where the limit comes first.
        let data = [0x00, 0x03, 0x00, 0xfc, 0xff, b'a', b'b', b'c', 0x07];
        let mut out = Vec::new();
        assert!(matches!(Inflater::new(&Params::default()).inflate(&data, &mut out, u64::MAX), Err(InflateError::Corrupt(_))));
        assert_eq!(out, b"abc");
        let mut out = Vec::new();
        assert_eq!(Inflater::new(&Params::default()).inflate(&data, &mut out, 2), Err(InflateError::TooBig));
        assert_eq!(out, b"abc");
    }

    fn neg(offer: &Offer, resp: &str) -> Result<Option<Params>, String> {
        negotiate(Some(offer), Some(resp))
    }

    #[test]
    fn negotiation_accepts_valid_answers() {
        let o = Offer::default();
        assert_eq!(negotiate(Some(&o), None), Ok(None));
        assert_eq!(neg(&o, "permessage-deflate"), Ok(Some(Params::default())));
        let p = neg(&o, "permessage-deflate; client_max_window_bits=9; server_max_window_bits=\"10\"; server_no_context_takeover; client_no_context_takeover").unwrap().unwrap();
        assert_eq!(
            p,
            Params {
                client_max_window_bits: 9,
                server_max_window_bits: 10,
                client_no_context_takeover: true,
                server_no_context_takeover: true
            }
        );
        assert_eq!(neg(&o, "Permessage-Deflate ;Client_Max_Window_Bits = 12").unwrap().unwrap().client_max_window_bits, 12);
        // Our own hints bind us.
        let o2 = Offer { client_max_window_bits: Some(Some(11)), client_no_context_takeover: true, ..Offer::default() };
        let p = neg(&o2, "permessage-deflate").unwrap().unwrap();
        assert_eq!((p.client_max_window_bits, p.client_no_context_takeover), (11, true));
        // What we asked of the server, accepted.
        let o3 = Offer { server_max_window_bits: Some(10), server_no_context_takeover: true, ..Offer::default() };
        let p = neg(&o3, "permessage-deflate; server_max_window_bits=9; server_no_context_takeover").unwrap().unwrap();
        assert_eq!((p.server_max_window_bits, p.server_no_context_takeover), (9, true));
    }

    #[test]
    fn negotiation_rejects_bad_answers() {
        let o = Offer::default();
        let bad = [
            "x-webkit-deflate-frame",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=\"1 0\"",
        ];
        for b in bad {
            assert!(neg(&o, b).is_err(), "{b}");
        }
        // Not offered at all.
        assert!(negotiate(None, Some("permessage-deflate")).is_err());
        assert_eq!(negotiate(None, Some("")), Ok(None));
        // client_max_window_bits not offered.
        let no_cmwb = Offer { client_max_window_bits: None, ..Offer::default() };
        assert!(neg(&no_cmwb, "permessage-deflate; client_max_window_bits=10").is_err());
        // Over what we offered.
        let o2 = Offer { client_max_window_bits: Some(Some(10)), ..Offer::default() };
        assert!(neg(&o2, "permessage-deflate; client_max_window_bits=11").is_err());
        let o3 = Offer { server_max_window_bits: Some(10), ..Offer::default() };
        assert!(neg(&o3, "permessage-deflate; server_max_window_bits=11").is_err());
        assert!(neg(&o3, "permessage-deflate").is_err());
        let o4 = Offer { server_no_context_takeover: true, ..Offer::default() };
        assert!(neg(&o4, "permessage-deflate").is_err());
    }
}
