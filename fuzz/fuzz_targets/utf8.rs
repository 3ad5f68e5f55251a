//! The incremental UTF-8 validator (src/protocol/utf8.rs) against the standard library.
//!
//! Input: byte 0 seeds where the text is cut, the rest is the text.
//!
//! Checked, for every way of cutting the text into pieces:
//! - the verdict at the end equals `std::str::from_utf8` on the whole text;
//! - it fails fast: `feed` fails on exactly the piece where the text so far stops being a
//!   prefix of some valid UTF-8 (std reports an error with a length), never earlier, never
//!   later;
//! - `is_valid` (whole buffer, SIMD) equals std.
#![no_main]

use _native::protocol::utf8::{is_valid, Utf8Validator};
use libfuzzer_sys::fuzz_target;

fn definite_error(b: &[u8]) -> bool {
    matches!(std::str::from_utf8(b), Err(e) if e.error_len().is_some())
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, text)) = data.split_first() else { return };
    assert_eq!(is_valid(text), std::str::from_utf8(text).is_ok());

    let mut state = seed as u32 * 2654435761 | 1;
    let mut v = Utf8Validator::new();
    let mut pos = 0;
    let mut failed = false;
    while pos < text.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = match state % 4 {
            0 => 1,
            1 => 2 + (state >> 4) as usize % 4,
            2 => 1 + (state >> 4) as usize % 64,
            _ => text.len() - pos,
        }
        .min(text.len() - pos);
        let end = pos + n;
        let res = v.feed(&text[pos..end]);
        assert_eq!(res.is_err(), definite_error(&text[..end]), "verdict after {end} bytes");
        pos = end;
        if res.is_err() {
            failed = true;
            break;
        }
    }
    if !failed {
        assert_eq!(v.finish().is_ok(), std::str::from_utf8(text).is_ok());
    }
    // Reusable after reset.
    v.reset();
    assert_eq!(v.feed(text).is_ok() && v.finish().is_ok(), std::str::from_utf8(text).is_ok());
});
