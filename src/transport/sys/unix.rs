//! Unix (Linux, macOS, the BSDs): sockets are blocking with SO_RCVTIMEO/SO_SNDTIMEO of one
//! `SLICE`, so a waiting read is one `recv(2)` that wakes up at least every slice to let the
//! caller check for Ctrl-C; a read that must not wait adds MSG_DONTWAIT.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::transport::socket::Wait;

/// A socket as the OS names it: what `fileno()` returns.
pub type RawSock = RawFd;

/// No SIGPIPE when the peer is gone: MSG_NOSIGNAL, or SO_NOSIGPIPE on the socket where the
/// flag does not exist (Apple; socket2 sets it on the sockets it creates, `prepare` on the
/// others).
#[cfg(not(target_vendor = "apple"))]
const NOSIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
const NOSIGNAL: libc::c_int = 0;

pub fn raw(s: &Socket) -> RawSock {
    s.as_raw_fd()
}

fn cvt(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

fn flags(wait: Wait) -> libc::c_int {
    match wait {
        Wait::Now => libc::MSG_DONTWAIT,
        Wait::Slice => 0,
    }
}

/// `recv(2)`; EINTR is retried.
pub fn recv(s: &Socket, buf: &mut [u8], wait: Wait) -> io::Result<usize> {
    loop {
        let r = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags(wait)) };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `recv(2)` into uninitialised memory (the spare capacity of a Vec); returns how many
/// bytes it initialised. EINTR is returned, not retried: the caller checks for Ctrl-C.
pub fn recv_uninit(s: &Socket, buf: &mut [MaybeUninit<u8>], wait: Wait) -> io::Result<usize> {
    // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
    cvt(unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags(wait)) })
}

/// `recv(2)` with MSG_PEEK: the bytes stay queued. EINTR is retried.
pub fn peek(s: &Socket, buf: &mut [u8], wait: Wait) -> io::Result<usize> {
    loop {
        let r = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK | flags(wait)) };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `send(2)` without SIGPIPE. EINTR is retried.
pub fn send(s: &Socket, buf: &[u8], wait: Wait) -> io::Result<usize> {
    loop {
        let r = unsafe { libc::send(s.as_raw_fd(), buf.as_ptr().cast(), buf.len(), NOSIGNAL | flags(wait)) };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// poll(2) on one socket: the events reported (`events`, or an error or hang-up), 0 on
/// timeout or EINTR.
fn poll_events(fd: RawFd, events: libc::c_short, timeout: Duration) -> io::Result<libc::c_short> {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(if r > 0 { p.revents } else { 0 })
}

/// poll(2) on one socket; true when any of `events` (or an error or hang-up) is reported,
/// false on timeout or EINTR.
fn poll(fd: RawFd, events: libc::c_short, timeout: Duration) -> io::Result<bool> {
    Ok(poll_events(fd, events, timeout)? != 0)
}

/// Readiness of a raw handle, for tests: readable, or writable when `write` is set.
#[cfg(test)]
pub fn poll_raw(raw: RawSock, write: bool, timeout: Duration) -> bool {
    poll(raw, if write { libc::POLLOUT } else { libc::POLLIN }, timeout).unwrap()
}

/// Waits up to `timeout` for the socket to become readable (or hung up).
pub fn wait_readable(s: &Socket, timeout: Duration) -> io::Result<bool> {
    poll(s.as_raw_fd(), libc::POLLIN, timeout)
}

/// Whether a blocking `connect(2)` waits at most SO_SNDTIMEO (then fails with EINPROGRESS,
/// the attempt going on) and returns EINTR on a signal: Linux's does. There a connect is
/// made on the socket already in the engine's mode (blocking, one-slice timeouts): a
/// loopback or LAN connect then completes inside the one call, where a non-blocking one
/// costs a poll(2) and two mode switches more (about 15 us of system time per connection
/// on loopback here). Elsewhere connects are non-blocking, waited for with poll(2).
pub const CONNECT_WAITS_ONE_SLICE: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// A TCP socket, close-on-exec; non-blocking from its creation when `nonblocking` (one
/// system call where `socket(2)` takes SOCK_NONBLOCK, not three).
pub fn stream_socket(domain: Domain, nonblocking: bool) -> io::Result<Socket> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let ty = if nonblocking { Type::STREAM.nonblocking() } else { Type::STREAM };
        Socket::new(domain, ty, Some(Protocol::TCP))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        if nonblocking {
            s.set_nonblocking(true)?;
        }
        Ok(s)
    }
}

