//! Proxies spoken over a connected socket before TLS: HTTP CONNECT (Basic auth), SOCKS4,
//! SOCKS4a, SOCKS5 and SOCKS5h (no auth or user/password).
//!
//! The byte formats are built and checked by pure functions (tested below without sockets);
//! `tunnel` does the I/O, with a deadline and interrupt checks between wait slices, like
//! tcp.rs. Every failure of the proxy exchange is `NetError::Proxy` (WebSocketProxyException
//! in Python), except Ctrl-C; failing to reach the proxy at all stays an OS error, as it is
//! for a direct connection.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::time::Duration;

use base64::Engine as _;

use super::{sys, tcp, Deadline, Interrupt, NetError};

/// Which protocol the proxy speaks. The `a`/`h` variants let the proxy resolve the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Http,
    Socks4,
    Socks4a,
    Socks5,
    Socks5h,
}

impl ProxyKind {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "http" => ProxyKind::Http,
            "socks4" => ProxyKind::Socks4,
            "socks4a" => ProxyKind::Socks4a,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ProxyKind::Http => "HTTP",
            ProxyKind::Socks4 | ProxyKind::Socks4a => "SOCKS4",
            ProxyKind::Socks5 | ProxyKind::Socks5h => "SOCKS5",
        }
    }
}

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

/// The largest CONNECT response head accepted.
const MAX_HTTP_HEAD: usize = 64 * 1024;

// ---- HTTP CONNECT ----------------------------------------------------------------------

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The CONNECT request, as websocket-client writes it (IPv6 hosts bracketed). As there,
/// `Proxy-Authorization` is sent only with a non-empty user, and `user` alone (no colon)
/// when the password is empty.
pub fn http_connect_request(host: &str, port: u16, auth: Option<&(String, String)>) -> String {
    let target = host_port(host, port);
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, password)) = auth {
        if !user.is_empty() {
            let mut cred = user.clone();
            if !password.is_empty() {
                cred.push(':');
                cred.push_str(password);
            }
            let b64 = base64::engine::general_purpose::STANDARD.encode(cred.as_bytes());
            req.push_str(&format!("Proxy-Authorization: Basic {b64}\r\n"));
        }
    }
    req.push_str("\r\n");
    req
}

/// Where the head of an HTTP response ends (just past the blank line), if it does.
pub fn http_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The status of a complete CONNECT response head; only 200 opens the tunnel.
pub fn http_connect_status(head: &[u8]) -> Result<u16, NetError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(NetError::Proxy("incomplete CONNECT response from proxy".into())),
        Err(e) => {
            let line = String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or_default());
            return Err(NetError::Proxy(format!("Invalid status line from proxy ({e}): {:?}", line.trim_end())));
        }
    }
    let status = resp.code.unwrap_or(0);
    if status != 200 {
        return Err(NetError::Proxy(format!("failed CONNECT via proxy status: {status}")));
    }
    Ok(status)
}

// ---- SOCKS4 / SOCKS4a ------------------------------------------------------------------

/// Where a SOCKS request sends the client: an address (resolved here) or a name the proxy
/// resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Ip(IpAddr),
    Name(String),
}

/// The SOCKS4 CONNECT request; a `Name` target uses the SOCKS4a form (IP 0.0.0.1, then
/// the name after the user id).
pub fn socks4_request(target: &Target, port: u16, user: &str) -> Result<Vec<u8>, NetError> {
    let mut req = vec![4u8, 1];
    req.extend_from_slice(&port.to_be_bytes());
    match target {
        Target::Ip(IpAddr::V4(ip)) => req.extend_from_slice(&ip.octets()),
        Target::Ip(IpAddr::V6(ip)) => {
            return Err(NetError::Proxy(format!("SOCKS4 proxies cannot connect to an IPv6 address ({ip})")))
        }
        Target::Name(_) => req.extend_from_slice(&[0, 0, 0, 1]),
    }
    req.extend_from_slice(user.as_bytes());
    req.push(0);
    if let Target::Name(name) = target {
        req.extend_from_slice(name.as_bytes());
        req.push(0);
    }
    Ok(req)
}

