//! Engine errors: one variant per Python exception the bindings raise.

use crate::protocol::codec::Failure;
use crate::transport::NetError;

#[derive(Debug)]
pub enum Error {
    Net(NetError),
    /// The peer broke the protocol; a close frame with the matching code was sent.
    Protocol(Failure),
    /// The connection is closed (EOF, or closed by us).
    Closed(String),
    /// The handshake response was not acceptable (`WebSocketException`).
    Handshake(String),
    /// A non-101, non-redirect status.
    BadStatus { status: u16, reason: String, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Bad argument (`ValueError`).
    Value(String),
}

impl From<NetError> for Error {
    fn from(e: NetError) -> Self {
        Error::Net(e)
    }
}

impl Error {
    pub fn timeout() -> Self {
        Error::Net(NetError::Timeout)
    }
}

/// Why a connection stopped producing items; kept so every later call reports the same.
#[derive(Debug, Clone)]
pub enum Terminal {
    Eof,
    Failed(Failure),
    /// A transport error while reading: its kind and message.
    Broken(String),
    Tls(crate::transport::tls::TlsError),
}

impl Terminal {
    pub fn to_error(&self) -> Error {
        match self {
            Terminal::Eof => Error::Closed("Connection to remote host was lost.".into()),
            Terminal::Failed(f) => Error::Protocol(f.clone()),
            Terminal::Broken(m) => Error::Closed(m.clone()),
            Terminal::Tls(e) => Error::Net(NetError::Tls(e.clone())),
        }
    }
}
