//! A connected byte stream: plain TCP/Unix socket or TLS over one.
//!
//! Reads and writes take `&self` so one thread can read while another writes. For TLS the
//! rustls session sits behind a mutex held only while it encrypts or decrypts, never during
//! socket I/O, so a large send does not stop the reader. Writes are split in two steps,
//! `seal` (encrypt) then `send_wire`, so the engine can keep TLS records in order under its
//! own write lock.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use parking_lot::Mutex;
use rustls::ClientConnection;

use super::{sys, tls, Deadline, Interrupt, NetError};

pub struct Stream {
    fd: OwnedFd,
    tls: Option<Mutex<ClientConnection>>,
    host: String,
}

/// Outcome of one read attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Data(usize),
    Eof,
    /// Nothing arrived (non-blocking attempt, or one blocking slice elapsed).
    WouldBlock,
}

/// A socket read's result as the connection sees it: EOF and a reset by the peer both
/// end the stream; EAGAIN/EINTR mean "nothing now".
fn outcome(r: std::io::Result<usize>) -> Result<ReadOutcome, NetError> {
    match r {
        Ok(0) => Ok(ReadOutcome::Eof),
        Ok(n) => Ok(ReadOutcome::Data(n)),
        Err(e) if sys::is_would_block(&e) || e.kind() == std::io::ErrorKind::Interrupted => Ok(ReadOutcome::WouldBlock),
        Err(e) => match NetError::from(e) {
            NetError::Closed(_) => Ok(ReadOutcome::Eof),
            other => Err(other),
        },
    }
}

const RAW_CHUNK: usize = 18 * 1024;

impl Stream {
    pub fn plain(fd: OwnedFd) -> Self {
        Stream { fd, tls: None, host: String::new() }
    }