/// Checks the 8-byte SOCKS4 reply.
pub fn socks4_check_reply(reply: &[u8]) -> Result<(), NetError> {
    if reply.len() != 8 || reply[0] != 0 {
        return Err(NetError::Proxy("SOCKS4 proxy server sent invalid data".into()));
    }
    let why = match reply[1] {
        0x5A => return Ok(()),
        0x5B => "request rejected or failed",
        0x5C => "request rejected because the SOCKS server cannot connect to identd on the client",
        0x5D => "request rejected because the client program and identd report different user-ids",
        _ => "unknown error",
    };
    Err(NetError::Proxy(format!("SOCKS4 proxy: {why} (code {:#04x})", reply[1])))
}

// ---- SOCKS5 / SOCKS5h ------------------------------------------------------------------

const SOCKS5_NO_AUTH: u8 = 0x00;
const SOCKS5_USER_PASS: u8 = 0x02;
const SOCKS5_NO_METHOD: u8 = 0xFF;

fn socks5_has_credentials(auth: Option<&(String, String)>) -> bool {
    matches!(auth, Some((u, _)) if !u.is_empty())
}

/// The method-selection greeting: no auth, plus user/password when credentials are given.
pub fn socks5_greeting(auth: Option<&(String, String)>) -> Vec<u8> {
    if socks5_has_credentials(auth) {
        vec![5, 2, SOCKS5_NO_AUTH, SOCKS5_USER_PASS]
    } else {
        vec![5, 1, SOCKS5_NO_AUTH]
    }
}

/// Checks the proxy's method choice; returns true when it wants user/password.
pub fn socks5_check_method(reply: &[u8], auth: Option<&(String, String)>) -> Result<bool, NetError> {
    if reply.len() != 2 || reply[0] != 5 {
        return Err(NetError::Proxy("SOCKS5 proxy server sent invalid data".into()));
    }
    match reply[1] {
        SOCKS5_NO_AUTH => Ok(false),
        SOCKS5_USER_PASS if socks5_has_credentials(auth) => Ok(true),
        SOCKS5_USER_PASS => Err(NetError::Proxy("SOCKS5 proxy requires a user name and password (http_proxy_auth)".into())),
        SOCKS5_NO_METHOD => Err(NetError::Proxy("SOCKS5 proxy: no acceptable authentication method".into())),
        m => Err(NetError::Proxy(format!("SOCKS5 proxy chose an unsupported authentication method {m:#04x}"))),
    }
}

/// The RFC 1929 user/password request.
pub fn socks5_auth_request(user: &str, password: &str) -> Result<Vec<u8>, NetError> {
    if user.len() > 255 || password.len() > 255 {
        return Err(NetError::Proxy("SOCKS5 user name and password must be at most 255 bytes each".into()));
    }
    let mut req = vec![1u8, user.len() as u8];
    req.extend_from_slice(user.as_bytes());
    req.push(password.len() as u8);
    req.extend_from_slice(password.as_bytes());
    Ok(req)
}

pub fn socks5_check_auth(reply: &[u8]) -> Result<(), NetError> {
    if reply.len() != 2 {
        return Err(NetError::Proxy("SOCKS5 proxy server sent invalid data".into()));
    }
    if reply[1] != 0 {
        return Err(NetError::Proxy("SOCKS5 proxy authentication failed: user name or password rejected".into()));
    }
    Ok(())
}

