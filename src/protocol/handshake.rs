//! The opening handshake, without I/O: the request bytes (in websocket-client's exact header
//! order) and the check of the server's response (`answer`): upgrade headers, accept key,
//! subprotocol, the permessage-deflate agreement, redirects and refusals.

use tungstenite::handshake::derive_accept_key;

use super::deflate::{self, Offer, Params};

/// What the request is built from; the Python layer has already normalised user input.
#[derive(Debug, Clone, Default)]
pub struct RequestSpec {
    pub host: String,
    pub port: u16,
    pub resource: String,
    pub secure: bool,
    /// `Host:` override; `suppress_host` drops the line.
    pub host_header: Option<String>,
    pub suppress_host: bool,
    pub origin: Option<String>,
    pub suppress_origin: bool,
    /// Overrides of the generated `Sec-WebSocket-Key` / `Sec-WebSocket-Version`.
    pub key: Option<String>,
    pub version: Option<String>,
    /// The user's headers already carry the key / version line (a header dict naming
    /// them): the generated line is left out, as the reference does.
    pub key_in_headers: bool,
    pub version_in_headers: bool,
    /// Replaces the whole `Connection: Upgrade` line.
    pub connection: Option<String>,
    pub subprotocols: Vec<String>,
    /// User header lines, already formatted `Name: value`.
    pub headers: Vec<String>,
    pub cookie: Option<String>,
    /// Extensions to offer (`Sec-WebSocket-Extensions` value), if any.
    pub extensions: Option<String>,
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Builds the request; returns it with the key the response must answer.
pub fn build_request(spec: &RequestSpec) -> (Vec<u8>, String) {
    use std::fmt::Write as _;
    let key = spec.key.clone().unwrap_or_else(tungstenite::handshake::client::generate_key);
    // One buffer, written in order (a connection's set-up cost: no line vector to join).
    let mut t = String::with_capacity(256 + spec.headers.iter().map(|h| h.len() + 2).sum::<usize>());
    let hostport = |t: &mut String| {
        t.push_str(&bracket(&spec.host));
        if spec.port != 80 && spec.port != 443 {
            let _ = write!(t, ":{}", spec.port);
        }
    };
    let _ = write!(t, "GET {} HTTP/1.1\r\nUpgrade: websocket\r\n", spec.resource);
    if !spec.suppress_host {
        t.push_str("Host: ");
        match spec.host_header.as_deref() {
            Some(h) => t.push_str(h),
            None => hostport(&mut t),
        }
        t.push_str("\r\n");
    }
    if !spec.suppress_origin {
        t.push_str("Origin: ");
        match &spec.origin {
            Some(o) => t.push_str(o),
            None => {
                t.push_str(if spec.secure { "https://" } else { "http://" });
                hostport(&mut t);
            }
        }
        t.push_str("\r\n");
    }
    if !spec.key_in_headers {
        let _ = write!(t, "Sec-WebSocket-Key: {key}\r\n");
    }
    if !spec.version_in_headers {
        let _ = write!(t, "Sec-WebSocket-Version: {}\r\n", spec.version.as_deref().unwrap_or("13"));
    }
    t.push_str(spec.connection.as_deref().unwrap_or("Connection: Upgrade"));
    t.push_str("\r\n");
    if !spec.subprotocols.is_empty() {
        let _ = write!(t, "Sec-WebSocket-Protocol: {}\r\n", spec.subprotocols.join(","));
    }
    if let Some(ext) = &spec.extensions {
        let _ = write!(t, "Sec-WebSocket-Extensions: {ext}\r\n");
    }
    for h in &spec.headers {
        t.push_str(h);
        t.push_str("\r\n");
    }
    if let Some(cookie) = spec.cookie.as_deref().filter(|c| !c.is_empty()) {
        let _ = write!(t, "Cookie: {cookie}\r\n");
    }
    t.push_str("\r\n");
    (t.into_bytes(), key)
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header names as sent, values as sent, in order.
    pub headers: Vec<(String, String)>,
    /// Bytes of the head, including the blank line.
    pub head_len: usize,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub const MAX_HEADERS: usize = 128;
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// More bytes needed.
    Partial,
    TooLarge,
    Invalid(String),
}

/// Parses a response head from the start of `buf`.
pub fn parse_response(buf: &[u8]) -> Result<Response, ParseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => Ok(Response {
            status: resp.code.unwrap_or(0),
            reason: resp.reason.unwrap_or("").to_string(),
            headers: resp
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                .collect(),
            head_len: n,
        }),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => Err(ParseError::TooLarge),
        Ok(httparse::Status::Partial) => Err(ParseError::Partial),
        Err(httparse::Error::TooManyHeaders) => Err(ParseError::TooLarge),
        Err(e) => Err(ParseError::Invalid(e.to_string())),
    }
}

