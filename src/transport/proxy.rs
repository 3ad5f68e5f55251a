//! Proxies spoken over a connected socket before TLS, for the native engine: drives the
//! sans-I/O `protocol::proxy::Negotiation` over the socket with a deadline and interrupt
//! checks between wait slices, like tcp.rs. Every failure of the proxy exchange is
//! `NetError::Proxy` (WebSocketProxyException in Python), except Ctrl-C; failing to reach the
//! proxy at all stays an OS error, as it is for a direct connection.

use std::net::SocketAddr;
use std::time::Duration;

use super::socket::{RawIo, Socket, Wait};
use super::{sys, tcp, Deadline, Interrupt, NetError};
use crate::protocol::proxy::{self as negotiation, Negotiation, ProxyError, Target};
pub use crate::protocol::proxy::ProxyKind;

/// A proxy to tunnel through.
#[derive(Debug, Clone)]
pub struct ProxySpec {
    pub kind: ProxyKind,
    pub host: String,
    pub port: u16,
    /// `(user, password)`: Basic auth for HTTP, the user id for SOCKS4, RFC 1929 for SOCKS5.
    pub auth: Option<(String, String)>,
    /// Limit for reaching the proxy and the proxy exchange; `None` for no limit.
    pub timeout: Option<Duration>,
}

/// Peeked at once while reading the proxy's answer.
const PEEK: usize = 4096;

impl From<ProxyError> for NetError {
    fn from(e: ProxyError) -> Self {
        NetError::Proxy(e.0)
    }
}

/// Talks to the proxy that `sock` is connected to until it tunnels to `host:port`.
/// `trace(title, text)` receives the HTTP CONNECT request and response head, for
/// `enableTrace`.
pub fn tunnel(
    sock: &Socket,
    proxy: &ProxySpec,
    host: &str,
    port: u16,
    deadline: Deadline,
    interrupt: Interrupt<'_>,
    trace: &dyn Fn(&str, &str),
) -> Result<(), NetError> {
    let io = Io { sock, deadline, interrupt, what: proxy.kind.name() };
    let target = match negotiation::target_for(proxy.kind, host) {
        Some(t) => t,
        None => resolve_target(proxy.kind, host, port)?,
    };
    let mut n = Negotiation::start(proxy.kind, target, port, proxy.auth.clone())?;
    if proxy.kind == ProxyKind::Http {
        trace("request header", n.http_request());
    }
    let mut peek = vec![0u8; PEEK];
    while !n.is_done() {
        let out = n.data_to_send();
        if !out.is_empty() {
            io.send_all(&out)?;
        }
        // Peek, let the negotiation take what belongs to the answer, consume only that.
        let want = if proxy.kind == ProxyKind::Http { PEEK } else { n.bytes_wanted() };
        let got = io.recv_some(&mut peek[..want], true)?;
        let used = n.receive(&peek[..got])?;
        io.consume(used)?;
    }
    if proxy.kind == ProxyKind::Http {
        trace("response header", String::from_utf8_lossy(n.http_response_head()).trim_end());
    }
    Ok(())
}

/// Resolves a SOCKS target the proxy does not resolve itself (SOCKS4 needs IPv4).
fn resolve_target(kind: ProxyKind, host: &str, port: u16) -> Result<Target, NetError> {
    let addrs: Vec<SocketAddr> = tcp::resolve(host, port)?;
    let pick = if negotiation::needs_ipv4(kind) { addrs.iter().find(|a| a.is_ipv4()) } else { addrs.first() };
    match pick {
        Some(a) => Ok(Target::Ip(a.ip())),
        None => Err(negotiation::no_ipv4(host).into()),
    }
}

struct Io<'a> {
    sock: &'a Socket,
    deadline: Deadline,
    interrupt: Interrupt<'a>,
    what: &'static str,
}

