//! Thin wrappers over the few libc calls the transports need.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

fn cvt(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// `recv(2)`; `dontwait` adds MSG_DONTWAIT. EINTR is retried.
pub fn recv(fd: RawFd, buf: &mut [u8], dontwait: bool) -> io::Result<usize> {
    let flags = if dontwait { libc::MSG_DONTWAIT } else { 0 };
    loop {
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `recv(2)` into uninitialised memory (the spare capacity of a Vec); returns how many
/// bytes it initialised. EINTR is returned, not retried: the caller checks for Ctrl-C.
pub fn recv_uninit(fd: RawFd, buf: &mut [std::mem::MaybeUninit<u8>], dontwait: bool) -> io::Result<usize> {
    let flags = if dontwait { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
    cvt(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
}

/// `recv(2)` with MSG_PEEK: the bytes stay queued. EINTR is retried.
pub fn peek(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK) };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `send(2)` with MSG_NOSIGNAL (no SIGPIPE); `dontwait` adds MSG_DONTWAIT.
pub fn send(fd: RawFd, buf: &[u8], dontwait: bool) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | if dontwait { libc::MSG_DONTWAIT } else { 0 };
    loop {
        let r = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Waits for `events` on `fd`; returns the revents (0 on timeout).
pub fn poll(fd: RawFd, events: i16, timeout: Duration) -> io::Result<i16> {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(if r == 0 { 0 } else { p.revents })
}

pub fn is_would_block(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Sets SO_RCVTIMEO and SO_SNDTIMEO so blocking calls wake up regularly.
pub fn set_io_timeouts(fd: RawFd, t: Duration) -> io::Result<()> {
    let tv = libc::timeval { tv_sec: t.as_secs() as libc::time_t, tv_usec: t.subsec_micros() as libc::suseconds_t };
    for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        setsockopt_bytes(fd, libc::SOL_SOCKET, opt, unsafe {
            std::slice::from_raw_parts((&tv as *const libc::timeval).cast(), std::mem::size_of::<libc::timeval>())
        })?;
    }
    Ok(())
}

pub fn setsockopt_bytes(fd: RawFd, level: i32, opt: i32, value: &[u8]) -> io::Result<()> {
    let r = unsafe { libc::setsockopt(fd, level, opt, value.as_ptr().cast(), value.len() as libc::socklen_t) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub fn setsockopt_int(fd: RawFd, level: i32, opt: i32, value: i32) -> io::Result<()> {
    setsockopt_bytes(fd, level, opt, &value.to_ne_bytes())
}

pub fn shutdown(fd: RawFd) {
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let new = if on { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
        if libc::fcntl(fd, libc::F_SETFL, new) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