    /// Wraps `fd` in TLS and runs the handshake.
    pub fn tls(fd: OwnedFd, opts: &tls::TlsOptions, host: &str, deadline: Deadline, interrupt: Interrupt<'_>) -> Result<Self, NetError> {
        let config = tls::client_config(opts).map_err(NetError::Tls)?;
        let sni = opts.server_hostname.as_deref().unwrap_or(host);
        let conn = ClientConnection::new(config, tls::server_name(sni).map_err(NetError::Tls)?)
            .map_err(|e| NetError::Tls(tls::classify(&e, sni)))?;
        let s = Stream { fd, tls: Some(Mutex::new(conn)), host: sni.to_string() };
        s.handshake(deadline, interrupt)?;
        Ok(s)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn tls_err(&self, e: rustls::Error) -> NetError {
        NetError::Tls(tls::classify(&e, &self.host))
    }

    fn handshake(&self, deadline: Deadline, interrupt: Interrupt<'_>) -> Result<(), NetError> {
        let tls = self.tls.as_ref().expect("tls stream");
        let mut raw = vec![0u8; RAW_CHUNK];
        loop {
            let (out, handshaking, wants_read) = {
                let mut c = tls.lock();
                let mut out = Vec::new();
                while c.wants_write() {
                    c.write_tls(&mut out).map_err(NetError::Io)?;
                }
                (out, c.is_handshaking(), c.wants_read())
            };
            if !out.is_empty() {
                self.send_wire(&out, deadline.remaining(), interrupt)?;
            }
            if !handshaking {
                return Ok(());
            }
            if !wants_read {
                continue;
            }
            match sys::recv(self.fd(), &mut raw, false) {
                Ok(0) => {
                    return Err(NetError::Tls(tls::TlsError::Eof("EOF occurred in violation of protocol (TLS handshake)".into())))
                }
                Ok(n) => {
                    let mut c = tls.lock();
                    let r = feed_tls(&mut c, &raw[..n]);
                    if let Err(e) = r {
                        // Send the alert rustls queued, best effort.
                        let mut out = Vec::new();
                        while c.wants_write() && c.write_tls(&mut out).is_ok() {}
                        drop(c);
                        let _ = sys::send(self.fd(), &out, true);
                        return Err(self.tls_err(e));
                    }
                }
                Err(e) if sys::is_would_block(&e) => {
                    if interrupt() {
                        return Err(NetError::Interrupted);
                    }
                    if deadline.expired() {
                        return Err(NetError::Timeout);
                    }
                }
                Err(e) => return Err(NetError::from(e)),
            }
        }
    }

    /// One read attempt. Blocking attempts wait at most one SLICE.
    pub fn read(&self, buf: &mut [u8], dontwait: bool) -> Result<ReadOutcome, NetError> {
        let Some(tls) = &self.tls else {
            return outcome(sys::recv(self.fd(), buf, dontwait));
        };
        let mut raw = [0u8; RAW_CHUNK];
        loop {
            {
                let mut c = tls.lock();
                match c.reader().read(buf) {
                    Ok(0) => return Ok(ReadOutcome::Eof),
                    Ok(n) => return Ok(ReadOutcome::Data(n)),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(ReadOutcome::Eof),
                    Err(e) => return Err(NetError::from(e)),
                }
            }
            match sys::recv(self.fd(), &mut raw, dontwait) {
                Ok(0) => return Ok(ReadOutcome::Eof),
                Ok(n) => {
                    let mut c = tls.lock();
                    feed_tls(&mut c, &raw[..n]).map_err(|e| self.tls_err(e))?;
                }
                Err(e) => return outcome(Err(e)),
            }
        }
    }

    /// One read attempt of up to `want` bytes appended to `buf` (plain sockets read
    /// straight into its spare capacity, nothing zeroed first).
    pub fn read_into(&self, buf: &mut Vec<u8>, want: usize, dontwait: bool) -> Result<ReadOutcome, NetError> {
        buf.reserve(want);
        if self.tls.is_none() {
            let spare = buf.spare_capacity_mut();
            let n = want.min(spare.len());
            let res = outcome(sys::recv_uninit(self.fd(), &mut spare[..n], dontwait));
            if let Ok(ReadOutcome::Data(k)) = res {
                // SAFETY: recv initialised exactly `k` bytes from the current length on.
                unsafe { buf.set_len(buf.len() + k) };
            }
            return res;
        }
        let start = buf.len();
        buf.resize(start + want, 0);
        let res = self.read(&mut buf[start..], dontwait);
        let n = match &res {
            Ok(ReadOutcome::Data(n)) => *n,
            _ => 0,
        };
        buf.truncate(start + n);
        res
    }

    /// Plaintext to wire bytes: encrypted for TLS, borrowed as is otherwise.
    pub fn seal<'a>(&self, plaintext: &'a [u8]) -> Result<Cow<'a, [u8]>, NetError> {
        let Some(tls) = &self.tls else {
            return Ok(Cow::Borrowed(plaintext));
        };
        let mut c = tls.lock();
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
                return Ok(Cow::Owned(out));
            }
        }
    }

    /// Sends wire bytes, waiting as needed; the deadline is pushed back on every progress,
    /// like a socket timeout.
    pub fn send_wire(&self, mut wire: &[u8], timeout: Option<std::time::Duration>, interrupt: Interrupt<'_>) -> Result<(), NetError> {
        let mut deadline = Deadline::after(timeout);
        while !wire.is_empty() {
            match sys::send(self.fd(), wire, false) {
                Ok(n) => {
                    wire = &wire[n..];
                    deadline = Deadline::after(timeout);
                }
                Err(e) if sys::is_would_block(&e) => {
                    if interrupt() {
                        return Err(NetError::Interrupted);
                    }
                    if deadline.expired() {
                        return Err(NetError::Timeout);
                    }
                }
                Err(e) => return Err(NetError::from(e)),
            }
        }
        Ok(())
    }

    /// One non-blocking send attempt; returns how much was taken.
    pub fn try_send_wire(&self, wire: &[u8]) -> Result<usize, NetError> {
        match sys::send(self.fd(), wire, true) {
            Ok(n) => Ok(n),
            Err(e) if sys::is_would_block(&e) => Ok(0),
            Err(e) => Err(NetError::from(e)),
        }
    }

    /// Shuts the socket down both ways, which wakes up any thread blocked on it. No TLS
    /// close_notify is sent (websocket-client does not send one either): bytes already
    /// sealed by a writer could otherwise follow it out of order.
    pub fn shutdown(&self) {
        sys::shutdown(self.fd());
    }
}

fn feed_tls(c: &mut ClientConnection, mut data: &[u8]) -> Result<(), rustls::Error> {
    while !data.is_empty() {
        match c.read_tls(&mut data) {
            Ok(_) => {}
            Err(_) => return Err(rustls::Error::General("TLS buffer full".into())),
        }
        c.process_new_packets()?;
    }
    Ok(())
}
