//! Sockets, TLS and proxies. Nothing here knows about Python: blocking calls take a
//! deadline and an `Interrupt` check that the bindings implement with Python's signal check.

pub mod keys;
#[cfg(any(test, fuzzing))]
pub mod loopback;
pub mod proxy;
pub mod readiness;
pub mod socket;
pub mod stream;
pub mod sys;
pub mod tcp;
pub mod tls;
pub mod tls_session;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a blocking wait wakes up to check for interrupts (Ctrl-C).
pub const SLICE: Duration = Duration::from_millis(50);

/// Called between wait slices; returns true to abandon the wait.
pub type Interrupt<'a> = &'a dyn Fn() -> bool;

/// The only thread an `Interrupt` check can fire on (the bindings record Python's main
/// thread, the one that runs signal handlers); `u64::MAX` while unknown, which keeps every
/// thread on slices.
static INTERRUPTIBLE_THREAD: AtomicU64 = AtomicU64::new(u64::MAX);

/// Records the thread an interrupt can reach (`sys::thread_ident()`'s numbering).
pub fn set_interruptible_thread(ident: u64) {
    INTERRUPTIBLE_THREAD.store(ident, Ordering::Relaxed);
}

/// Whether an `Interrupt` check may ever fire on the calling thread. Where it cannot, a wait
/// for a socket with nothing to do between slices can be one long wait: a thousand threads
/// blocked in `recv()` would otherwise wake twenty thousand times a second.
pub fn interruptible_here() -> bool {
    let t = INTERRUPTIBLE_THREAD.load(Ordering::Relaxed);
    t == u64::MAX || sys::thread_ident() == t
}

/// A point in time a blocking call must finish by; `None` waits forever.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Option<Instant>);

impl Deadline {
    pub fn after(timeout: Option<Duration>) -> Self {
        Deadline(timeout.map(|t| Instant::now() + t))
    }
    pub fn never() -> Self {
        Deadline(None)
    }
    pub fn expired(&self) -> bool {
        matches!(self.0, Some(t) if Instant::now() >= t)
    }
    /// Time left, `None` for no deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.0.map(|t| t.saturating_duration_since(Instant::now()))
    }
    /// The next wait slice: at most SLICE, never past the deadline.
    pub fn slice(&self) -> Duration {
        match self.0 {
            None => SLICE,
            Some(t) => t.saturating_duration_since(Instant::now()).min(SLICE),
        }
    }
}

/// Transport failures, each named so the bindings can map it to one Python exception.
#[derive(Debug)]
pub enum NetError {
    /// An OS error (ConnectionRefusedError and friends in Python).
    Io(std::io::Error),
    /// Name resolution failed.
    Address(String),
    Timeout,
    /// The TCP connect did not complete in time (Python's socket raises TimeoutError then,
    /// as websocket-client lets it through).
    ConnectTimeout,
    Interrupted,
    /// The peer closed the connection (EOF, reset, broken pipe).
    Closed(String),
    Tls(tls::TlsError),
    Proxy(String),
}

impl From<std::io::Error> for NetError {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
                NetError::Closed(format!("Connection to remote host was lost. ({e})"))
            }
            _ => NetError::Io(e),
        }
    }
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::Io(e) => write!(f, "{e}"),
            NetError::Address(m) | NetError::Closed(m) | NetError::Proxy(m) => f.write_str(m),
            NetError::Timeout | NetError::ConnectTimeout => f.write_str("timed out"),
            NetError::Interrupted => f.write_str("interrupted"),
            NetError::Tls(e) => write!(f, "{e}"),
        }
    }
}
