//! The handle behind `ws.sock.fileno()`: Python code select()s or poll()s it, so it must be
//! readable exactly while a `recv*` would not block, and always writable (kubernetes'
//! port-forward puts the WebSocket in select()'s write list whenever it has data to send,
//! and must not hang there). One type, a file per platform:
//!
//! - Linux: an eventfd (one descriptor, written to signal, read to clear);
//! - macOS and the other Unix systems: a Unix socketpair (a pipe would do for readability,
//!   but the read end of a pipe is never writable, which would hang that select());
//! - Windows: a connected loopback TCP pair (select() there accepts only sockets).
//!
//! `Conn` calls `set` only when the state changes.

use std::io;

use super::sys::RawSock;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
use linux as imp;

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
mod unix;
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
use unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

pub struct Readiness(imp::Handle);

impl Readiness {
    /// A new handle, not readable.
    pub fn new() -> io::Result<Readiness> {
        imp::Handle::new().map(Readiness)
    }

    /// What Python select()s: a file descriptor, or a SOCKET on Windows.
    pub fn raw(&self) -> RawSock {
        self.0.raw()
    }

    /// Makes the handle readable (`true`) or not (`false`); called on changes only.
    pub fn set(&self, ready: bool) {
        self.0.set(ready)
    }
}

#[cfg(test)]
mod tests {
    use super::Readiness;
    use crate::transport::sys;
    use std::time::Duration;

    fn readable(r: &Readiness) -> bool {
        sys::poll_raw(r.raw(), false, Duration::ZERO)
    }

    #[test]
    fn readable_exactly_while_set_and_always_writable() {
        let r = Readiness::new().unwrap();
        assert!(!readable(&r));
        assert!(sys::poll_raw(r.raw(), true, Duration::ZERO), "writable");
        for _ in 0..3 {
            r.set(true);
            assert!(readable(&r));
            assert!(sys::poll_raw(r.raw(), true, Duration::ZERO), "writable while readable");
            r.set(false);
            assert!(!readable(&r));
        }
    }
}
