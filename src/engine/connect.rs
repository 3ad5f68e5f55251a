//! Opening a connection: TCP (or a given socket), a proxy tunnel, TLS, the HTTP upgrade,
//! then a `Conn`.

use std::sync::Arc;
use std::time::Duration;

use super::conn::Conn;
use super::error::Error;
use crate::trace;
use crate::protocol::codec::Config;
use crate::protocol::deflate::{Offer, Params};
use crate::protocol::handshake::{self, Answer, ParseError, RequestSpec, Response};
use crate::transport::proxy::{self, ProxySpec};
use crate::transport::socket::{Socket, Wait};
use crate::transport::stream::{ReadOutcome, Stream};
use crate::transport::sys::RawSock;
use crate::transport::tcp::{self, SockOpt};
use crate::transport::tls::TlsOptions;
use crate::transport::{Deadline, Interrupt, NetError};

pub struct ConnectSpec {
    pub request: RequestSpec,
    pub timeout: Option<Duration>,
    pub sockopts: Vec<SockOpt>,
    /// TLS options when the URL is wss:// (ignored with `socket_fd`, like the reference).
    pub tls: Option<TlsOptions>,
    /// An already connected socket to use instead of connecting.
    pub socket_fd: Option<RawSock>,
    /// A proxy to tunnel through (ignored with `socket_fd`, like the reference).
    pub proxy: Option<ProxySpec>,
    pub codec: Config,
    /// permessage-deflate offer (its header value is already in `request.extensions`).
    pub deflate: Option<Offer>,
}

pub struct Handshake {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub subprotocol: Option<String>,
    /// permessage-deflate parameters, when the server accepted our offer.
    pub compression: Option<Params>,
}

pub enum Outcome {
    Connected(Arc<Conn>, Handshake),
    /// A 3xx answer the Python layer follows (up to `redirect_limit`).
    Redirect { status: u16, location: Option<String> },
}


pub fn connect(spec: &ConnectSpec, interrupt: Interrupt<'_>) -> Result<Outcome, Error> {
    let mut deadline = Deadline::after(spec.timeout);
    let stream = match spec.socket_fd {
        Some(fd) => Stream::plain(tcp::adopt(fd)?),
        None => {
            let sock = match &spec.proxy {
                None => {
                    let addrs = tcp::resolve(&spec.request.host, spec.request.port)?;
                    tcp::connect(&addrs, &spec.sockopts, deadline, interrupt)?
                }
                Some(p) => {
                    let sock = via_proxy(spec, p, interrupt)?;
                    // TLS and the upgrade get the whole timeout after the tunnel is up.
                    deadline = Deadline::after(spec.timeout);
                    sock
                }
            };
            match &spec.tls {
                Some(opts) => Stream::tls(sock, opts, &spec.request.host, deadline, interrupt)?,
                None => Stream::plain(sock),
            }
        }
    };
    let (request, key) = handshake::build_request(&spec.request);
    if trace::enabled() {
        trace::dump("request header", &String::from_utf8_lossy(&request));
    }
    let wire = stream.seal(&request)?;
    stream.send_wire(&wire, deadline.remaining(), interrupt)?;

    let (resp, mut buf) = read_head(&stream, deadline, interrupt)?;
    if trace::enabled() {
        let mut text = format!("HTTP/1.1 {} {}", resp.status, resp.reason);
        for (k, v) in &resp.headers {
            text.push_str(&format!("\n{k}: {v}"));
        }
        trace::dump("response header", &text);
    }
    let accepted = match handshake::answer(&resp, &key, &spec.request.subprotocols, spec.deflate.as_ref()) {
        Ok(Answer::Upgraded(a)) => a,
        Ok(Answer::Redirect { status, location }) => {
            stream.shutdown();
            return Ok(Outcome::Redirect { status, location });
        }
        Ok(Answer::Refused { body_len }) => {
            let body = read_body(&stream, body_len, buf.split_off(resp.head_len), deadline, interrupt);
            stream.shutdown();
            return Err(Error::BadStatus { status: resp.status, reason: resp.reason.clone(), headers: resp.headers.clone(), body });
        }
        Err(m) => {
            stream.shutdown();
            return Err(Error::Handshake(m));
        }
    };
    let (subprotocol, compression) = (accepted.subprotocol, accepted.compression);
    let leftover = buf.split_off(resp.head_len);
    let codec = Config { deflate: compression, ..spec.codec.clone() };
    let conn = Conn::new(stream, codec, &leftover)?;
    Ok(Outcome::Connected(
        conn,
        Handshake { status: resp.status, reason: resp.reason, headers: resp.headers, subprotocol, compression },
    ))
}

