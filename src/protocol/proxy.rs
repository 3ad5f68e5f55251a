//! Proxy negotiation as a state machine, sans I/O: HTTP CONNECT (Basic auth), SOCKS4,
//! SOCKS4a, SOCKS5 and SOCKS5h (no auth or user/password).
//!
//! `Negotiation` hands out the bytes to send and takes the proxy's answers; it never reads
//! past the end of an answer (`bytes_wanted`), so what follows belongs to the tunnel. The
//! driver moves the bytes and resolves names when the proxy does not (`target_for`): the
//! native engine over its own socket (transport/proxy.rs), the Python-socket driver over a
//! Python socket, each in the way its world waits.

use std::net::IpAddr;

use base64::Engine as _;

/// A failed proxy exchange (WebSocketProxyException in Python).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError(pub String);

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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
pub fn http_connect_status(head: &[u8]) -> Result<u16, ProxyError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(ProxyError("incomplete CONNECT response from proxy".into())),
        Err(e) => {
            let line = String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or_default());
            return Err(ProxyError(format!("Invalid status line from proxy ({e}): {:?}", line.trim_end())));
        }
    }
    let status = resp.code.unwrap_or(0);
    if status != 200 {
        return Err(ProxyError(format!("failed CONNECT via proxy status: {status}")));
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
pub fn socks4_request(target: &Target, port: u16, user: &str) -> Result<Vec<u8>, ProxyError> {
    let mut req = vec![4u8, 1];
    req.extend_from_slice(&port.to_be_bytes());
    match target {
        Target::Ip(IpAddr::V4(ip)) => req.extend_from_slice(&ip.octets()),
        Target::Ip(IpAddr::V6(ip)) => {
            return Err(ProxyError(format!("SOCKS4 proxies cannot connect to an IPv6 address ({ip})")))
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
pub fn socks4_check_reply(reply: &[u8]) -> Result<(), ProxyError> {
    if reply.len() != 8 || reply[0] != 0 {
        return Err(ProxyError("SOCKS4 proxy server sent invalid data".into()));
    }
    let why = match reply[1] {
        0x5A => return Ok(()),
        0x5B => "request rejected or failed",
        0x5C => "request rejected because the SOCKS server cannot connect to identd on the client",
        0x5D => "request rejected because the client program and identd report different user-ids",
        _ => "unknown error",
    };
    Err(ProxyError(format!("SOCKS4 proxy: {why} (code {:#04x})", reply[1])))
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
pub fn socks5_check_method(reply: &[u8], auth: Option<&(String, String)>) -> Result<bool, ProxyError> {
    if reply.len() != 2 || reply[0] != 5 {
        return Err(ProxyError("SOCKS5 proxy server sent invalid data".into()));
    }
    match reply[1] {
        SOCKS5_NO_AUTH => Ok(false),
        SOCKS5_USER_PASS if socks5_has_credentials(auth) => Ok(true),
        SOCKS5_USER_PASS => Err(ProxyError("SOCKS5 proxy requires a user name and password (http_proxy_auth)".into())),
        SOCKS5_NO_METHOD => Err(ProxyError("SOCKS5 proxy: no acceptable authentication method".into())),
        m => Err(ProxyError(format!("SOCKS5 proxy chose an unsupported authentication method {m:#04x}"))),
    }
}

/// The RFC 1929 user/password request.
pub fn socks5_auth_request(user: &str, password: &str) -> Result<Vec<u8>, ProxyError> {
    if user.len() > 255 || password.len() > 255 {
        return Err(ProxyError("SOCKS5 user name and password must be at most 255 bytes each".into()));
    }
    let mut req = vec![1u8, user.len() as u8];
    req.extend_from_slice(user.as_bytes());
    req.push(password.len() as u8);
    req.extend_from_slice(password.as_bytes());
    Ok(req)
}

pub fn socks5_check_auth(reply: &[u8]) -> Result<(), ProxyError> {
    if reply.len() != 2 {
        return Err(ProxyError("SOCKS5 proxy server sent invalid data".into()));
    }
    if reply[1] != 0 {
        return Err(ProxyError("SOCKS5 proxy authentication failed: user name or password rejected".into()));
    }
    Ok(())
}

/// The CONNECT request for `target:port`.
pub fn socks5_connect_request(target: &Target, port: u16) -> Result<Vec<u8>, ProxyError> {
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
                return Err(ProxyError("SOCKS5 host names must be at most 255 bytes".into()));
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
pub fn socks5_check_reply_head(head: &[u8]) -> Result<ReplyTail, ProxyError> {
    if head.len() != 4 || head[0] != 5 || head[2] != 0 {
        return Err(ProxyError("SOCKS5 proxy server sent invalid data".into()));
    }
    let why = match head[1] {
        0 => {
            return match head[3] {
                1 => Ok(ReplyTail::Fixed(4 + 2)),
                4 => Ok(ReplyTail::Fixed(16 + 2)),
                3 => Ok(ReplyTail::NameThenPort),
                _ => Err(ProxyError("SOCKS5 proxy server sent invalid data".into())),
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
    Err(ProxyError(format!("SOCKS5 proxy: {why} (code {:#04x})", head[1])))
}

/// What follows a successful SOCKS5 reply head.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyTail {
    /// This many bytes (address + port).
    Fixed(usize),
    /// One length byte, that many name bytes, then the 2-byte port.
    NameThenPort,
}


// ---- the negotiation ---------------------------------------------------------------------

/// How the SOCKS target is named: an IP literal as is; a name the proxy resolves (SOCKS4a,
/// SOCKS5h; and every HTTP proxy); None when the driver must resolve the name first (SOCKS4:
/// to an IPv4 address, see `needs_ipv4`; SOCKS5: to any address).
pub fn target_for(kind: ProxyKind, host: &str) -> Option<Target> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Target::Ip(ip));
    }
    match kind {
        ProxyKind::Http | ProxyKind::Socks4a | ProxyKind::Socks5h => Some(Target::Name(host.to_string())),
        ProxyKind::Socks4 | ProxyKind::Socks5 => None,
    }
}

/// Whether a locally resolved target must be an IPv4 address (SOCKS4).
pub fn needs_ipv4(kind: ProxyKind) -> bool {
    matches!(kind, ProxyKind::Socks4)
}

/// The error for a SOCKS4 target that resolved to no IPv4 address.
pub fn no_ipv4(host: &str) -> ProxyError {
    ProxyError(format!("SOCKS4 proxies need an IPv4 address and {host} has none"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    HttpHead,
    Socks4Reply,
    Socks5Method,
    Socks5Auth,
    Socks5ReplyHead,
    /// This many more bytes of bound address and port.
    Socks5ReplyTail(usize),
    /// The length byte of a bound name.
    Socks5ReplyNameLen,
    Done,
}

/// One proxy exchange, from the first request to the open tunnel.
#[derive(Debug)]
pub struct Negotiation {
    kind: ProxyKind,
    auth: Option<(String, String)>,
    target: Target,
    port: u16,
    phase: Phase,
    /// The answer read so far in this phase.
    buf: Vec<u8>,
    out: Vec<u8>,
    /// HTTP: the request and the answer's head, for traces.
    request: String,
    head: Vec<u8>,
}

impl Negotiation {
    /// Starts a negotiation to tunnel to `target:port` (see `target_for`); the first request
    /// is ready in `data_to_send`.
    pub fn start(kind: ProxyKind, target: Target, port: u16, auth: Option<(String, String)>) -> Result<Self, ProxyError> {
        let mut n = Negotiation {
            kind,
            auth,
            target,
            port,
            phase: Phase::Done,
            buf: Vec::new(),
            out: Vec::new(),
            request: String::new(),
            head: Vec::new(),
        };
        match kind {
            ProxyKind::Http => {
                let host = match &n.target {
                    Target::Ip(ip) => ip.to_string(),
                    Target::Name(name) => name.clone(),
                };
                n.request = http_connect_request(&host, port, n.auth.as_ref());
                n.out.extend_from_slice(n.request.as_bytes());
                n.phase = Phase::HttpHead;
            }
            ProxyKind::Socks4 | ProxyKind::Socks4a => {
                let user = n.auth.as_ref().map(|(u, _)| u.as_str()).unwrap_or("");
                n.out = socks4_request(&n.target, port, user)?;
                n.phase = Phase::Socks4Reply;
            }
            ProxyKind::Socks5 | ProxyKind::Socks5h => {
                n.out = socks5_greeting(n.auth.as_ref());
                n.phase = Phase::Socks5Method;
            }
        }
        Ok(n)
    }

    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// Bytes to send to the proxy now (taken).
    pub fn data_to_send(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The HTTP CONNECT request and the proxy's response head (for `enableTrace`).
    pub fn http_request(&self) -> &str {
        &self.request
    }

    pub fn http_response_head(&self) -> &[u8] {
        &self.head
    }

    /// The most bytes that may be read now without reading past the proxy's answer (0 when
    /// done). For HTTP, whose head ends at a blank line, it is how many bytes could still
    /// complete a `\r\n\r\n` at the end of what came so far.
    pub fn bytes_wanted(&self) -> usize {
        match self.phase {
            Phase::Done => 0,
            Phase::HttpHead => {
                let matched = (1..=3).rev().find(|&k| self.head.ends_with(&b"\r\n\r\n"[..k])).unwrap_or(0);
                4 - matched
            }
            Phase::Socks4Reply => 8 - self.buf.len(),
            Phase::Socks5Method | Phase::Socks5Auth => 2 - self.buf.len(),
            Phase::Socks5ReplyHead => 4 - self.buf.len(),
            Phase::Socks5ReplyTail(n) => n - self.buf.len(),
            Phase::Socks5ReplyNameLen => 1 - self.buf.len(),
        }
    }

    /// Feeds bytes from the proxy; returns how many were used, never more than the answer
    /// (the rest belongs to the tunnel: a driver that peeked consumes only that many).
    pub fn receive(&mut self, data: &[u8]) -> Result<usize, ProxyError> {
        let mut used = 0;
        while used < data.len() && self.phase != Phase::Done {
            let rest = &data[used..];
            if self.phase == Phase::HttpHead {
                // The terminator may straddle what came before and what comes now.
                let from = self.head.len().saturating_sub(3);
                let before = self.head.len() - from;
                let mut joined = self.head[from..].to_vec();
                joined.extend_from_slice(rest);
                let take = match http_head_end(&joined) {
                    Some(end) => end - before,
                    None => rest.len(),
                };
                self.head.extend_from_slice(&rest[..take]);
                used += take;
                if http_head_end(&self.head).is_some() {
                    http_connect_status(&self.head)?;
                    self.phase = Phase::Done;
                } else if self.head.len() > MAX_HTTP_HEAD {
                    return Err(ProxyError(format!("CONNECT response head from proxy over {MAX_HTTP_HEAD} bytes")));
                }
                continue;
            }
            let take = self.bytes_wanted().min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            used += take;
            if self.bytes_wanted() == 0 {
                let answer = std::mem::take(&mut self.buf);
                self.advance(&answer)?;
            }
        }
        Ok(used)
    }

    /// One complete answer of the current phase.
    fn advance(&mut self, answer: &[u8]) -> Result<(), ProxyError> {
        self.phase = match self.phase {
            Phase::Socks4Reply => {
                socks4_check_reply(answer)?;
                Phase::Done
            }
            Phase::Socks5Method => {
                if socks5_check_method(answer, self.auth.as_ref())? {
                    let (user, password) = self.auth.as_ref().expect("checked by socks5_check_method");
                    self.out = socks5_auth_request(user, password)?;
                    Phase::Socks5Auth
                } else {
                    self.out = socks5_connect_request(&self.target, self.port)?;
                    Phase::Socks5ReplyHead
                }
            }
            Phase::Socks5Auth => {
                socks5_check_auth(answer)?;
                self.out = socks5_connect_request(&self.target, self.port)?;
                Phase::Socks5ReplyHead
            }
            Phase::Socks5ReplyHead => match socks5_check_reply_head(answer)? {
                ReplyTail::Fixed(n) => Phase::Socks5ReplyTail(n),
                ReplyTail::NameThenPort => Phase::Socks5ReplyNameLen,
            },
            Phase::Socks5ReplyNameLen => Phase::Socks5ReplyTail(answer[0] as usize + 2),
            Phase::Socks5ReplyTail(_) => Phase::Done,
            Phase::HttpHead | Phase::Done => unreachable!("no fixed-size answer in this phase"),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn auth(u: &str, p: &str) -> (String, String) {
        (u.to_string(), p.to_string())
    }

    fn proxy_msg(e: ProxyError) -> String {
        e.0
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

    /// Runs a negotiation against a scripted proxy whose answers arrive cut at every byte,
    /// checking that no read goes past an answer.
    fn negotiate(mut n: Negotiation, answers: &[&[u8]], trailer: &[u8]) -> Result<Vec<Vec<u8>>, ProxyError> {
        let mut sent = vec![n.data_to_send()];
        let mut wire: Vec<u8> = answers.concat();
        let answers_len = wire.len();
        wire.extend_from_slice(trailer);
        let mut pos = 0;
        while !n.is_done() {
            let want = n.bytes_wanted();
            assert!(want >= 1 && pos + want <= answers_len, "read of {want} at {pos} passes the answers");
            let used = n.receive(&wire[pos..pos + 1])?;
            pos += used;
            let out = n.data_to_send();
            if !out.is_empty() {
                sent.push(out);
            }
        }
        assert_eq!(pos, answers_len);
        assert_eq!(n.bytes_wanted(), 0);
        Ok(sent)
    }

    #[test]
    fn http_negotiation_stops_at_the_blank_line() {
        let n = Negotiation::start(ProxyKind::Http, Target::Name("ws.example".into()), 80, None).unwrap();
        let sent = negotiate(n, &[b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n"], b"TUNNEL").unwrap();
        assert_eq!(sent, vec![b"CONNECT ws.example:80 HTTP/1.1\r\nHost: ws.example:80\r\n\r\n".to_vec()]);
        // Peeked in one piece, only the head is used.
        let mut n = Negotiation::start(ProxyKind::Http, Target::Name("h".into()), 1, None).unwrap();
        assert_eq!(n.receive(b"HTTP/1.1 200 OK\r\n\r\nTUNNEL").unwrap(), 19);
        assert!(n.is_done());
        let n = Negotiation::start(ProxyKind::Http, Target::Name("h".into()), 1, None).unwrap();
        assert_eq!(negotiate(n, &[b"HTTP/1.1 407 Auth\r\n\r\n"], b"").unwrap_err().0, "failed CONNECT via proxy status: 407");
    }

    #[test]
    fn socks5_negotiation_with_auth_and_a_bound_name() {
        let n = Negotiation::start(ProxyKind::Socks5h, Target::Name("ws.example".into()), 80, Some(auth("u", "p"))).unwrap();
        let sent = negotiate(n, &[b"\x05\x02", b"\x01\x00", b"\x05\x00\x00\x03\x04name\x00\x50"], b"TUNNEL").unwrap();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0], b"\x05\x02\x00\x02");
        assert_eq!(sent[1], b"\x01\x01u\x01p");
        assert_eq!(sent[2], b"\x05\x01\x00\x03\x0aws.example\x00\x50");
        let n = Negotiation::start(ProxyKind::Socks5, Target::Ip("10.0.0.1".parse().unwrap()), 80, None).unwrap();
        let err = negotiate(n, &[b"\x05\x00", b"\x05\x05\x00\x01"], b"").unwrap_err();
        assert_eq!(err.0, "SOCKS5 proxy: connection refused (code 0x05)");
    }

    #[test]
    fn socks4_negotiation() {
        let n = Negotiation::start(ProxyKind::Socks4a, Target::Name("h".into()), 443, None).unwrap();
        let sent = negotiate(n, &[b"\x00\x5a\x00\x00\x00\x00\x00\x00"], b"T").unwrap();
        assert_eq!(sent, vec![b"\x04\x01\x01\xbb\x00\x00\x00\x01\x00h\x00".to_vec()]);
    }

    #[test]
    fn targets() {
        assert_eq!(target_for(ProxyKind::Socks4, "127.0.0.1"), Some(Target::Ip("127.0.0.1".parse().unwrap())));
        assert_eq!(target_for(ProxyKind::Socks5h, "[::1]"), Some(Target::Ip("::1".parse().unwrap())));
        assert_eq!(target_for(ProxyKind::Socks5h, "ws.example"), Some(Target::Name("ws.example".into())));
        assert_eq!(target_for(ProxyKind::Socks5, "ws.example"), None);
        assert_eq!(target_for(ProxyKind::Socks4, "ws.example"), None);
    }
}