/// Redirect statuses a client follows (with a `Location`).
pub const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];
/// The most of a refusal's body that is read (for the exception).
pub const MAX_ERROR_BODY: usize = 1 << 20;

/// What the handshake agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The chosen subprotocol, lowercased like the reference does.
    pub subprotocol: Option<String>,
    /// permessage-deflate parameters, when the server accepted the offer.
    pub compression: Option<Params>,
}

/// What the server's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Upgraded(Accepted),
    /// A 3xx the caller may follow.
    Redirect { status: u16, location: Option<String> },
    /// Any other status (WebSocketBadStatusException): read up to `body_len` bytes of body.
    Refused { body_len: usize },
}

impl Response {
    /// The body length a refusal announces (bounded by MAX_ERROR_BODY), 0 when none.
    pub fn error_body_len(&self) -> usize {
        self.header("content-length").and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(0).min(MAX_ERROR_BODY)
    }
}

/// Classifies a response head; a 101 is checked in full (`accept`).
pub fn answer(resp: &Response, key: &str, subprotocols: &[String], offer: Option<&Offer>) -> Result<Answer, String> {
    if REDIRECTS.contains(&resp.status) {
        return Ok(Answer::Redirect { status: resp.status, location: resp.header("location").map(str::to_string) });
    }
    if resp.status != 101 {
        return Ok(Answer::Refused { body_len: resp.error_body_len() });
    }
    accept(&resp.headers, key, subprotocols, offer).map(Answer::Upgraded)
}

/// Checks the headers of a 101 response: the upgrade, the accept key, the subprotocol (RFC
/// 6455 4.1) and the answer to our permessage-deflate offer (RFC 7692).
pub fn accept(headers: &[(String, String)], key: &str, subprotocols: &[String], offer: Option<&Offer>) -> Result<Accepted, String> {
    let resp = Response { status: 101, reason: String::new(), headers: headers.to_vec(), head_len: 0 };
    let subprotocol = verify_upgrade(&resp, key, subprotocols)?;
    let extensions: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|(_, v)| v.as_str())
        .collect();
    let extensions = (!extensions.is_empty()).then(|| extensions.join(", "));
    let compression = deflate::negotiate(offer, extensions.as_deref())?;
    Ok(Accepted { subprotocol, compression })
}

/// The most bytes that may be read without passing the end of a response head that starts
/// `buf` (for a driver that cannot put bytes back): how many could still complete the blank
/// line that ends it.
pub fn head_bytes_wanted(buf: &[u8]) -> usize {
    4 - (1..=3).rev().find(|&k| buf.ends_with(&b"\r\n\r\n"[..k])).unwrap_or(0)
}

