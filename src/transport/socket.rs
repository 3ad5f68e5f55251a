//! A connected socket as the transports see it: reads and writes that either return at once
//! (`Wait::Now`) or wait at most one `SLICE` (`Wait::Slice`), so every blocking loop above can
//! check for Ctrl-C and its deadline between slices.
//!
//! `RawIo` is what a `Stream` needs from the bytes below it; the socket implements it, and so
//! do the in-memory pipes of the transport's property tests.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::sys;

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

/// An owned, connected stream socket, blocking with `SLICE` timeouts (see `tcp::finish_socket`).
#[derive(Debug)]
pub struct Socket(OwnedFd);

impl Socket {
    pub fn new(fd: OwnedFd) -> Self {
        Socket(fd)
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Waits up to `timeout` for the socket to become readable; true when it is.
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        Ok(sys::poll(self.fd(), libc::POLLIN, timeout)? != 0)
    }
}

impl RawIo for Socket {
    fn read(&self, buf: &mut [u8], wait: Wait) -> io::Result<usize> {
        sys::recv(self.fd(), buf, wait == Wait::Now)
    }

    fn read_uninit(&self, buf: &mut [MaybeUninit<u8>], wait: Wait) -> io::Result<usize> {
        sys::recv_uninit(self.fd(), buf, wait == Wait::Now)
    }

    fn write(&self, buf: &[u8], wait: Wait) -> io::Result<usize> {
        sys::send(self.fd(), buf, wait == Wait::Now)
    }

    fn shutdown(&self) {
        sys::shutdown(self.fd());
    }
}
