//! Frame encoding and masking.
//!
//! Headers are formatted by tungstenite's `FrameHeader` and parsed here; this module adds what the
//! client needs around it: a masking routine the compiler vectorises, and a one-pass encoder
//! that writes header and masked payload into a reusable buffer.

use tungstenite::protocol::frame::{coding::OpCode, FrameHeader};

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Largest frame header: 2 bytes, 8 bytes of extended length, 4 bytes of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// True for the opcodes RFC 6455 defines.
pub fn is_known_opcode(op: u8) -> bool {
    matches!(op, OP_CONT | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG)
}

pub fn is_control(op: u8) -> bool {
    op & 0x8 != 0
}

/// A parsed frame header, in the plain form the rest of the crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    /// RSV1..RSV3 as bits 0b100, 0b010, 0b001.
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
    /// Bytes the header took on the wire.
    pub header_len: usize,
}

/// Parses one header from the start of `buf`; `Ok(None)` when more bytes are needed.
///
/// Every opcode is returned as is: the codec rejects reserved ones itself (with its own
/// message), and raw mode passes them to Python as the reference does. Never fails today;
/// the `Result` is kept for callers.
pub fn parse_header(buf: &[u8]) -> Result<Option<Header>, String> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else { return Ok(None) };
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u16::from_be_bytes([b[0], b[1]]) as u64, 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        n => (n as u64, 2),
    };
    let mask = if b1 & 0x80 != 0 {
        let Some(m) = buf.get(at..at + 4) else { return Ok(None) };
        at += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    Ok(Some(Header { fin: b0 & 0x80 != 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0xF, mask, len, header_len: at }))
}

/// Follows a stream of frames written by someone else (bytes a caller formatted itself) to
/// know whether it stands between two frames, where a frame of ours may be inserted.
#[derive(Debug, Default, Clone)]
pub struct Boundary {
    hdr: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
}

impl Boundary {
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len() as u64);
                self.remaining -= n;
                data = &data[n as usize..];
                continue;
            }
            let take = (MAX_HEADER_LEN - self.hdr.len()).min(data.len());
            let before = self.hdr.len();
            self.hdr.extend_from_slice(&data[..take]);
            match parse_header(&self.hdr) {
                Ok(Some(h)) => {
                    data = &data[h.header_len - before..];
                    self.hdr.clear();
                    self.remaining = h.len;
                }
                _ => data = &data[take..],
            }
        }
    }

    /// True between frames.
    pub fn at_boundary(&self) -> bool {
        self.remaining == 0 && self.hdr.is_empty()
    }
}

/// Appends a complete frame (header, then the payload masked with `mask` if given) to `out`.
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    out.reserve(MAX_HEADER_LEN + payload.len());
    encode_header(out, fin, rsv, opcode, payload.len(), mask);
    match mask {
        Some(key) => mask_into(out, payload, key),
        None => out.extend_from_slice(payload),
    }
}

/// Length on the wire of a frame with this payload length.
pub fn frame_len(payload_len: usize, masked: bool) -> usize {
    let ext = if payload_len < 126 {
        0
    } else if payload_len <= 0xFFFF {
        2
    } else {
        8
    };
    2 + ext + if masked { 4 } else { 0 } + payload_len
}

/// XORs `buf` in place with the 4-byte key, starting at key offset 0.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes(chunk.try_into().unwrap()) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// Appends `src` masked with `key` to `out` in a single pass (copy and XOR together).
fn mask_into(out: &mut Vec<u8>, src: &[u8], key: [u8; 4]) {
    let start = out.len();
    out.reserve(src.len());
    // SAFETY: `reserve` made room for `src.len()` bytes after `start`; mask_raw writes each
    // of them before the length is set.
    unsafe {
        mask_raw(out.as_mut_ptr().add(start), src, key);
        out.set_len(start + src.len());
    }
}

/// Writes `src` masked with `key` to `dst` (of the same length) in a single pass.
pub fn mask_to(dst: &mut [u8], src: &[u8], key: [u8; 4]) {
    assert_eq!(dst.len(), src.len());
    // SAFETY: `dst` has room for `src.len()` bytes.
    unsafe { mask_raw(dst.as_mut_ptr(), src, key) }
}

