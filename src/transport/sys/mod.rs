//! The OS layer, as mio's and socket2's `sys` modules keep it: what differs between Unix and
//! Windows in socket I/O lives here, one file per platform behind the same functions, and
//! the rest of the crate names no OS (`libc` and `windows-sys` are used nowhere else).
//!
//! | concern | Unix (`unix.rs`) | Windows (`windows.rs`) |
//! |---|---|---|
//! | a read or write that waits one `SLICE` | blocking socket, SO_RCVTIMEO/SO_SNDTIMEO of one slice | non-blocking socket, WSAPoll for one slice, then one more attempt |
//! | a read or write that must not wait | MSG_DONTWAIT | the socket is non-blocking anyway |
//! | no SIGPIPE on a write to a closed peer | MSG_NOSIGNAL (SO_NOSIGPIPE on Apple, set by socket2 and in `prepare`) | no signals |
//! | waiting for readiness of one socket | poll(2) | WSAPoll |
//! | adopting the caller's socket (`socket=`) | fcntl(F_DUPFD_CLOEXEC) (socket2's `try_clone`) | WSADuplicateSocket (socket2's `try_clone`) |
//! | a non-blocking connect under way | EINPROGRESS | WSAEWOULDBLOCK |
//! | fork | pthread_atfork | no fork: nothing to do |
//! | the calling thread's id, as Python's `threading.get_ident()` | pthread_self | GetCurrentThreadId |
//!
//! The readiness handle behind `ws.sock.fileno()` has its own module (`transport::readiness`),
//! and the reactor's poller is the `polling` crate (epoll, kqueue, IOCP).

use std::io;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// True for the errors that mean "nothing now" (a non-blocking attempt, or a slice that
/// elapsed: EAGAIN, or ETIMEDOUT/WSAETIMEDOUT from a socket timeout).
pub fn is_would_block(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// An error that makes `tcp::connect` try the next address, as the reference does.
pub fn is_unreachable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable
    )
}
