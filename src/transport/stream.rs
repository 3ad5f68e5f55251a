//! A connected byte stream: a plain socket, or TLS over one.
//!
//! Reads and writes take `&self` so one thread can read while another writes. For TLS the
//! session (tls_session.rs) is locked only while it encrypts or decrypts, never during socket
//! I/O, so a large send does not stop the reader. Writes are split in two steps, `seal`
//! (encrypt) then `send_wire`, so the engine can keep TLS records in order under its own
//! write lock.
//!
//! Every read path (the handshake's, an inline `recv`, the reactor's) goes through `read`:
//! for TLS it returns plaintext that is already decrypted, then decrypts wire bytes already
//! read, and reads the socket only when neither is left.

use std::borrow::Cow;

use super::socket::{RawIo, Socket, Wait};
use super::tls_session::{Plain, TlsSession};
use super::{sys, tls, Deadline, Interrupt, NetError};

pub struct Stream<R: RawIo = Socket> {
    raw: R,
    /// Boxed: a rustls session is about 1 KiB, which a plain connection should not carry.
    tls: Option<Box<TlsSession>>,
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

impl Stream<Socket> {
    pub fn raw_socket(&self) -> super::sys::RawSock {
        self.raw.raw()
    }

    pub fn socket(&self) -> &Socket {
        &self.raw
    }
}

impl<R: RawIo> Stream<R> {
    pub fn plain(raw: R) -> Self {
        Stream { raw, tls: None }
    }

    /// Wraps `raw` in TLS and runs the handshake.
    pub fn tls(raw: R, opts: &tls::TlsOptions, host: &str, deadline: Deadline, interrupt: Interrupt<'_>) -> Result<Self, NetError> {
        let s = Stream { raw, tls: Some(Box::new(TlsSession::new(opts, host)?)) };
        s.handshake(deadline, interrupt)?;
        Ok(s)
    }

    /// A stream over an existing TLS session (the transport's tests).
    pub fn with_session(raw: R, session: TlsSession, deadline: Deadline, interrupt: Interrupt<'_>) -> Result<Self, NetError> {
        let s = Stream { raw, tls: Some(Box::new(session)) };
        s.handshake(deadline, interrupt)?;
        Ok(s)
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether bytes wait in this process (TLS plaintext or undecrypted records), so that a
    /// read would return without the socket becoming readable.
    pub fn has_buffered(&self) -> bool {
        self.tls.as_deref().is_some_and(TlsSession::has_buffered)
    }

    fn handshake(&self, deadline: Deadline, interrupt: Interrupt<'_>) -> Result<(), NetError> {
        let tls = self.tls.as_ref().expect("tls stream");
        loop {
            let (out, handshaking) = tls.handshake_step()?;
            if !out.is_empty() {
                self.send_wire(&out, deadline.remaining(), interrupt)?;
            }
            if !handshaking {
                return Ok(());
            }
            match tls.handshake_feed() {
                Ok(true) => continue,
                Ok(false) => {}
                Err((e, alert)) => {
                    // Send the alert rustls queued, best effort.
                    let _ = self.raw.write(&alert, Wait::Now);
                    return Err(e);
                }
            }
            match tls.fill_inbox(|spare| self.raw.read_uninit(spare, Wait::Slice)) {
                Ok(0) => {
                    return Err(NetError::Tls(tls::TlsError::Eof("EOF occurred in violation of protocol (TLS handshake)".into())))
                }
                Ok(_) => {}
                Err(e) if sys::is_would_block(&e) || e.kind() == std::io::ErrorKind::Interrupted => {
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
    pub fn read(&self, buf: &mut [u8], wait: Wait) -> Result<ReadOutcome, NetError> {
        let Some(tls) = &self.tls else {
            return outcome(self.raw.read(buf, wait));
        };
        loop {
            match tls.read_plain(buf)? {
                Plain::Data(n) => return Ok(ReadOutcome::Data(n)),
                Plain::Eof => return Ok(ReadOutcome::Eof),
                Plain::NeedWire => {}
            }
            match outcome(tls.fill_inbox(|spare| self.raw.read_uninit(spare, wait)))? {
                ReadOutcome::Data(_) => {}
                other => return Ok(other),
            }
        }
    }

    /// One read attempt of up to `want` bytes appended to `buf` (plain sockets read
    /// straight into its spare capacity, nothing zeroed first).
    pub fn read_into(&self, buf: &mut Vec<u8>, want: usize, wait: Wait) -> Result<ReadOutcome, NetError> {
        buf.reserve(want);
        if self.tls.is_none() {
            let spare = buf.spare_capacity_mut();
            let n = want.min(spare.len());
            let res = outcome(self.raw.read_uninit(&mut spare[..n], wait));
            if let Ok(ReadOutcome::Data(k)) = res {
                // SAFETY: the read initialised exactly `k` bytes from the current length on.
                unsafe { buf.set_len(buf.len() + k) };
            }
            return res;
        }
        let start = buf.len();
        buf.resize(start + want, 0);
        let res = self.read(&mut buf[start..], wait);
        let n = match &res {
            Ok(ReadOutcome::Data(n)) => *n,
            _ => 0,
        };
        buf.truncate(start + n);
        res
    }

    /// Plaintext to wire bytes: encrypted for TLS, borrowed as is otherwise.
    pub fn seal<'a>(&self, plaintext: &'a [u8]) -> Result<Cow<'a, [u8]>, NetError> {
        match &self.tls {
            None => Ok(Cow::Borrowed(plaintext)),
            Some(tls) => tls.seal(plaintext).map(Cow::Owned),
        }
    }

    /// Sends wire bytes, waiting as needed; the deadline is pushed back on every progress,
    /// like a socket timeout.
    pub fn send_wire(&self, wire: &[u8], timeout: Option<std::time::Duration>, interrupt: Interrupt<'_>) -> Result<(), NetError> {
        self.send_wire_counted(wire, &mut 0, timeout, interrupt)
    }

    /// `send_wire`, counting in `sent` how much went out (all of it on success; on an
    /// error, the caller keeps the rest).
    pub fn send_wire_counted(
        &self,
        wire: &[u8],
        sent: &mut usize,
        timeout: Option<std::time::Duration>,
        interrupt: Interrupt<'_>,
    ) -> Result<(), NetError> {
        let mut deadline = Deadline::after(timeout);
        while *sent < wire.len() {
            match self.raw.write(&wire[*sent..], Wait::Slice) {
                Ok(n) => {
                    *sent += n;
                    deadline = Deadline::after(timeout);
                }
                Err(e) if sys::is_would_block(&e) || e.kind() == std::io::ErrorKind::Interrupted => {
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
        match self.raw.write(wire, Wait::Now) {
            Ok(n) => Ok(n),
            Err(e) if sys::is_would_block(&e) || e.kind() == std::io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(NetError::from(e)),
        }
    }

    /// Shuts the socket down both ways, which wakes up any thread blocked on it. No TLS
    /// close_notify is sent (websocket-client does not send one either): bytes already
    /// sealed by a writer could otherwise follow it out of order.
    pub fn shutdown(&self) {
        self.raw.shutdown();
    }
}
