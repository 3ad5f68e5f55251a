//! Echo / push WebSocket server for the benchmark (and a raw TCP ping-pong responder).
//!
//! Blocking sockets, one thread per connection taken from a pool of threads already parked
//! in `accept()` (no thread spawn on the handshake path). Frames are unmasked in place and
//! echoed store-and-forward with at most one user-space copy (none above 64 KiB: writev).
//!
//! Paths: `/echo` echoes every data frame (pings get pongs, a close gets a close back and
//! the connection is shut down); `/push?n=N&size=S` waits for one message from the client,
//! then sends N text messages of S bytes, then behaves like `/echo`.
//! A connection that starts with `RAW1` + req_size (u32 LE) + resp_size (u32 LE) is a raw
//! TCP ping-pong: read exactly req_size bytes, answer resp_size bytes, repeat.
//!
//! Prints `PORT <n>` on stdout once listening; exits when stdin closes.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

static IDLE: AtomicUsize = AtomicUsize::new(0);
const MIN_IDLE: usize = 4;
const MAX_IDLE: usize = 32;
/// Payloads up to this are echoed from the read buffer; larger ones from a reused Vec.
const INLINE: usize = 256 * 1024;
/// Replies up to this are copied into one buffer and written with one write().
const COPY_REPLY: usize = 64 * 1024;

fn main() {
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--port" {
            port = args.next().and_then(|p| p.parse().ok()).expect("--port N");
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let port = listener.local_addr().unwrap().port();
    let listener = Arc::new(listener);
    for _ in 0..MIN_IDLE {
        spawn_acceptor(listener.clone());
    }
    println!("PORT {port}");
    io::stdout().flush().ok();
    // Run until the parent closes our stdin (or kills us).
    let mut sink = [0u8; 64];
    while let Ok(n) = io::stdin().read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

fn spawn_acceptor(l: Arc<TcpListener>) {
    IDLE.fetch_add(1, Ordering::SeqCst);
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || acceptor(l))
        .expect("spawn");
}

fn acceptor(l: Arc<TcpListener>) {
    loop {
        let r = l.accept();
        let left = IDLE.fetch_sub(1, Ordering::SeqCst) - 1;
        if left < MIN_IDLE {
            spawn_acceptor(l.clone());
        }
        if let Ok((s, _)) = r {
            let _ = handle(s);
        }
        if IDLE.load(Ordering::SeqCst) >= MAX_IDLE {
            return;
        }
        IDLE.fetch_add(1, Ordering::SeqCst);
    }
}

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    big: Vec<u8>,
}

impl Conn {
    fn avail(&self) -> usize {
        self.end - self.start
    }

    /// Makes at least `need` bytes available; false on EOF.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        if self.avail() >= need {
            return Ok(true);
        }
        if self.start + need > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if need > self.buf.len() {
                self.buf.resize(need.next_power_of_two(), 0);
            }
        }
        while self.avail() < need {
            let n = self.s.read(&mut self.buf[self.end..])?;
            if n == 0 {
                return Ok(false);
            }
            self.end += n;
        }
        Ok(true)
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

