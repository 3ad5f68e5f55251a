//! TCP connect with a deadline and interrupt checks, and the socket options the reference
//! applies by default.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, TcpKeepalive};

use super::sys::{self, RawSock};
use super::{socket, Deadline, Interrupt, NetError};

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

pub fn apply_sockopts(sock: &Socket, opts: &[SockOpt]) -> std::io::Result<()> {
    for o in opts {
        match &o.value {
            OptValue::Int(v) => sys::setsockopt(sock, o.level, o.name, &v.to_ne_bytes())?,
            OptValue::Bytes(b) => sys::setsockopt(sock, o.level, o.name, b)?,
        }
    }
    Ok(())
}

/// The reference's DEFAULT_SOCKET_OPTION: no Nagle, keepalive probing after 30 s idle, every
/// 10 s, 3 probes (each best effort: a system may refuse one, as older Windows refuse the
/// probe count).
fn apply_defaults(sock: &Socket) {
    let _ = sock.set_tcp_nodelay(true);
    let keepalive = TcpKeepalive::new().with_time(Duration::from_secs(30)).with_interval(Duration::from_secs(10));
    if sock.set_tcp_keepalive(&keepalive.clone().with_retries(3)).is_err() {
        let _ = sock.set_tcp_keepalive(&keepalive);
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
) -> Result<socket::Socket, NetError> {
    let mut last = None;
    for addr in addrs {
        match connect_one(addr, sockopts, deadline, interrupt) {
            Ok(sock) => return Ok(sock),
            Err(NetError::Io(e)) if sys::is_unreachable(&e) => last = Some(NetError::Io(e)),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| NetError::Address("no address to connect to".into())))
}

fn connect_one(addr: &SocketAddr, sockopts: &[SockOpt], deadline: Deadline, interrupt: Interrupt<'_>) -> Result<socket::Socket, NetError> {
    // Where a blocking connect returns within SO_SNDTIMEO, the socket is put in the engine's
    // mode first and connects in one call when it can (see `sys::CONNECT_WAITS_ONE_SLICE`);
    // unless the deadline is nearer than one slice, which that call could overrun.
    let in_mode = sys::CONNECT_WAITS_ONE_SLICE && deadline.slice() >= super::SLICE;
    // socket2 sets close-on-exec (Unix) or no handle inheritance (Windows), and SO_NOSIGPIPE
    // on Apple systems.
    let sock = sys::stream_socket(Domain::for_address(*addr), !in_mode).map_err(NetError::Io)?;
    apply_defaults(&sock);
    apply_sockopts(&sock, sockopts).map_err(NetError::Io)?;
    if in_mode {
        sys::set_slice_timeouts(&sock, super::SLICE).map_err(NetError::Io)?;
    }
    match sock.connect(&SockAddr::from(*addr)) {
        Ok(()) => {}
        // Under way: a non-blocking connect, or a blocking one past its slice or cut short
        // by a signal (the attempt goes on in both cases).
        Err(e) if sys::connect_in_progress(&e) || (in_mode && e.kind() == std::io::ErrorKind::Interrupted) => loop {
            if interrupt() {
                return Err(NetError::Interrupted);
            }
            if deadline.expired() {
                return Err(NetError::ConnectTimeout);
            }
            if let Some(outcome) = sys::wait_connected(&sock, deadline.slice()).map_err(NetError::Io)? {
                outcome.map_err(NetError::Io)?;
                break;
            }
        },
        Err(e) => return Err(NetError::Io(e)),
    }
    if in_mode {
        Ok(socket::Socket::new(sock))
    } else {
        finish_socket(sock)
    }
}

/// Puts a connected socket in the mode the engine expects (see `sys::prepare`): every wait
/// returns within one slice, so it can check for interrupts.
pub fn finish_socket(sock: Socket) -> Result<socket::Socket, NetError> {
    sys::prepare(&sock, super::SLICE).map_err(NetError::Io)?;
    Ok(socket::Socket::new(sock))
}

/// Adopts an already connected socket given by the user (`socket=`); it is duplicated so
/// the user's object stays valid and independent.
pub fn adopt(raw: RawSock) -> Result<socket::Socket, NetError> {
    let dup = sys::adopt(raw).map_err(NetError::Io)?;
    let is_tcp = dup.local_addr().is_ok_and(|a| a.is_ipv4() || a.is_ipv6());
    if is_tcp {
        let _ = dup.set_tcp_nodelay(true);
    }
    finish_socket(dup)
}