/// Connects to the proxy and has it tunnel to the request's host; the proxy's own timeout
/// covers both steps.
fn via_proxy(spec: &ConnectSpec, proxy: &ProxySpec, interrupt: Interrupt<'_>) -> Result<Socket, Error> {
    let deadline = Deadline::after(proxy.timeout);
    let addrs = tcp::resolve(&proxy.host, proxy.port)?;
    let sock = tcp::connect(&addrs, &spec.sockopts, deadline, interrupt)?;
    if trace::enabled() && proxy.kind == proxy::ProxyKind::Http {
        log::debug!(target: trace::TARGET, "Connecting proxy...");
    }
    let log = |title: &str, text: &str| {
        if trace::enabled() {
            trace::dump(title, text);
        }
    };
    proxy::tunnel(&sock, proxy, &spec.request.host, spec.request.port, deadline, interrupt, &log)?;
    Ok(sock)
}

fn read_more(stream: &Stream, buf: &mut Vec<u8>, deadline: Deadline, interrupt: Interrupt<'_>) -> Result<bool, Error> {
    loop {
        // Checked before every read, not only when a read times out: a server trickling
        // one byte per read would otherwise hold the handshake past its deadline.
        if deadline.expired() {
            return Err(Error::timeout());
        }
        // Straight into `buf`'s spare room: a zeroed 4 KiB chunk per read was 4% of a
        // connection's user-space instructions.
        match stream.read_into(buf, 4096, Wait::Slice)? {
            ReadOutcome::Data(_) => return Ok(true),
            ReadOutcome::Eof => return Ok(false),
            ReadOutcome::WouldBlock => {
                if interrupt() {
                    return Err(Error::Net(NetError::Interrupted));
                }
                if deadline.expired() {
                    return Err(Error::timeout());
                }
            }
        }
    }
}

fn read_head(stream: &Stream, deadline: Deadline, interrupt: Interrupt<'_>) -> Result<(Response, Vec<u8>), Error> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        if !buf.is_empty() {
            match handshake::parse_response(&buf) {
                Ok(r) => return Ok((r, buf)),
                Err(ParseError::Partial) => {}
                Err(ParseError::TooLarge) => {
                    stream.shutdown();
                    return Err(Error::Handshake(format!(
                        "handshake response header too large (over {} bytes or {} headers)",
                        handshake::MAX_HEAD_BYTES,
                        handshake::MAX_HEADERS
                    )));
                }
                Err(ParseError::Invalid(m)) => {
                    stream.shutdown();
                    return Err(Error::Handshake(format!("Invalid handshake response: {m}")));
                }
            }
        }
        if !read_more(stream, &mut buf, deadline, interrupt)? {
            stream.shutdown();
            return Err(Error::Closed("Connection to remote host was lost.".into()));
        }
    }
}

/// Reads the body of an error response when its length is given (bounded), best effort.
fn read_body(stream: &Stream, len: usize, mut body: Vec<u8>, deadline: Deadline, interrupt: Interrupt<'_>) -> Vec<u8> {
    while body.len() < len {
        match read_more(stream, &mut body, deadline, interrupt) {
            Ok(true) => {}
            _ => break,
        }
    }
    body.truncate(len);
    body
}
