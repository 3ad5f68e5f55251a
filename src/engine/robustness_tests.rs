//! Engine robustness tests that need no Python: the reactor survives a panic in one
//! connection, and a connect/close loop against an in-process server (the loop that
//! `scripts/leakcheck` runs under valgrind).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::conn::Conn;
use crate::protocol::codec::Config;
use crate::protocol::frame::{self, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use crate::protocol::handshake::{self, RequestSpec};
use crate::transport::socket;
use crate::transport::stream::Stream;
use crate::transport::sys::RawSock;
use crate::transport::tcp;

/// The reactor panics while handling the connection on this socket (see reactor.rs).
pub(crate) static PANIC_ON: Mutex<Option<RawSock>> = Mutex::new(None);

const NO_INTERRUPT: &dyn Fn() -> bool = &|| false;

/// A connection over a loopback TCP pair, and the peer's end.
fn pair() -> (Arc<Conn>, TcpStream) {
    let (ours, theirs) = socket::test_pair();
    theirs.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    (Conn::new(Stream::plain(ours), Config::default(), &[]).unwrap(), theirs)
}

/// Reads one (masked) client frame from the peer side: (opcode, unmasked payload); None
/// at EOF.
fn read_client_frame(peer: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if let Ok(Some(h)) = frame::parse_header(&buf) {
            let mut body = vec![0u8; h.len as usize];
            peer.read_exact(&mut body).ok()?;
            if let Some(k) = h.mask {
                frame::apply_mask(&mut body, k);
            }
            return Some((h.opcode, body));
        }
        peer.read_exact(&mut byte).ok()?;
        buf.push(byte[0]);
    }
}

fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    frame::encode_frame(&mut v, true, 0, opcode, payload, None);
    v
}

#[test]
fn reactor_survives_a_panic_in_one_connection() {
    let (bad, mut bad_peer) = pair();
    let (good, mut good_peer) = pair();
    *PANIC_ON.lock() = Some(bad.fd());

    // The reactor reads `bad` (nobody is in recv()) and panics: that connection is failed...
    std::thread::sleep(Duration::from_millis(20));
    bad_peer.write_all(&server_frame(OP_PING, b"boom")).unwrap();
    // Give the reactor the read: a recv() now would read the socket itself.
    for _ in 0..300 {
        if bad.has_item() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let err = bad.recv(false, Some(Duration::from_secs(3)), NO_INTERRUPT).expect_err("poisoned");
    assert!(format!("{err:?}").contains("internal error"), "{err:?}");

    // ... and the reactor thread lives on: it still answers pings on the other one.
    std::thread::sleep(Duration::from_millis(20));
    good_peer.write_all(&server_frame(OP_PING, b"still here")).unwrap();
    assert_eq!(read_client_frame(&mut good_peer), Some((OP_PONG, b"still here".to_vec())));
    *PANIC_ON.lock() = None;
    drop((bad, good));
}

/// A minimal echo server: handshake, echo text frames, answer the close frame.
fn serve_one(mut s: TcpStream) {
    let mut req = Vec::new();
    let mut byte = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        req.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&req);
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap_or("")
        .trim()
        .to_string();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let resp = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    if s.write_all(resp.as_bytes()).is_err() {
        return;
    }
    while let Some((op, data)) = read_client_frame(&mut s) {
        match op {
            OP_TEXT if s.write_all(&server_frame(OP_TEXT, &data)).is_err() => return,
            OP_CLOSE => {
                let _ = s.write_all(&server_frame(OP_CLOSE, &data[..data.len().min(2)]));
                return;
            }
            _ => {}
        }
    }
}