/// The CONNECT request for `target:port`.
pub fn socks5_connect_request(target: &Target, port: u16) -> Result<Vec<u8>, NetError> {
    let mut req = vec![5u8, 1, 0];
    match target {
        Target::Ip(IpAddr::V4(ip)) => {
            req.push(1);
            req.extend_from_slice(&ip.octets());
        }
        Target::Ip(IpAddr::V6(ip)) => {
            req.push(4);
            req.extend_from_slice(&ip.octets());
        }
        Target::Name(name) => {
            if name.len() > 255 {
                return Err(NetError::Proxy("SOCKS5 host names must be at most 255 bytes".into()));
            }
            req.push(3);
            req.push(name.len() as u8);
            req.extend_from_slice(name.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    Ok(req)
}

/// Checks the first 4 bytes of the CONNECT reply; returns how many bytes of bound address
/// and port follow.
pub fn socks5_check_reply_head(head: &[u8]) -> Result<ReplyTail, NetError> {
    if head.len() != 4 || head[0] != 5 || head[2] != 0 {
        return Err(NetError::Proxy("SOCKS5 proxy server sent invalid data".into()));
    }
    let why = match head[1] {
        0 => {
            return match head[3] {
                1 => Ok(ReplyTail::Fixed(4 + 2)),
                4 => Ok(ReplyTail::Fixed(16 + 2)),
                3 => Ok(ReplyTail::NameThenPort),
                _ => Err(NetError::Proxy("SOCKS5 proxy server sent invalid data".into())),
            }
        }
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown error",
    };
    Err(NetError::Proxy(format!("SOCKS5 proxy: {why} (code {:#04x})", head[1])))
}

/// What follows a successful SOCKS5 reply head.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyTail {
    /// This many bytes (address + port).
    Fixed(usize),
    /// One length byte, that many name bytes, then the 2-byte port.
    NameThenPort,
}

// ---- I/O -------------------------------------------------------------------------------

/// Talks to the proxy that `fd` is connected to until it tunnels to `host:port`.
/// `trace(title, text)` receives the HTTP CONNECT request and response head, for
/// `enableTrace`.
pub fn tunnel(
    fd: RawFd,
    proxy: &ProxySpec,
    host: &str,
    port: u16,
    deadline: Deadline,
    interrupt: Interrupt<'_>,
    trace: &dyn Fn(&str, &str),
) -> Result<(), NetError> {
    let io = Io { fd, deadline, interrupt, what: proxy.kind.name() };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let auth = proxy.auth.as_ref();
    match proxy.kind {
        ProxyKind::Http => {
            let req = http_connect_request(host, port, auth);
            trace("request header", &req);
            io.send_all(req.as_bytes())?;
            let head = io.read_http_head()?;
            trace("response header", String::from_utf8_lossy(&head).trim_end());
            http_connect_status(&head)?;
        }
        ProxyKind::Socks4 | ProxyKind::Socks4a => {
            let target = target(host, port, proxy.kind == ProxyKind::Socks4a, true)?;
            let user = auth.map(|(u, _)| u.as_str()).unwrap_or("");
            io.send_all(&socks4_request(&target, port, user)?)?;
            socks4_check_reply(&io.recv_exact(8)?)?;
        }
        ProxyKind::Socks5 | ProxyKind::Socks5h => {
            io.send_all(&socks5_greeting(auth))?;
            if socks5_check_method(&io.recv_exact(2)?, auth)? {
                let (user, password) = auth.expect("checked above");
                io.send_all(&socks5_auth_request(user, password)?)?;
                socks5_check_auth(&io.recv_exact(2)?)?;
            }
            let target = target(host, port, proxy.kind == ProxyKind::Socks5h, false)?;
            io.send_all(&socks5_connect_request(&target, port)?)?;
            match socks5_check_reply_head(&io.recv_exact(4)?)? {
                ReplyTail::Fixed(n) => {
                    io.recv_exact(n)?;
                }
                ReplyTail::NameThenPort => {
                    let len = io.recv_exact(1)?[0] as usize;
                    io.recv_exact(len + 2)?;
                }
            }
        }
    }
    Ok(())
}

/// The SOCKS target: an IP literal as is; a name sent to the proxy (`remote_dns`) or
/// resolved here (SOCKS4 needs an IPv4 address).
fn target(host: &str, port: u16, remote_dns: bool, ipv4_only: bool) -> Result<Target, NetError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Target::Ip(ip));
    }
    if remote_dns {
        return Ok(Target::Name(host.to_string()));
    }
    let addrs: Vec<SocketAddr> = tcp::resolve(host, port)?;
    let pick = if ipv4_only { addrs.iter().find(|a| a.is_ipv4()) } else { addrs.first() };
    match pick {
        Some(a) => Ok(Target::Ip(a.ip())),
        None => Err(NetError::Proxy(format!("SOCKS4 proxies need an IPv4 address and {host} has none"))),
    }
}

