//! Frame headers and masking (src/protocol/frame.rs).
//!
//! Checked: `parse_header` agrees field by field with a plain reading of RFC 6455 section 5.2
//! on arbitrary bytes (lengths up to 2^64 - 1 included), asks for more bytes exactly when the
//! header is incomplete, and never reads past its end; `encode_frame` then `parse_header`
//! round-trips; the vectorised mask equals a byte-by-byte XOR.
#![no_main]

use _native::protocol::frame::{apply_mask, encode_frame, frame_len, parse_header, MAX_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

/// (fin, rsv, opcode, mask, len, header_len), or None when more bytes are needed.
fn reference(b: &[u8]) -> Option<(bool, u8, u8, Option<[u8; 4]>, u64, usize)> {
    if b.len() < 2 {
        return None;
    }
    let (fin, rsv, op) = (b[0] & 0x80 != 0, (b[0] >> 4) & 7, b[0] & 0xF);
    let masked = b[1] & 0x80 != 0;
    let (len, mut at) = match b[1] & 0x7F {
        126 => (u16::from_be_bytes(b.get(2..4)?.try_into().ok()?) as u64, 4),
        127 => (u64::from_be_bytes(b.get(2..10)?.try_into().ok()?), 10),
        n => (n as u64, 2),
    };
    let mask = if masked {
        let m: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    Some((fin, rsv, op, mask, len, at))
}

fuzz_target!(|data: &[u8]| {
    // 1. Parsing arbitrary bytes.
    match parse_header(data) {
        Ok(Some(h)) => {
            assert!(h.header_len <= data.len() && h.header_len <= MAX_HEADER_LEN);
            let r = reference(data).expect("parsed a header the reference finds incomplete");
            assert_eq!((h.fin, h.rsv, h.opcode, h.mask, h.len, h.header_len), r);
        }
        Ok(None) => assert!(reference(data).is_none(), "asked for more bytes after a complete header"),
        // Tungstenite refuses some headers outright; the codec turns that into a 1002.
        Err(_) => {}
    }

    // 2. Encoding then parsing.
    if data.len() >= 8 {
        let fin = data[0] & 1 != 0;
        let rsv = (data[0] >> 1) & 7;
        let opcode = data[0] >> 4;
        let masked = data[1] & 1 != 0;
        let key = [data[2], data[3], data[4], data[5]];
        // Lengths around the 125/126 and 65535/65536 encoding boundaries.
        let len = match data[1] >> 6 {
            0 => (data[6] & 0x7F) as usize,
            1 => 120 + (data[6] % 16) as usize,
            2 => 65530 + (data[6] % 12) as usize,
            _ => u16::from_be_bytes([data[6], data[7]]) as usize,
        };
        let src = &data[8..];
        let payload: Vec<u8> = (0..len).map(|i| if src.is_empty() { i as u8 } else { src[i % src.len()] }).collect();
        let mask = masked.then_some(key);
        let mut out = vec![0xAAu8; data[7] as usize % 5]; // encode appends: start mid-buffer
        let start = out.len();
        encode_frame(&mut out, fin, rsv, opcode, &payload, mask);
        assert_eq!(out.len() - start, frame_len(len, masked));
        let h = parse_header(&out[start..]).unwrap().unwrap();
        assert_eq!((h.fin, h.rsv, h.opcode, h.mask, h.len), (fin, rsv, opcode, mask, len as u64));
        let mut body = out[start + h.header_len..].to_vec();
        assert_eq!(body.len(), len);
        if let Some(k) = mask {
            apply_mask(&mut body, k);
        }
        assert_eq!(body, payload);
    }

    // 3. The vectorised mask against a byte-by-byte XOR, at every alignment.
    if data.len() >= 5 {
        let key = [data[0], data[1], data[2], data[3]];
        let off = data[4] as usize % 8;
        let mut buf = data[5..].to_vec();
        let slow: Vec<u8> = buf.iter().skip(off).enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
        if off <= buf.len() {
            apply_mask(&mut buf[off..], key);
            assert_eq!(&buf[off..], &slow[..]);
        }
    }
});
