//! A connected socket as the transports see it: reads and writes that either return at once
//! (`Wait::Now`) or wait at most one `SLICE` (`Wait::Slice`), so every blocking loop above can
//! check for Ctrl-C and its deadline between slices.
//!
//! `RawIo` is what a `Stream` needs from the bytes below it; the socket implements it, and so
//! do the in-memory pipes of the transport's property tests.

use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use super::sys::{self, RawSock};
/// How long one read or write attempt may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Return at once (EAGAIN when nothing is there).
    Now,
    /// Wait at most one `SLICE` (EAGAIN when it elapses).
    Slice,
}

/// The byte pipe below a `Stream`. Errors are `io::Error`s; `WouldBlock`/`TimedOut` mean
/// "nothing now".
pub trait RawIo: Send + Sync {
    fn read(&self, buf: &mut [u8], wait: Wait) -> io::Result<usize>;
    /// Reads into uninitialised memory; returns how many bytes were initialised.
    fn read_uninit(&self, buf: &mut [MaybeUninit<u8>], wait: Wait) -> io::Result<usize>;
    fn write(&self, buf: &[u8], wait: Wait) -> io::Result<usize>;
    /// Shuts both directions down: wakes every thread blocked on the pipe.
    fn shutdown(&self);
}

/// An owned, connected stream socket in the engine's mode (`tcp::finish_socket`): every
/// `Wait::Slice` attempt returns within about one `SLICE` (how, is `sys`'s business).
#[derive(Debug)]
pub struct Socket(socket2::Socket);

impl Socket {
    pub fn new(sock: socket2::Socket) -> Self {
        Socket(sock)
    }

    /// The OS handle (a file descriptor, or a SOCKET on Windows).
    pub fn raw(&self) -> RawSock {
        sys::raw(&self.0)
    }

    /// For the reactor's poller and for socket options.
    pub fn inner(&self) -> &socket2::Socket {
        &self.0
    }

    /// Waits up to `timeout` for the socket to become readable; true when it is.
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        sys::wait_readable(&self.0, timeout)
    }

    /// Reads without consuming: the bytes stay queued (the proxy exchange).
    pub fn peek(&self, buf: &mut [u8], wait: Wait) -> io::Result<usize> {
        sys::peek(&self.0, buf, wait)
    }
}

impl RawIo for Socket {
    fn read(&self, buf: &mut [u8], wait: Wait) -> io::Result<usize> {
        sys::recv(&self.0, buf, wait)
    }

    fn read_uninit(&self, buf: &mut [MaybeUninit<u8>], wait: Wait) -> io::Result<usize> {
        sys::recv_uninit(&self.0, buf, wait)
    }

    fn write(&self, buf: &[u8], wait: Wait) -> io::Result<usize> {
        sys::send(&self.0, buf, wait)
    }

    fn shutdown(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// A connected loopback TCP pair for tests: our end in the engine's mode, and the peer's
/// as a plain blocking std stream.
#[cfg(test)]
pub fn test_pair() -> (Socket, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (theirs, _) = listener.accept().unwrap();
    ours.set_nodelay(true).unwrap();
    theirs.set_nodelay(true).unwrap();
    (super::tcp::finish_socket(socket2::Socket::from(ours)).unwrap(), theirs)
}