/// Checks a 101 response against the request; returns the chosen subprotocol, lowercased
/// like the reference does.
pub fn verify_upgrade(resp: &Response, key: &str, subprotocols: &[String]) -> Result<Option<String>, String> {
    let upgrade_ok = resp.header("upgrade").map(|v| v.eq_ignore_ascii_case("websocket")).unwrap_or(false);
    let connection_ok = resp
        .header("connection")
        .map(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
        .unwrap_or(false);
    if !upgrade_ok || !connection_ok {
        return Err("Invalid WebSocket Header".into());
    }
    let expected = derive_accept_key(key.as_bytes());
    match resp.header("sec-websocket-accept") {
        Some(v) if v.trim() == expected => {}
        _ => return Err("Invalid WebSocket Header".into()),
    }
    // RFC 6455 4.1: the server's choice must be one the client offered; a choice when none
    // was offered fails the connection too (the reference ignores it).
    let chosen = resp.header("sec-websocket-protocol").map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
    match (&chosen, subprotocols.is_empty()) {
        (None, true) => Ok(None),
        (Some(p), false) if subprotocols.iter().any(|s| s.to_lowercase() == *p) => Ok(chosen),
        (None, false) => Err("Invalid WebSocket Header: the server selected none of the offered subprotocols".into()),
        (Some(p), _) => Err(format!(
            "Invalid WebSocket Header: the server selected subprotocol {p:?}, which the client did not offer"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_the_reference_header_order() {
        let spec = RequestSpec {
            host: "example.com".into(),
            port: 80,
            resource: "/chat?x=1".into(),
            key: Some("dGhlIHNhbXBsZSBub25jZQ==".into()),
            subprotocols: vec!["a".into(), "b".into()],
            headers: vec!["X-Test: 1".into()],
            cookie: Some("k=v".into()),
            ..Default::default()
        };
        let (req, key) = build_request(&spec);
        assert_eq!(key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(
            String::from_utf8(req).unwrap(),
            "GET /chat?x=1 HTTP/1.1\r\nUpgrade: websocket\r\nHost: example.com\r\nOrigin: http://example.com\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Protocol: a,b\r\nX-Test: 1\r\nCookie: k=v\r\n\r\n"
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed_and_ports_kept() {
        let spec = RequestSpec { host: "::1".into(), port: 8080, resource: "/".into(), secure: true, ..Default::default() };
        let (req, _) = build_request(&spec);
        let text = String::from_utf8(req).unwrap();
        assert!(text.contains("\r\nHost: [::1]:8080\r\n"));
        assert!(text.contains("\r\nOrigin: https://[::1]:8080\r\n"));
    }

    fn response(extra: &str, accept: &str) -> Response {
        let raw = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
        );
        parse_response(raw.as_bytes()).unwrap()
    }

    #[test]
    fn accept_key_and_subprotocol_are_checked() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        assert_eq!(verify_upgrade(&response("", good), key, &[]).unwrap(), None);
        assert!(verify_upgrade(&response("", "wrong"), key, &[]).is_err());
        let r = response("Sec-WebSocket-Protocol: Chat\r\n", good);
        assert_eq!(verify_upgrade(&r, key, &["chat".into()]).unwrap().as_deref(), Some("chat"));
        assert!(verify_upgrade(&r, key, &["other".into()]).is_err());
        // RFC 6455 4.1: a subprotocol when none was offered fails the connection too.
        let err = verify_upgrade(&r, key, &[]).unwrap_err();
        assert!(err.contains("did not offer"), "{err}");
        // Offered, but the server chose none: the reference's rule.
        assert!(verify_upgrade(&response("", good), key, &["chat".into()]).is_err());
    }

    #[test]
    fn answers_are_classified_and_deflate_negotiated() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        let r = response("Sec-WebSocket-Extensions: permessage-deflate\r\n", good);
        let offer = Offer::default();
        match answer(&r, key, &[], Some(&offer)).unwrap() {
            Answer::Upgraded(a) => assert!(a.compression.is_some() && a.subprotocol.is_none()),
            other => panic!("{other:?}"),
        }
        // An extension nobody offered fails the handshake.
        assert!(answer(&r, key, &[], None).is_err());
        let redirect = parse_response(b"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n").unwrap();
        assert_eq!(answer(&redirect, key, &[], None).unwrap(), Answer::Redirect { status: 302, location: Some("/x".into()) });
        let refused = parse_response(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!").unwrap();
        assert_eq!(answer(&refused, key, &[], None).unwrap(), Answer::Refused { body_len: 5 });
    }

    #[test]
    fn head_reads_never_pass_the_blank_line() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        let mut got = Vec::new();
        while parse_response(&got) == Err(ParseError::Partial) || got.is_empty() {
            let n = head_bytes_wanted(&got);
            assert!(got.len() + n <= head.len(), "{n} at {}", got.len());
            got.extend_from_slice(&head[got.len()..got.len() + n]);
        }
        assert_eq!(got, head);
    }

    #[test]
    fn partial_and_oversized_heads() {
        assert_eq!(parse_response(b"HTTP/1.1 101 Sw"), Err(ParseError::Partial));
        let big = format!("HTTP/1.1 101 OK\r\nX: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse_response(big.as_bytes()), Err(ParseError::TooLarge));
    }
}
