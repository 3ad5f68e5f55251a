//! The handshake response parser, as the engine drives it (src/engine/connect.rs `read_head`):
//! the head is re-parsed on a buffer that grows by socket reads of arbitrary size.
//!
//! Input: byte 0 chooses the read size (1..=256), byte 1 which subprotocols were asked for,
//! the rest is what the server sends.
//!
//! Checked: no panic; the head length stays inside the buffer; a head that parses on a
//! prefix parses the same on the whole input (so the chunking never changes the outcome);
//! the size limit holds (nothing past MAX_HEAD_BYTES is ever waited for); `verify_upgrade`
//! only accepts a response carrying the right accept key and a requested subprotocol, and
//! refuses a choice the client did not offer (RFC 6455 4.1), also when it offered none.
#![no_main]

use _native::protocol::handshake::{parse_response, verify_upgrade, ParseError, MAX_HEADERS, MAX_HEAD_BYTES};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let step = data[0] as usize + 1;
    let protos: Vec<String> = match data[1] & 3 {
        0 => vec![],
        1 => vec!["chat".into()],
        2 => vec!["chat".into(), "superchat".into()],
        _ => vec!["Chat".into()],
    };
    let wire = &data[2..];

    let whole = parse_response(wire);

    // The engine's loop: read `step` bytes at a time, parse after each read.
    let mut end = 0;
    let outcome = loop {
        if end >= wire.len() {
            break None; // EOF before a decision: "Connection to remote host was lost."
        }
        end = (end + step).min(wire.len());
        match parse_response(&wire[..end]) {
            Err(ParseError::Partial) => {
                assert!(end < MAX_HEAD_BYTES, "waited for more than MAX_HEAD_BYTES");
                continue;
            }
            other => break Some((end, other)),
        }
    };

    if let Some((end, res)) = outcome {
        match res {
            Ok(r) => {
                assert!(r.head_len <= end && r.head_len >= 2);
                assert!(r.headers.len() <= MAX_HEADERS);
                assert_eq!(wire[r.head_len - 1], b'\n', "the head ends at a blank line");
                // Deciding on a prefix must agree with deciding on everything.
                assert_eq!(whole.as_ref().ok(), Some(&r));
                check_verify(&r, &protos);
            }
            Err(ParseError::TooLarge) => {}
            Err(ParseError::Invalid(_)) => {
                assert!(matches!(whole, Err(ParseError::Invalid(_)) | Err(ParseError::TooLarge)));
            }
            Err(ParseError::Partial) => unreachable!(),
        }
    }
});

fn check_verify(r: &_native::protocol::handshake::Response, protos: &[String]) {
    match verify_upgrade(r, KEY, protos) {
        Ok(chosen) => {
            assert_eq!(r.header("sec-websocket-accept").map(str::trim), Some(ACCEPT));
            match chosen {
                Some(p) => assert!(protos.iter().any(|s| s.to_lowercase() == p)),
                None => assert!(protos.is_empty()),
            }
        }
        Err(m) => {
            // Either the upgrade itself is wrong (the reference's bare message), or it is
            // right and the subprotocol answer breaks RFC 6455 4.1 (the reason is appended).
            let upgrade_ok = r.header("sec-websocket-accept").map(str::trim) == Some(ACCEPT)
                && r.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
                && r.header("connection")
                    .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
            if upgrade_ok {
                let chosen = r.header("sec-websocket-protocol").map(|s| s.trim().to_lowercase());
                let chosen = chosen.filter(|s| !s.is_empty());
                let offered = |p: &String| protos.iter().any(|s| s.to_lowercase() == *p);
                assert!(
                    chosen.as_ref().map_or(!protos.is_empty(), |p| !offered(p)),
                    "a valid upgrade with an acceptable subprotocol answer was refused: {m}"
                );
                assert!(m.starts_with("Invalid WebSocket Header: "), "{m}");
            } else {
                assert_eq!(m, "Invalid WebSocket Header");
            }
        }
    }
    // A response that answers our key never passes for another key.
    if r.header("sec-websocket-accept").map(str::trim) == Some(ACCEPT) {
        assert!(verify_upgrade(r, "AAAAAAAAAAAAAAAAAAAAAA==", protos).is_err());
    }
}