/// Copies `src` XOR-ed with the repeated key to `dst`, 8 bytes at a time.
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes and not overlap `src`.
unsafe fn mask_raw(dst: *mut u8, src: &[u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let n8 = src.len() / 8 * 8;
    let mut i = 0;
    while i < n8 {
        let v = std::ptr::read_unaligned(src.as_ptr().add(i) as *const u64) ^ word;
        std::ptr::write_unaligned(dst.add(i) as *mut u64, v);
        i += 8;
    }
    // The remainder starts at a multiple of 8, so its key offset is 0.
    for (j, b) in src[n8..].iter().enumerate() {
        *dst.add(n8 + j) = b ^ key[j & 3];
    }
}

/// The header of a frame with a `len`-byte payload (and the mask key when masked).
pub fn encode_header(out: &mut Vec<u8>, fin: bool, rsv: u8, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    let header = FrameHeader {
        is_final: fin,
        rsv1: rsv & 4 != 0,
        rsv2: rsv & 2 != 0,
        rsv3: rsv & 1 != 0,
        opcode: OpCode::from(opcode & 0xF),
        mask,
    };
    header.format(len as u64, out).expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_matches_bytewise_xor_at_every_length() {
        let key = [0x6d, 0xb6, 0xb2, 0x80];
        for len in 0..70 {
            let data: Vec<u8> = (0..len as u8).map(|x| x.wrapping_mul(37)).collect();
            let mut fast = data.clone();
            apply_mask(&mut fast, key);
            let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
            assert_eq!(fast, slow, "len {len}");
        }
    }

    #[test]
    fn mask_to_matches_bytewise_xor() {
        let key = [0x6d, 0xb6, 0xb2, 0x80];
        for len in 0..70 {
            let data: Vec<u8> = (0..len as u8).map(|x| x.wrapping_mul(37)).collect();
            let mut dst = vec![0u8; len];
            mask_to(&mut dst, &data, key);
            let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
            assert_eq!(dst, slow, "len {len}");
        }
    }

    #[test]
    fn mask_into_matches_bytewise_xor_after_any_prefix() {
        let key = [0x6d, 0xb6, 0xb2, 0x80];
        for prefix in 0..9 {
            for len in 0..70 {
                let data: Vec<u8> = (0..len as u8).map(|x| x.wrapping_mul(37)).collect();
                let mut out = vec![0xEEu8; prefix];
                mask_into(&mut out, &data, key);
                let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
                assert_eq!(&out[..prefix], &vec![0xEEu8; prefix][..]);
                assert_eq!(&out[prefix..], &slow[..], "prefix {prefix} len {len}");
            }
        }
    }

    #[test]
    fn encode_then_parse_round_trips_every_length_format() {
        for len in [0usize, 5, 125, 126, 65535, 65536, 70000] {
            let payload = vec![0x41u8; len];
            let mut out = Vec::new();
            encode_frame(&mut out, true, 0, OP_BINARY, &payload, Some([1, 2, 3, 4]));
            assert_eq!(out.len(), frame_len(len, true));
            let h = parse_header(&out).unwrap().unwrap();
            assert_eq!((h.fin, h.opcode, h.len, h.mask), (true, OP_BINARY, len as u64, Some([1, 2, 3, 4])));
            let mut body = out[h.header_len..].to_vec();
            apply_mask(&mut body, [1, 2, 3, 4]);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn hello_text_frame_is_eleven_bytes_like_the_reference() {
        let mut out = Vec::new();
        encode_frame(&mut out, true, 0, OP_TEXT, b"hello", Some([0, 0, 0, 0]));
        assert_eq!(out.len(), 11);
        assert_eq!(&out[..2], &[0x81, 0x85]);
    }

    #[test]
    fn reserved_opcodes_are_parsed_not_refused() {
        // Found by fuzz/frame_header: tungstenite's parser refused opcode 3, so the codec's
        // own check ("Invalid opcode 3") never ran and raw mode could not pass the frame on.
        let h = parse_header(&[0x83, 0x00]).unwrap().unwrap();
        assert_eq!((h.opcode, h.len, h.header_len), (3, 0, 2));
        let h = parse_header(&[0x0B, 0x80, 1, 2, 3, 4]).unwrap().unwrap();
        assert_eq!((h.opcode, h.mask, h.header_len), (0xB, Some([1, 2, 3, 4]), 6));
    }

    #[test]
    fn partial_header_needs_more_bytes() {
        assert_eq!(parse_header(&[0x81]).unwrap(), None);
        assert_eq!(parse_header(&[0x82, 126, 0]).unwrap(), None);
    }

    #[test]
    fn boundary_follows_frames_cut_anywhere() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, true, 0, OP_BINARY, &[7u8; 300], Some([1, 2, 3, 4]));
        encode_frame(&mut wire, true, 0, OP_TEXT, b"", None);
        encode_frame(&mut wire, false, 0, OP_TEXT, &[1u8; 70000], None);
        let ends = [0, 308, 310, wire.len()];
        for cut in 0..wire.len().min(400) {
            let mut b = Boundary::default();
            b.feed(&wire[..cut]);
            assert_eq!(b.at_boundary(), ends.contains(&cut), "cut at {cut}");
            b.feed(&wire[cut..]);
            assert!(b.at_boundary());
        }
    }
}