/// Connects like `connect::connect` does (request, response check, `Conn::new` with what
/// followed the head), without the parts that need a ConnectSpec.
fn open(addr: std::net::SocketAddr) -> Arc<Conn> {
    let sock = TcpStream::connect(addr).unwrap();
    let stream = Stream::plain(tcp::finish_socket(socket2::Socket::from(sock)).unwrap());
    let spec = RequestSpec { host: "127.0.0.1".into(), port: addr.port(), resource: "/".into(), ..Default::default() };
    let (request, key) = handshake::build_request(&spec);
    stream.send_wire(&request, Some(Duration::from_secs(5)), NO_INTERRUPT).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let resp = loop {
        match handshake::parse_response(&buf) {
            Ok(r) => break r,
            Err(handshake::ParseError::Partial) => {}
            Err(e) => panic!("{e:?}"),
        }
        match stream.read(&mut chunk, crate::transport::socket::Wait::Slice).unwrap() {
            crate::transport::stream::ReadOutcome::Data(n) => buf.extend_from_slice(&chunk[..n]),
            crate::transport::stream::ReadOutcome::Eof => panic!("EOF in handshake"),
            crate::transport::stream::ReadOutcome::WouldBlock => {}
        }
    };
    handshake::verify_upgrade(&resp, &key, &[]).unwrap();
    Conn::new(stream, Config::default(), &buf[resp.head_len..]).unwrap()
}

#[test]
fn connect_close_loop() {
    // 60 rounds in the normal run; `scripts/leakcheck` sets more under valgrind.
    let rounds: usize = std::env::var("WS_LEAK_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for s in listener.incoming().take(rounds) {
            let s = s.unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            std::thread::spawn(move || serve_one(s));
        }
    });
    let t = Some(Duration::from_secs(10));
    for i in 0..rounds {
        let conn = open(addr);
        match i % 3 {
            // A message both ways, then the close handshake.
            0 => {
                let msg = format!("message {i}").repeat(i % 7 + 1);
                conn.send_frame(true, 0, OP_TEXT, msg.as_bytes(), None, t, NO_INTERRUPT).unwrap();
                let item = conn.recv(false, t, NO_INTERRUPT).unwrap();
                assert_eq!(item.data, msg.as_bytes());
                conn.send_close(&1000u16.to_be_bytes(), t, NO_INTERRUPT).unwrap();
                assert!(conn.await_peer_close(t, NO_INTERRUPT).is_some());
                conn.shutdown();
            }
            // Close handshake only.
            1 => {
                conn.send_close(&1000u16.to_be_bytes(), t, NO_INTERRUPT).unwrap();
                conn.await_peer_close(t, NO_INTERRUPT);
                conn.shutdown();
            }
            // Dropped without closing.
            _ => {}
        }
        drop(conn);
    }
    server.join().unwrap();
}

#[test]
fn a_send_tried_without_waiting_keeps_frames_whole_and_in_order() {
    use super::conn::TrySend;
    let (conn, mut peer) = pair();
    // Large frames until the socket buffers are full: the last try leaves a rest pending
    // (or finds the lock or pending bytes and does nothing), which finish_send writes
    // before any later frame.
    let big = vec![b'x'; 256 * 1024];
    let mut sent = Vec::new();
    let mut rest = false;
    for i in 0..64u8 {
        let mut payload = big.clone();
        payload[0] = i;
        match conn.try_send_frame(true, 0, OP_TEXT, &payload, None) {
            TrySend::Done(_) => sent.push(i),
            TrySend::Rest(_) => {
                sent.push(i);
                rest = true;
                break;
            }
            TrySend::NotNow => unreachable!("nothing else holds the write side"),
            TrySend::Failed(e) => panic!("{e:?}"),
        }
    }
    assert!(rest, "the socket never filled up");
    // A try now finds bytes pending and does nothing.
    assert!(matches!(conn.try_send_frame(true, 0, OP_TEXT, b"later", None), TrySend::NotNow));
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while let Some((op, body)) = read_client_frame(&mut peer) {
            got.push((op, body[0], body.len()));
            if body == b"later" {
                break;
            }
        }
        got
    });
    conn.finish_send(Some(Duration::from_secs(10)), NO_INTERRUPT).unwrap();
    conn.send_frame(true, 0, OP_TEXT, b"later", None, Some(Duration::from_secs(10)), NO_INTERRUPT).unwrap();
    let got = reader.join().unwrap();
    let expected: Vec<_> = sent.iter().map(|&i| (OP_TEXT, i, big.len())).chain([(OP_TEXT, b'l', 5)]).collect();
    assert_eq!(got, expected);
}
