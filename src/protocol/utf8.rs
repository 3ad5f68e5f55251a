//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! Pieces are checked as they arrive (vectorised by `simdutf8`), so an invalid sequence fails
//! the message on the fragment, or even the read, that carries it, not when the message ends.
//! A code point split across pieces is carried over (at most 3 bytes).

#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    carry: [u8; 4],
    carry_len: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

fn seq_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

/// Up to this length a piece is first scanned for ASCII only.
const SHORT: usize = 256;

/// Whether every byte of a short piece is ASCII: the bytes OR-ed together 8 at a time,
/// without an early exit (the compiler vectorises it; `<[u8]>::is_ascii` cost 16 ns on 100
/// bytes here, its alignment handling included).
fn all_ascii(buf: &[u8]) -> bool {
    let mut words = buf.chunks_exact(8);
    let mut acc = 0u64;
    for w in &mut words {
        acc |= u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
    }
    let tail = words.remainder().iter().fold(0u8, |a, &b| a | b);
    (acc & 0x8080_8080_8080_8080) == 0 && tail < 0x80
}

/// Checks `buf` as a prefix of a valid UTF-8 string: Ok(n) where `buf[n..]` is an incomplete
/// but so far valid sequence.
fn check_prefix(buf: &[u8]) -> Result<usize, InvalidUtf8> {
    // The common cases first: a short ASCII piece (a word-at-a-time scan; simdutf8's set-up
    // cost 20 ns of a queued 100-byte message's 230, bench/RESULTS.md push100), then any
    // valid piece with simdutf8's fast check, which does not track where an error is.
    if (buf.len() <= SHORT && all_ascii(buf)) || simdutf8::basic::from_utf8(buf).is_ok() {
        return Ok(buf.len());
    }
    match simdutf8::compat::from_utf8(buf) {
        Ok(_) => Ok(buf.len()),
        Err(e) if e.error_len().is_none() => Ok(e.valid_up_to()),
        Err(_) => Err(InvalidUtf8),
    }
}

impl Utf8Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reset(&mut self) {
        self.carry_len = 0;
    }

    /// Validates the next piece of the message.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.carry_len > 0 {
            let need = seq_len(self.carry[0]);
            let take = (need - self.carry_len).min(data.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&data[..take]);
            self.carry_len += take;
            data = &data[take..];
            let done = check_prefix(&self.carry[..self.carry_len])?;
            if done < self.carry_len {
                // Still incomplete: only possible when `data` ran out.
                return Ok(());
            }
            self.carry_len = 0;
        }
        let done = check_prefix(data)?;
        let rest = &data[done..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
        Ok(())
    }

    /// Called at the end of the message: a dangling partial sequence is an error.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let ok = self.carry_len == 0;
        self.carry_len = 0;
        if ok {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

/// Whole-buffer validation.
pub fn is_valid(data: &[u8]) -> bool {
    (data.len() <= SHORT && all_ascii(data)) || simdutf8::basic::from_utf8(data).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_everywhere(s: &[u8]) -> Vec<Result<(), InvalidUtf8>> {
        (0..=s.len())
            .map(|i| {
                let mut v = Utf8Validator::new();
                v.feed(&s[..i])?;
                v.feed(&s[i..])?;
                v.finish()
            })
            .collect()
    }

    #[test]
    fn the_ascii_scan_sees_a_high_bit_anywhere() {
        for len in 0..40 {
            assert!(all_ascii(&vec![b'a'; len]));
            for at in 0..len {
                let mut v = vec![b'a'; len];
                v[at] = 0x80;
                assert!(!all_ascii(&v), "len {len} at {at}");
            }
        }
    }

    #[test]
    fn valid_text_split_at_every_byte() {
        let s = "κόσμε héllo 𝄞 ok".as_bytes();
        assert!(split_everywhere(s).iter().all(|r| r.is_ok()));
    }

    #[test]
    fn invalid_bytes_fail_wherever_split() {
        let s = b"abc\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited";
        assert!(split_everywhere(s).iter().all(|r| r.is_err()));
    }

    #[test]
    fn fails_fast_on_the_first_bad_piece() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5").is_ok());
        assert_eq!(v.feed(b"\xf4\x90\x80\x80"), Err(InvalidUtf8));
    }

    #[test]
    fn truncated_sequence_at_end_is_an_error() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"ab\xe2\x82").is_ok());
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }

    #[test]
    fn byte_by_byte_four_byte_sequence() {
        let mut v = Utf8Validator::new();
        for b in "𝄞".as_bytes() {
            v.feed(std::slice::from_ref(b)).unwrap();
        }
        v.finish().unwrap();
    }
}
