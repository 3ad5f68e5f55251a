//! TCP connect with a deadline and interrupt checks, and the socket options the reference
//! applies by default.

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{sys, Deadline, Interrupt, NetError};

/// A user socket option: `(level, option, value)`.
#[derive(Debug, Clone)]
pub enum OptValue {
    Int(i32),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct SockOpt {
    pub level: i32,
    pub name: i32,
    pub value: OptValue,
}

pub fn apply_sockopts(fd: RawFd, opts: &[SockOpt]) -> std::io::Result<()> {
    for o in opts {
        match &o.value {
            OptValue::Int(v) => sys::setsockopt_int(fd, o.level, o.name, *v)?,
            OptValue::Bytes(b) => sys::setsockopt_bytes(fd, o.level, o.name, b)?,
        }
    }
    Ok(())
}

/// The reference's DEFAULT_SOCKET_OPTION: no Nagle, keepalive probing after 30 s.
fn apply_defaults(fd: RawFd, is_tcp: bool) {
    if is_tcp {
        let _ = sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
        let _ = sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
        let _ = sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 30);
        let _ = sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10);
        let _ = sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
    }
}

/// Resolves `host:port` (getaddrinfo, in order, like the reference).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, NetError> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    match (h, port).to_socket_addrs() {
        Ok(it) => {
            let v: Vec<_> = it.collect();
            if v.is_empty() {
                Err(NetError::Address(format!("[Errno -2] Name or service not known: {host}")))
            } else {
                Ok(v)
            }
        }
        Err(e) => Err(NetError::Address(format!("{e}"))),
    }
}

/// Connects to the first address that accepts; like the reference, it moves on to the next
/// address only when one refuses or is unreachable.
pub fn connect(
    addrs: &[SocketAddr],
    sockopts: &[SockOpt],
    deadline: Deadline,
    interrupt: Interrupt<'_>,
) -> Result<OwnedFd, NetError> {
    let mut last = None;
    for addr in addrs {
        match connect_one(addr, sockopts, deadline, interrupt) {
            Ok(fd) => return Ok(fd),
            Err(NetError::Io(e))
                if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED) | Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH)) =>
            {
                last = Some(NetError::Io(e));
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| NetError::Address("no address to connect to".into())))
}

fn connect_one(addr: &SocketAddr, sockopts: &[SockOpt], deadline: Deadline, interrupt: Interrupt<'_>) -> Result<OwnedFd, NetError> {
    let sock = Socket::new(Domain::for_address(*addr), Type::STREAM.cloexec(), Some(Protocol::TCP)).map_err(NetError::Io)?;
    let fd = sock.as_raw_fd();
    apply_defaults(fd, true);
    apply_sockopts(fd, sockopts).map_err(NetError::Io)?;
    sock.set_nonblocking(true).map_err(NetError::Io)?;
    match sock.connect(&SockAddr::from(*addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => loop {
            if interrupt() {
                return Err(NetError::Interrupted);
            }
            if deadline.expired() {
                return Err(NetError::ConnectTimeout);
            }
            let rev = sys::poll(fd, libc::POLLOUT, deadline.slice()).map_err(NetError::Io)?;
            if rev != 0 {
                if let Some(err) = sock.take_error().map_err(NetError::Io)? {
                    return Err(NetError::Io(err));
                }
                break;
            }
        },
        Err(e) => return Err(NetError::Io(e)),
    }
    finish_socket(sock.into_raw_fd())
}

/// Puts a connected socket in the mode the engine expects: blocking, with short
/// SO_RCVTIMEO/SO_SNDTIMEO slices so waits can check for interrupts.
pub fn finish_socket(fd: RawFd) -> Result<OwnedFd, NetError> {
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    sys::set_nonblocking(fd, false).map_err(NetError::Io)?;
    sys::set_io_timeouts(fd, super::SLICE).map_err(NetError::Io)?;
    Ok(owned)
}

/// Adopts an already connected socket given by the user (`socket=`); the fd is duplicated so
/// the user's object stays valid and independent.
pub fn adopt(fd: RawFd) -> Result<OwnedFd, NetError> {
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(NetError::Io(std::io::Error::last_os_error()));
    }
    let is_tcp = unsafe {
        let mut domain: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        libc::getsockopt(dup, libc::SOL_SOCKET, libc::SO_DOMAIN, (&mut domain as *mut libc::c_int).cast(), &mut len) == 0
            && (domain == libc::AF_INET || domain == libc::AF_INET6)
    };
    if is_tcp {
        let _ = sys::setsockopt_int(dup, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    }
    finish_socket(dup)
}