impl Io<'_> {
    /// Between wait slices: Ctrl-C, then the deadline.
    fn wait_check(&self) -> Result<(), NetError> {
        if (self.interrupt)() {
            return Err(NetError::Interrupted);
        }
        if self.deadline.expired() {
            return Err(NetError::Proxy(format!("{} proxy: timed out", self.what)));
        }
        Ok(())
    }

    fn io_err(&self, e: std::io::Error) -> NetError {
        NetError::Proxy(format!("{} proxy: {e}", self.what))
    }

    fn eof(&self) -> NetError {
        NetError::Proxy(format!("{} proxy closed the connection", self.what))
    }

    fn send_all(&self, mut data: &[u8]) -> Result<(), NetError> {
        while !data.is_empty() {
            match self.sock.write(data, Wait::Slice) {
                Ok(n) => data = &data[n..],
                Err(e) if sys::is_would_block(&e) => self.wait_check()?,
                Err(e) => return Err(self.io_err(e)),
            }
        }
        Ok(())
    }

    /// One receive (or peek) of at most `buf.len()` bytes; waits for at least one.
    fn recv_some(&self, buf: &mut [u8], peek: bool) -> Result<usize, NetError> {
        loop {
            let r = if peek { self.sock.peek(buf, Wait::Slice) } else { self.sock.read(buf, Wait::Slice) };
            match r {
                Ok(0) => return Err(self.eof()),
                Ok(n) => return Ok(n),
                Err(e) if sys::is_would_block(&e) => self.wait_check()?,
                Err(e) => return Err(self.io_err(e)),
            }
        }
    }

    /// Consumes `n` bytes already peeked.
    fn consume(&self, mut n: usize) -> Result<(), NetError> {
        let mut sink = [0u8; PEEK];
        while n > 0 {
            n -= self.recv_some(&mut sink[..n.min(PEEK)], false)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy_msg(e: NetError) -> String {
        match e {
            NetError::Proxy(m) => m,
            other => panic!("not a proxy error: {other:?}"),
        }
    }

    #[test]
    fn local_resolution_for_socks4_is_ipv4() {
        assert_eq!(resolve_target(ProxyKind::Socks4, "localhost", 1).unwrap(), Target::Ip("127.0.0.1".parse().unwrap()));
    }

    /// The I/O half against a socketpair: an HTTP proxy answering 200 followed by tunnel
    /// bytes, which must stay unread.
    #[test]
    fn http_tunnel_reads_only_the_head() {
        use std::io::{Read, Write};
        let (client, mut server) = crate::transport::socket::test_pair();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            let n = server.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"CONNECT ws.example:80 HTTP/1.1\r\n"));
            // The head arrives in pieces; tunnel bytes come right behind it.
            server.write_all(b"HTTP/1.1 200 Connection est").unwrap();
            std::thread::sleep(Duration::from_millis(20));
            server.write_all(b"ablished\r\n\r").unwrap();
            std::thread::sleep(Duration::from_millis(20));
            server.write_all(b"\nTUNNEL").unwrap();
            server
        });
        let spec = ProxySpec { kind: ProxyKind::Http, host: "p".into(), port: 1, auth: None, timeout: None };
        tunnel(&client, &spec, "ws.example", 80, Deadline::after(Some(Duration::from_secs(5))), &|| false, &|_, _| {})
            .unwrap();
        let _server = t.join().unwrap();
        let mut rest = Vec::new();
        let mut buf = [0u8; 6];
        while rest.len() < 6 {
            match client.read(&mut buf[..6 - rest.len()], Wait::Slice) {
                Ok(n) => rest.extend_from_slice(&buf[..n]),
                Err(e) if sys::is_would_block(&e) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(rest, b"TUNNEL");
    }

    #[test]
    fn tunnel_timeout_is_a_proxy_error() {
        let (client, _server) = crate::transport::socket::test_pair();
        let spec = ProxySpec { kind: ProxyKind::Socks5, host: "p".into(), port: 1, auth: None, timeout: None };
        let err = tunnel(&client, &spec, "127.0.0.1", 1, Deadline::after(Some(Duration::from_millis(100))), &|| false, &|_, _| {})
            .unwrap_err();
        assert_eq!(proxy_msg(err), "SOCKS5 proxy: timed out");
    }
}