fn handle(s: TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut c = Conn { s, buf: vec![0u8; 64 * 1024], start: 0, end: 0, out: Vec::with_capacity(COPY_REPLY + 16), big: Vec::new() };
    if !c.fill(4)? {
        return Ok(());
    }
    if &c.buf[c.start..c.start + 4] == b"RAW1" {
        return raw(c);
    }
    // HTTP upgrade request.
    let head_end = loop {
        if let Some(p) = find(&c.buf[c.start..c.end], b"\r\n\r\n") {
            break p + 4;
        }
        let want = c.avail() + 1;
        if want > 64 * 1024 || !c.fill(want)? {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&c.buf[c.start..c.start + head_end]).into_owned();
    c.consume(head_end);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let key = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("sec-websocket-key").then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let resp = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    c.s.write_all(resp.as_bytes())?;
    if let Some(q) = path.strip_prefix("/push?") {
        let mut n = 0usize;
        let mut size = 100usize;
        for kv in q.split('&') {
            match kv.split_once('=') {
                Some(("n", v)) => n = v.parse().unwrap_or(0),
                Some(("size", v)) => size = v.parse().unwrap_or(100),
                _ => {}
            }
        }
        // Wait for the client's go message (its content is ignored).
        match next_frame(&mut c)? {
            Some((op, _)) if op & 0x0f == 0x8 => return close_reply(&mut c),
            Some((_, Payload::Inline(len))) => c.consume(len),
            Some((_, Payload::Big)) => {}
            None => return Ok(()),
        }
        push(&mut c, n, size)?;
    }
    echo(c)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let m = u32::from_ne_bytes(mask) as u64;
    let m64 = m | (m << 32);
    let mut chunks = data.chunks_exact_mut(8);
    for ch in &mut chunks {
        let v = u64::from_ne_bytes((&*ch).try_into().unwrap()) ^ m64;
        ch.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

fn header(out: &mut Vec<u8>, b0: u8, len: usize) {
    out.push(b0);
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Where the current frame's payload lives after `next_frame`.
enum Payload {
    /// `c.buf[c.start..c.start+len]`, to be consumed by the caller.
    Inline(usize),
    /// `c.big`.
    Big,
}

/// Reads one frame, unmasks it; returns (b0, payload location), None on EOF.
fn next_frame(c: &mut Conn) -> io::Result<Option<(u8, Payload)>> {
    if !c.fill(2)? {
        return Ok(None);
    }
    let b0 = c.buf[c.start];
    let b1 = c.buf[c.start + 1];
    let masked = b1 & 0x80 != 0;
    let len7 = (b1 & 0x7f) as usize;
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let hl = 2 + ext + if masked { 4 } else { 0 };
    if !c.fill(hl)? {
        return Ok(None);
    }
    let p = c.start + 2;
    let len = match ext {
        2 => u16::from_be_bytes([c.buf[p], c.buf[p + 1]]) as usize,
        8 => u64::from_be_bytes(c.buf[p..p + 8].try_into().unwrap()) as usize,
        _ => len7,
    };
    let mask: Option<[u8; 4]> = masked.then(|| c.buf[p + ext..p + ext + 4].try_into().unwrap());
    c.consume(hl);
    if len <= INLINE {
        if !c.fill(len)? {
            return Ok(None);
        }
        if let Some(m) = mask {
            unmask(&mut c.buf[c.start..c.start + len], m);
        }
        return Ok(Some((b0, Payload::Inline(len))));
    }
    c.big.clear();
    c.big.reserve(len);
    let have = c.avail().min(len);
    c.big.extend_from_slice(&c.buf[c.start..c.start + have]);
    c.consume(have);
    // SAFETY: read_exact fills every byte of the spare capacity we expose.
    unsafe { c.big.set_len(len) };
    c.s.read_exact(&mut c.big[have..])?;
    if let Some(m) = mask {
        unmask(&mut c.big, m);
    }
    Ok(Some((b0, Payload::Big)))
}

fn write_frame(s: &mut TcpStream, out: &mut Vec<u8>, b0: u8, payload: &[u8]) -> io::Result<()> {
    out.clear();
    header(out, b0, payload.len());
    if payload.len() <= COPY_REPLY {
        out.extend_from_slice(payload);
        return s.write_all(out);
    }
    let mut h = &out[..];
    let mut p = payload;
    while !h.is_empty() || !p.is_empty() {
        let n = s.write_vectored(&[IoSlice::new(h), IoSlice::new(p)])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_h = n.min(h.len());
        h = &h[from_h..];
        p = &p[n - from_h..];
    }
    Ok(())
}

fn echo(mut c: Conn) -> io::Result<()> {
    loop {
        let Some((b0, loc)) = next_frame(&mut c)? else { return Ok(()) };
        let op = b0 & 0x0f;
        if op == 0x8 {
            return close_reply_at(&mut c, loc);
        }
        let reply_b0 = if op == 0x9 { 0x80 | 0xA } else { b0 & 0x8f };
        let Conn { s, buf, start, out, big, .. } = &mut c;
        let payload: &[u8] = match loc {
            Payload::Inline(len) => &buf[*start..*start + len],
            Payload::Big => big,
        };
        if op != 0xA {
            write_frame(s, out, reply_b0, payload)?;
        }
        if let Payload::Inline(len) = loc {
            c.consume(len);
        }
        if c.big.capacity() > 8 << 20 {
            c.big = Vec::new();
        }
    }
}

fn close_reply_at(c: &mut Conn, loc: Payload) -> io::Result<()> {
    let payload: Vec<u8> = match loc {
        Payload::Inline(len) => c.buf[c.start..c.start + len].to_vec(),
        Payload::Big => c.big.clone(),
    };
    let code = if payload.len() >= 2 { payload[..2].to_vec() } else { Vec::new() };
    let mut out = Vec::new();
    write_frame(&mut c.s, &mut out, 0x88, &code)?;
    let _ = c.s.shutdown(Shutdown::Both);
    Ok(())
}

fn close_reply(c: &mut Conn) -> io::Result<()> {
    let mut out = Vec::new();
    write_frame(&mut c.s, &mut out, 0x88, &1000u16.to_be_bytes())?;
    let _ = c.s.shutdown(Shutdown::Both);
    Ok(())
}

fn push(c: &mut Conn, n: usize, size: usize) -> io::Result<()> {
    let payload = vec![b'x'; size];
    let mut one = Vec::new();
    header(&mut one, 0x81, size);
    one.extend_from_slice(&payload);
    let per_chunk = (64 * 1024 / one.len()).max(1);
    let mut chunk = Vec::with_capacity(per_chunk * one.len());
    for _ in 0..per_chunk.min(n) {
        chunk.extend_from_slice(&one);
    }
    let mut left = n;
    while left >= per_chunk {
        c.s.write_all(&chunk)?;
        left -= per_chunk;
    }
    if left > 0 {
        c.s.write_all(&chunk[..left * one.len()])?;
    }
    Ok(())
}

fn raw(mut c: Conn) -> io::Result<()> {
    if !c.fill(12)? {
        return Ok(());
    }
    let req = u32::from_le_bytes(c.buf[c.start + 4..c.start + 8].try_into().unwrap()) as usize;
    let resp = u32::from_le_bytes(c.buf[c.start + 8..c.start + 12].try_into().unwrap()) as usize;
    c.consume(12);
    if c.buf.len() < req {
        // Read as much per call as the WebSocket echo's large-payload path does.
        c.buf.resize(req, 0);
    }
    let answer = vec![0x5au8; resp];
    loop {
        // Store and forward, as the WebSocket echo does: the whole request, then the answer.
        let mut left = req;
        while left > 0 {
            if c.avail() == 0 {
                c.start = 0;
                c.end = 0;
                let n = c.s.read(&mut c.buf)?;
                if n == 0 {
                    return Ok(());
                }
                c.end = n;
            }
            let take = c.avail().min(left);
            c.consume(take);
            left -= take;
        }
        c.s.write_all(&answer)?;
    }
}