struct Io<'a> {
    fd: RawFd,
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
            match sys::send(self.fd, data, false) {
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
            let r = if peek { sys::peek(self.fd, buf) } else { sys::recv(self.fd, buf, false) };
            match r {
                Ok(0) => return Err(self.eof()),
                Ok(n) => return Ok(n),
                Err(e) if sys::is_would_block(&e) => self.wait_check()?,
                Err(e) => return Err(self.io_err(e)),
            }
        }
    }

    fn recv_exact(&self, n: usize) -> Result<Vec<u8>, NetError> {
        let mut out = vec![0u8; n];
        let mut got = 0;
        while got < n {
            got += self.recv_some(&mut out[got..], false)?;
        }
        Ok(out)
    }

    /// The response head, and not one byte more: what follows belongs to the tunnel (bytes
    /// are peeked first, then only the head is consumed).
    fn read_http_head(&self) -> Result<Vec<u8>, NetError> {
        let mut head: Vec<u8> = Vec::with_capacity(256);
        let mut peek = vec![0u8; 4096];
        loop {
            let n = self.recv_some(&mut peek, true)?;
            // The terminator may straddle what was consumed and what is peeked.
            let from = head.len().saturating_sub(3);
            let mut joined = head[from..].to_vec();
            joined.extend_from_slice(&peek[..n]);
            let take = match http_head_end(&joined) {
                Some(end) => end - (head.len() - from),
                None => n,
            };
            let mut got = 0;
            while got < take {
                let start = head.len();
                head.resize(start + take - got, 0);
                let m = self.recv_some(&mut head[start..], false)?;
                head.truncate(start + m);
                got += m;
            }
            if http_head_end(&head).is_some() {
                return Ok(head);
            }
            if head.len() > MAX_HTTP_HEAD {
                return Err(NetError::Proxy(format!("CONNECT response head from proxy over {MAX_HTTP_HEAD} bytes")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn auth(u: &str, p: &str) -> (String, String) {
        (u.to_string(), p.to_string())
    }

    fn proxy_msg(e: NetError) -> String {
        match e {
            NetError::Proxy(m) => m,
            other => panic!("not a proxy error: {other:?}"),
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(ProxyKind::parse("HTTP"), Some(ProxyKind::Http));
        assert_eq!(ProxyKind::parse("socks4a"), Some(ProxyKind::Socks4a));
        assert_eq!(ProxyKind::parse("socks5h"), Some(ProxyKind::Socks5h));
        assert_eq!(ProxyKind::parse("https"), None);
    }

    #[test]
    fn http_request_plain_and_auth() {
        assert_eq!(
            http_connect_request("example.com", 443, None),
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
        assert_eq!(
            http_connect_request("::1", 8080, None),
            "CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"
        );
        let r = http_connect_request("h", 80, Some(&auth("user", "pa:ss")));
        assert!(r.ends_with("Proxy-Authorization: Basic dXNlcjpwYTpzcw==\r\n\r\n"), "{r}");
        // Empty password: user alone; empty user: no header (as websocket-client).
        assert!(http_connect_request("h", 80, Some(&auth("user", ""))).contains("Basic dXNlcg==\r\n"));
        assert!(!http_connect_request("h", 80, Some(&auth("", "x"))).contains("Proxy-Authorization"));
    }

    #[test]
    fn http_response() {
        assert_eq!(http_head_end(b"HTTP/1.1 200 OK\r\n\r\nrest"), Some(19));
        assert_eq!(http_head_end(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(http_connect_status(b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\n").unwrap(), 200);
        assert_eq!(http_connect_status(b"HTTP/1.0 200 OK\r\n\r\n").unwrap(), 200);
        assert_eq!(
            proxy_msg(http_connect_status(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").unwrap_err()),
            "failed CONNECT via proxy status: 407"
        );
        assert_eq!(
            proxy_msg(http_connect_status(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap_err()),
            "failed CONNECT via proxy status: 204"
        );
        assert!(proxy_msg(http_connect_status(b"SSH-2.0-OpenSSH\r\n\r\n").unwrap_err()).starts_with("Invalid status line"));
    }

    #[test]
    fn socks4_bytes() {
        let ip = Target::Ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(socks4_request(&ip, 8080, "").unwrap(), b"\x04\x01\x1f\x90\x7f\x00\x00\x01\x00");
        assert_eq!(socks4_request(&ip, 80, "bob").unwrap(), b"\x04\x01\x00\x50\x7f\x00\x00\x01bob\x00");
        let name = Target::Name("example.com".into());
        assert_eq!(socks4_request(&name, 443, "u").unwrap(), b"\x04\x01\x01\xbb\x00\x00\x00\x01u\x00example.com\x00");
        let v6 = Target::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert!(proxy_msg(socks4_request(&v6, 1, "").unwrap_err()).contains("IPv6"));
        assert!(socks4_check_reply(b"\x00\x5a\x00\x00\x00\x00\x00\x00").is_ok());
        assert!(proxy_msg(socks4_check_reply(b"\x00\x5b\x00\x00\x00\x00\x00\x00").unwrap_err()).contains("rejected"));
        assert!(proxy_msg(socks4_check_reply(b"HTTP/1.1").unwrap_err()).contains("invalid data"));
    }

    #[test]
    fn socks5_negotiation_bytes() {
        assert_eq!(socks5_greeting(None), b"\x05\x01\x00");
        assert_eq!(socks5_greeting(Some(&auth("u", "p"))), b"\x05\x02\x00\x02");
        assert_eq!(socks5_greeting(Some(&auth("", "p"))), b"\x05\x01\x00");
        assert!(!socks5_check_method(b"\x05\x00", None).unwrap());
        assert!(socks5_check_method(b"\x05\x02", Some(&auth("u", "p"))).unwrap());
        assert!(proxy_msg(socks5_check_method(b"\x05\x02", None).unwrap_err()).contains("requires a user name"));
        assert!(proxy_msg(socks5_check_method(b"\x05\xff", None).unwrap_err()).contains("no acceptable"));
        assert!(proxy_msg(socks5_check_method(b"\x04\x00", None).unwrap_err()).contains("invalid data"));
        assert_eq!(socks5_auth_request("user", "pw").unwrap(), b"\x01\x04user\x02pw");
        assert!(socks5_auth_request(&"x".repeat(256), "").is_err());
        assert!(socks5_check_auth(b"\x01\x00").is_ok());
        assert!(proxy_msg(socks5_check_auth(b"\x01\x01").unwrap_err()).contains("authentication failed"));
    }

    #[test]
    fn socks5_connect_bytes() {
        let v4 = Target::Ip(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(socks5_connect_request(&v4, 80).unwrap(), b"\x05\x01\x00\x01\x0a\x01\x02\x03\x00\x50");
        let v6 = Target::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let mut want = b"\x05\x01\x00\x04".to_vec();
        want.extend_from_slice(&[0; 15]);
        want.extend_from_slice(b"\x01\x01\xbb");
        assert_eq!(socks5_connect_request(&v6, 443).unwrap(), want);
        let name = Target::Name("ws.example".into());
        assert_eq!(socks5_connect_request(&name, 8765).unwrap(), b"\x05\x01\x00\x03\x0aws.example\x22\x3d");
        assert!(socks5_connect_request(&Target::Name("a".repeat(256)), 1).is_err());
        assert_eq!(socks5_check_reply_head(b"\x05\x00\x00\x01").unwrap(), ReplyTail::Fixed(6));
        assert_eq!(socks5_check_reply_head(b"\x05\x00\x00\x04").unwrap(), ReplyTail::Fixed(18));
        assert_eq!(socks5_check_reply_head(b"\x05\x00\x00\x03").unwrap(), ReplyTail::NameThenPort);
        assert_eq!(
            proxy_msg(socks5_check_reply_head(b"\x05\x05\x00\x01").unwrap_err()),
            "SOCKS5 proxy: connection refused (code 0x05)"
        );
        assert!(proxy_msg(socks5_check_reply_head(b"\x05\x00\x00\x09").unwrap_err()).contains("invalid data"));
    }

    #[test]
    fn targets() {
        assert_eq!(target("127.0.0.1", 1, false, true).unwrap(), Target::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(target("[::1]", 1, true, false).unwrap(), Target::Ip("::1".parse().unwrap()));
        assert_eq!(target("ws.example", 1, true, false).unwrap(), Target::Name("ws.example".into()));
        assert_eq!(target("localhost", 1, false, true).unwrap(), Target::Ip("127.0.0.1".parse().unwrap()));
    }

    /// The I/O half against a socketpair: an HTTP proxy answering 200 followed by tunnel
    /// bytes, which must stay unread.
    #[test]
    fn http_tunnel_reads_only_the_head() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;
        let (client, mut server) = UnixStream::pair().unwrap();
        client.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
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
        tunnel(client.as_raw_fd(), &spec, "ws.example", 80, Deadline::after(Some(Duration::from_secs(5))), &|| false, &|_, _| {})
            .unwrap();
        let _server = t.join().unwrap();
        let mut rest = [0u8; 6];
        (&client).read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"TUNNEL");
    }

    #[test]
    fn tunnel_timeout_is_a_proxy_error() {
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;
        let (client, _server) = UnixStream::pair().unwrap();
        client.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let spec = ProxySpec { kind: ProxyKind::Socks5, host: "p".into(), port: 1, auth: None, timeout: None };
        let err = tunnel(client.as_raw_fd(), &spec, "h", 1, Deadline::after(Some(Duration::from_millis(100))), &|| false, &|_, _| {})
            .unwrap_err();
        assert_eq!(proxy_msg(err), "SOCKS5 proxy: timed out");
    }
}