/// Waits up to `timeout` for a non-blocking connect to finish: None while it is under way,
/// then its outcome. Linux reports a failed connect with POLLERR/POLLHUP beside POLLOUT, so
/// a bare POLLOUT is a success without asking for SO_ERROR; elsewhere SO_ERROR is asked.
pub fn wait_connected(s: &Socket, timeout: Duration) -> io::Result<Option<io::Result<()>>> {
    let revents = poll_events(s.as_raw_fd(), libc::POLLOUT, timeout)?;
    if revents == 0 {
        return Ok(None);
    }
    if cfg!(any(target_os = "linux", target_os = "android")) && revents == libc::POLLOUT {
        return Ok(Some(Ok(())));
    }
    Ok(Some(match s.take_error()? {
        Some(e) => Err(e),
        None => Ok(()),
    }))
}

/// Clears O_NONBLOCK with one `ioctl(FIONBIO)` (socket2's `set_nonblocking` reads the flags
/// with `fcntl` first: two calls).
fn set_blocking(s: &Socket) -> io::Result<()> {
    let mut off: libc::c_int = 0;
    if unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONBIO, &mut off) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A connected socket in the engine's mode: blocking, with SO_RCVTIMEO/SO_SNDTIMEO of one
/// slice so every wait wakes up to check for Ctrl-C.
pub fn prepare(s: &Socket, slice: Duration) -> io::Result<()> {
    set_blocking(s)?;
    set_slice_timeouts(s, slice)?;
    #[cfg(target_vendor = "apple")]
    s.set_nosigpipe(true)?;
    Ok(())
}

/// SO_RCVTIMEO and SO_SNDTIMEO of one slice: a blocking call returns within it.
pub fn set_slice_timeouts(s: &Socket, slice: Duration) -> io::Result<()> {
    s.set_read_timeout(Some(slice))?;
    s.set_write_timeout(Some(slice))
}

/// `setsockopt(2)` with the caller's level, option and value bytes (the `sockopt=` tuples).
pub fn setsockopt(s: &Socket, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
    let r = unsafe { libc::setsockopt(s.as_raw_fd(), level, name, value.as_ptr().cast(), value.len() as libc::socklen_t) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A socket of our own for the caller's connected socket `raw` (duplicated, close-on-exec),
/// so the caller's object stays valid and independent.
pub fn adopt(raw: RawSock) -> io::Result<Socket> {
    if raw < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: borrowed only for the duplication; the caller keeps `raw` open meanwhile.
    let fd = unsafe { BorrowedFd::borrow_raw(raw) };
    SockRef::from(&fd).try_clone()
}

/// A non-blocking connect that is under way (EINPROGRESS).
pub fn connect_in_progress(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINPROGRESS)
}

/// Registers fork handlers (pthread_atfork): `prepare` before fork() in the forking thread,
/// `parent` and `child` after it in each process.
pub fn at_fork(prepare: Option<extern "C" fn()>, parent: Option<extern "C" fn()>, child: Option<extern "C" fn()>) {
    let f = |h: Option<extern "C" fn()>| h.map(|h| h as unsafe extern "C" fn());
    unsafe {
        libc::pthread_atfork(f(prepare), f(parent), f(child));
    }
}

/// The calling thread, as Python's `threading.get_ident()` names it (pthread_self).
pub fn thread_ident() -> u64 {
    unsafe { libc::pthread_self() as usize as u64 }
}
