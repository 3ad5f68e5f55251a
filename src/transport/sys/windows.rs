//! Windows: sockets stay non-blocking. A read or write that may wait one `SLICE` tries once,
//! and when the socket has nothing (WSAEWOULDBLOCK) waits for it with WSAPoll for at most
//! the slice, then tries once more; so every wait still wakes up each slice to let the
//! caller check for Ctrl-C. (SO_RCVTIMEO exists on Windows, but a receive that times out
//! leaves the socket in an undefined state there: "the socket state is indeterminate, and
//! should not be used", in the documentation of SO_RCVTIMEO.) There is no MSG_DONTWAIT and no
//! need for it: a read that must not wait is the plain attempt.

use std::io;
use std::mem::MaybeUninit;
use std::os::windows::io::{AsRawSocket, BorrowedSocket, RawSocket};
use std::time::Duration;

use socket2::{SockRef, Socket};
use windows_sys::Win32::Networking::WinSock;

use crate::transport::socket::Wait;

/// A socket as the OS names it (a SOCKET handle): what `fileno()` returns.
pub type RawSock = RawSocket;

pub fn raw(s: &Socket) -> RawSock {
    s.as_raw_socket()
}

fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: initialised bytes are valid `MaybeUninit<u8>`, and the callee only writes
    // initialised bytes into them.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

/// One attempt, then, for `Wait::Slice`, one more after the socket became ready within the
/// slice.
fn attempt<T>(s: &Socket, wait: Wait, events: WinSock::WSAPOLL_EVENT_FLAGS, mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    match op() {
        Err(e) if wait == Wait::Slice && e.kind() == io::ErrorKind::WouldBlock => {
            if poll(raw(s), events, crate::transport::SLICE)? {
                op()
            } else {
                Err(e)
            }
        }
        other => other,
    }
}

pub fn recv(s: &Socket, buf: &mut [u8], wait: Wait) -> io::Result<usize> {
    attempt(s, wait, WinSock::POLLRDNORM, || s.recv(as_uninit(buf)))
}

pub fn recv_uninit(s: &Socket, buf: &mut [MaybeUninit<u8>], wait: Wait) -> io::Result<usize> {
    attempt(s, wait, WinSock::POLLRDNORM, || s.recv(buf))
}

pub fn peek(s: &Socket, buf: &mut [u8], wait: Wait) -> io::Result<usize> {
    attempt(s, wait, WinSock::POLLRDNORM, || s.peek(as_uninit(buf)))
}

pub fn send(s: &Socket, buf: &[u8], wait: Wait) -> io::Result<usize> {
    attempt(s, wait, WinSock::POLLWRNORM, || s.send(buf))
}

/// WSAPoll on one socket; true when any of `events` (or an error or hang-up) is reported.
fn poll(raw: RawSock, events: WinSock::WSAPOLL_EVENT_FLAGS, timeout: Duration) -> io::Result<bool> {
    let mut p = WinSock::WSAPOLLFD { fd: raw as WinSock::SOCKET, events, revents: 0 };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let r = unsafe { WinSock::WSAPoll(&mut p, 1, ms) };
    if r < 0 {
        return Err(io::Error::from_raw_os_error(unsafe { WinSock::WSAGetLastError() }));
    }
    Ok(r > 0 && p.revents != 0)
}

/// Waits up to `timeout` for the socket to become readable (or hung up).
pub fn wait_readable(s: &Socket, timeout: Duration) -> io::Result<bool> {
    poll(raw(s), WinSock::POLLRDNORM, timeout)
}

/// Waits up to `timeout` for the socket to become writable (a connect to finish; a failed
/// connect is reported as an error, which `take_error` then reads).
pub fn wait_writable(s: &Socket, timeout: Duration) -> io::Result<bool> {
    poll(raw(s), WinSock::POLLWRNORM, timeout)
}

/// Connects are non-blocking here, waited for with WSAPoll (see the Unix module).
pub const CONNECT_WAITS_ONE_SLICE: bool = false;

/// A TCP socket (no handle inheritance: socket2's default), non-blocking when `nonblocking`.
pub fn stream_socket(domain: socket2::Domain, nonblocking: bool) -> io::Result<Socket> {
    let s = Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if nonblocking {
        s.set_nonblocking(true)?;
    }
    Ok(s)
}

/// Not used here (`CONNECT_WAITS_ONE_SLICE` is false): sockets are non-blocking.
pub fn set_slice_timeouts(_s: &Socket, _slice: Duration) -> io::Result<()> {
    Ok(())
}

/// Waits up to `timeout` for a non-blocking connect to finish: None while it is under way,
/// then its outcome (SO_ERROR).
pub fn wait_connected(s: &Socket, timeout: Duration) -> io::Result<Option<io::Result<()>>> {
    if !wait_writable(s, timeout)? {
        return Ok(None);
    }
    Ok(Some(match s.take_error()? {
        Some(e) => Err(e),
        None => Ok(()),
    }))
}

/// Readiness of a raw handle, for tests: readable, or writable when `write` is set.
#[cfg(test)]
pub fn poll_raw(raw: RawSock, write: bool, timeout: Duration) -> bool {
    poll(raw, if write { WinSock::POLLWRNORM } else { WinSock::POLLRDNORM }, timeout).unwrap()
}

/// A connected socket in the engine's mode: non-blocking (waits are WSAPoll slices).
pub fn prepare(s: &Socket, _slice: Duration) -> io::Result<()> {
    s.set_nonblocking(true)
}

/// `setsockopt` with the caller's level, option and value bytes (the `sockopt=` tuples,
/// with Windows' own constants, as Python's `socket` module gives them there).
pub fn setsockopt(s: &Socket, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
    let r = unsafe { WinSock::setsockopt(s.as_raw_socket() as WinSock::SOCKET, level, name, value.as_ptr(), value.len() as i32) };
    if r != 0 {
        Err(io::Error::from_raw_os_error(unsafe { WinSock::WSAGetLastError() }))
    } else {
        Ok(())
    }
}

/// A socket of our own for the caller's connected socket `raw` (WSADuplicateSocket, not
/// inheritable), so the caller's object stays valid and independent.
pub fn adopt(raw: RawSock) -> io::Result<Socket> {
    if raw == WinSock::INVALID_SOCKET as RawSock {
        return Err(io::Error::from_raw_os_error(WinSock::WSAENOTSOCK));
    }
    // SAFETY: borrowed only for the duplication; the caller keeps `raw` open meanwhile.
    let s = unsafe { BorrowedSocket::borrow_raw(raw) };
    SockRef::from(&s).try_clone()
}

/// A non-blocking connect that is under way (WSAEWOULDBLOCK).
pub fn connect_in_progress(e: &io::Error) -> bool {
    e.raw_os_error() == Some(WinSock::WSAEWOULDBLOCK) || e.kind() == io::ErrorKind::WouldBlock
}

/// Windows has no fork(): nothing to register.
pub fn at_fork(_prepare: Option<extern "C" fn()>, _parent: Option<extern "C" fn()>, _child: Option<extern "C" fn()>) {}

/// The calling thread, as Python's `threading.get_ident()` names it (GetCurrentThreadId).
pub fn thread_ident() -> u64 {
    u64::from(unsafe { windows_sys::Win32::System::Threading::GetCurrentThreadId() })
}
