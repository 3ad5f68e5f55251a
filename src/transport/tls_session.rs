//! A rustls client session driven through byte buffers: wire bytes in, plaintext out, and
//! plaintext sealed into wire bytes. It does no I/O of its own; `Stream` moves the bytes.
//!
//! rustls keeps at most 16 KiB of decrypted plaintext: fed more wire bytes while that much is
//! waiting, it refuses them ("received plaintext buffer full"). So bytes read from the socket
//! wait in an inbox and are handed to rustls only once the plaintext before them has been
//! read: a reader that pauses (flow control, a slow application) pauses the socket, it never
//! fails the connection, however much arrived before the first read.
//!
//! Reads and writes may happen on two threads at once: the session sits behind a mutex held
//! only while it encrypts or decrypts, and the inbox belongs to the one current reader.

use std::io::{Read, Write};
use std::mem::MaybeUninit;

use parking_lot::Mutex;
use rustls::ClientConnection;

use super::{tls, NetError};

/// Largest socket read into the inbox.
pub const WIRE_CHUNK: usize = 64 * 1024;
/// An empty inbox keeps at most this much capacity (idle connections stay small).
const KEEP_INBOX: usize = 16 * 1024;

/// What `read_plain` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Plain {
    Data(usize),
    /// The peer closed the TLS session (close_notify).
    Eof,
    /// No plaintext and no buffered wire bytes: read the socket (`fill_inbox`).
    NeedWire,
}

#[derive(Default)]
struct Inbox {
    buf: Vec<u8>,
    pos: usize,
}

impl Inbox {
    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn consumed(&mut self, n: usize) {
        self.pos += n;
        if self.is_empty() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > KEEP_INBOX {
                self.buf = Vec::new();
            }
        }
    }
}

pub struct TlsSession {
    conn: Mutex<ClientConnection>,
    inbox: Mutex<Inbox>,
    /// The name the certificate was checked against, for error messages.
    host: String,
}

impl TlsSession {
    pub fn new(opts: &tls::TlsOptions, host: &str) -> Result<Self, NetError> {
        let config = tls::client_config(opts).map_err(NetError::Tls)?;
        let sni = opts.server_hostname.as_deref().unwrap_or(host);
        let conn = ClientConnection::new(config, tls::server_name(sni).map_err(NetError::Tls)?)
            .map_err(|e| NetError::Tls(tls::classify(&e, sni)))?;
        Ok(Self::from_connection(conn, sni))
    }

    /// Wraps a rustls connection made elsewhere (the transport's tests make their own).
    pub fn from_connection(conn: ClientConnection, host: &str) -> Self {
        TlsSession { conn: Mutex::new(conn), inbox: Mutex::new(Inbox::default()), host: host.to_string() }
    }

    fn error(&self, e: rustls::Error) -> NetError {
        NetError::Tls(tls::classify(&e, &self.host))
    }

    /// Plaintext that is here already, decrypting buffered wire bytes as far as needed.
    pub fn read_plain(&self, buf: &mut [u8]) -> Result<Plain, NetError> {
        let mut c = self.conn.lock();
        let mut inbox = self.inbox.lock();
        loop {
            match c.reader().read(buf) {
                Ok(0) if !buf.is_empty() => return Ok(Plain::Eof),
                Ok(n) => return Ok(Plain::Data(n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(Plain::Eof),
                Err(e) => return Err(NetError::from(e)),
            }
            if !self.feed(&mut c, &mut inbox)? {
                return Ok(Plain::NeedWire);
            }
        }
    }

    /// Hands rustls the next buffered wire bytes (as many as it takes at once) and decrypts
    /// what completed; false when the inbox is empty.
    fn feed(&self, c: &mut ClientConnection, inbox: &mut Inbox) -> Result<bool, NetError> {
        if inbox.is_empty() {
            return Ok(false);
        }
        let mut rest = &inbox.buf[inbox.pos..];
        // Only called with no plaintext waiting, so rustls has room; an error here is a
        // broken record stream.
        let n = c.read_tls(&mut rest).map_err(|e| self.error(rustls::Error::General(format!("TLS input refused: {e}"))))?;
        inbox.consumed(n);
        c.process_new_packets().map_err(|e| self.error(e))?;
        Ok(true)
    }

    /// Appends one socket read to the inbox: `read` gets the inbox's spare room and returns
    /// how many bytes it wrote there (0 at EOF), or the socket's error.
    pub fn fill_inbox(&self, read: impl FnOnce(&mut [MaybeUninit<u8>]) -> std::io::Result<usize>) -> std::io::Result<usize> {
        let mut inbox = self.inbox.lock();
        inbox.buf.reserve(WIRE_CHUNK);
        let spare = inbox.buf.spare_capacity_mut();
        let len = spare.len().min(WIRE_CHUNK);
        let n = read(&mut spare[..len])?;
        let n = n.min(len);
        let new_len = inbox.buf.len() + n;
        // SAFETY: `read` initialised the first `n` bytes of the spare capacity.
        unsafe { inbox.buf.set_len(new_len) };
        Ok(n)
    }

    /// Whether plaintext, undecrypted wire bytes or the peer's close_notify wait here (a read
    /// would not need the socket).
    pub fn has_buffered(&self) -> bool {
        if !self.inbox.lock().is_empty() {
            return true;
        }
        let mut c = self.conn.lock();
        c.process_new_packets().map(|s| s.plaintext_bytes_to_read() > 0 || s.peer_has_closed()).unwrap_or(true)
    }

    /// Encrypts `plaintext` into wire bytes.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, NetError> {
        let mut c = self.conn.lock();
        let mut out = Vec::with_capacity(plaintext.len() + 64);
        let mut off = 0;
        loop {
            if off < plaintext.len() {
                off += c.writer().write(&plaintext[off..]).map_err(NetError::Io)?;
            }
            while c.wants_write() {
                c.write_tls(&mut out).map_err(NetError::Io)?;
            }
            if off >= plaintext.len() {
                return Ok(out);
            }
        }
    }

    /// One step of the handshake: the bytes to send now, and whether the handshake goes on.
    pub fn handshake_step(&self) -> Result<(Vec<u8>, bool), NetError> {
        let mut c = self.conn.lock();
        let mut out = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut out).map_err(NetError::Io)?;
        }
        Ok((out, c.is_handshaking()))
    }

    /// Feeds buffered wire bytes during the handshake; false when there are none. On a
    /// failure, returns the alert rustls queued for the peer along with the error.
    pub fn handshake_feed(&self) -> Result<bool, (NetError, Vec<u8>)> {
        let mut c = self.conn.lock();
        let mut inbox = self.inbox.lock();
        match self.feed(&mut c, &mut inbox) {
            Ok(fed) => Ok(fed),
            Err(e) => {
                let mut alert = Vec::new();
                while c.wants_write() && c.write_tls(&mut alert).is_ok() {}
                Err((e, alert))
            }
        }
    }
}
