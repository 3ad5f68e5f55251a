//! One background thread, shared by every connection, that reads sockets nobody is reading.
//!
//! A connection is watched (one-shot) only while no Python thread is inside `recv()`.
//! After `recv()` returns the connection is put on a pending list and armed a little later,
//! once its owner has been quiet for `QUIET`; a tight send/recv loop therefore never pays for
//! re-arming calls or reactor wake-ups, while a connection whose owner is busy elsewhere has
//! its pings answered within a few milliseconds.
//!
//! The poller is the `polling` crate (epoll on Linux, kqueue on macOS and the BSDs, IOCP with
//! AFD polling on Windows), in its one-shot mode: an armed socket reports once and stays
//! disarmed until armed again, which is this reactor's model (arm when nobody reads, re-arm
//! after serving). Its `notify` is the waker. mio would do the I/O as well, but it is
//! edge-triggered only, so each arm would become a read attempt plus bookkeeping of missed
//! edges; `polling` maps one-shot arming onto each OS as it is.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use polling::{Event, Events, Poller};

use super::conn::Conn;
use crate::transport::socket::Socket;
use crate::transport::sys;

/// What the poller saw on a socket, in the reactor's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
    /// Hung up or in error: reading will tell how.
    pub hangup: bool,
}

impl Ready {
    /// Served without an event: bytes already buffered in this process.
    const READABLE: Ready = Ready { readable: true, writable: false, hangup: false };

    fn from_event(ev: &Event) -> Ready {
        Ready { readable: ev.readable, writable: ev.writable, hangup: ev.is_interrupt() || ev.is_err() == Some(true) }
    }
}
/// How long a connection's owner must have been out of `recv()` before the reactor takes
/// over reading it.
pub const QUIET: Duration = Duration::from_millis(1);
/// A connection whose owner went back into `recv()` within this time of its last return
/// stays on the pending list: in a send/recv loop each return would otherwise wake this
/// thread (a notify, a context switch and a poller wait per message, on the CPU the
/// owner runs on), while a tick every TICK serves the whole list.
pub const STAY_PENDING: Duration = Duration::from_millis(10);
const TICK: Duration = Duration::from_millis(2);

static CURRENT: Mutex<Option<Arc<Reactor>>> = Mutex::new(None);
/// This process's id, cached (0: not known yet): `owned()` is asked on every arm and
/// deregistration, and `std::process::id()` is a system call each time. Reset in a forked
/// child.
static PID: AtomicU32 = AtomicU32::new(0);

fn current_pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => {
            let pid = std::process::id();
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

extern "C" fn atfork_prepare() {
    std::mem::forget(CURRENT.lock());
}

extern "C" fn atfork_parent() {
    // SAFETY: locked by atfork_prepare in this thread, and the guard was forgotten.
    unsafe { CURRENT.force_unlock() };
}

extern "C" fn atfork_child() {
    PID.store(0, Ordering::Relaxed);
    // SAFETY: locked by atfork_prepare in the thread the child's only thread is a copy of,
    // and the guard was forgotten.
    unsafe { CURRENT.force_unlock() };
}

pub struct Reactor {
    poller: Poller,
    slots: Mutex<Slots>,
    pending: Mutex<Vec<Weak<Conn>>>,
    has_pending: AtomicBool,
    /// Connections to serve as if their socket were readable: their stream holds bytes
    /// already read (TLS records), which no readiness event will announce.
    ready: Mutex<Vec<usize>>,
    pid: u32,
}

#[derive(Default)]
struct Slots {
    conns: Vec<Option<Weak<Conn>>>,
    free: Vec<usize>,
}

impl Reactor {
    /// The process's reactor, started on first use (and again in a forked child). Fails
    /// (instead of panicking) when the process is out of descriptors or threads.
    pub fn get() -> std::io::Result<Arc<Reactor>> {
        static ATFORK: std::sync::Once = std::sync::Once::new();
        // A fork while another thread holds CURRENT would leave it locked for good in the
        // child: hold it across fork() so the child inherits it unlocked.
        ATFORK.call_once(|| sys::at_fork(Some(atfork_prepare), Some(atfork_parent), Some(atfork_child)));
        let mut cur = CURRENT.lock();
        let pid = current_pid();
        if let Some(r) = cur.as_ref().filter(|r| r.pid == pid) {
            return Ok(r.clone());
        }
        let r = Arc::new(Reactor::new()?);
        let thread_ref = r.clone();
        std::thread::Builder::new()
            .name("websocket-reactor".into())
            .stack_size(256 * 1024)
            .spawn(move || thread_ref.run())?;
        if let Some(parent) = cur.replace(r.clone()) {
            // The parent's reactor, in a forked child: its poller (an epoll instance) is
            // shared with the parent, and dropping it would unregister the parent's waker.
            // Its thread's reference did not survive the fork either, so it is kept for good.
            std::mem::forget(parent);
        }
        Ok(r)
    }

    /// False in a forked child for the parent's reactor: its thread did not survive the
    /// fork, and its poller is shared with the parent, so the child must not change it (an
    /// inherited connection dropped in the child would otherwise stop the parent's reactor
    /// from watching that socket).
    fn owned(&self) -> bool {
        self.pid == current_pid()
    }

    fn new() -> std::io::Result<Reactor> {
        Ok(Reactor {
            poller: Poller::new()?,
            slots: Mutex::new(Slots::default()),
            pending: Mutex::new(Vec::new()),
            has_pending: AtomicBool::new(false),
            ready: Mutex::new(Vec::new()),
            pid: current_pid(),
        })
    }

    /// Registers a connection's socket, its one-shot watch armed for reading when `read` is
    /// set (one `epoll_ctl`, not an add then a modify), else disarmed; returns its token.
    pub fn register(&self, conn: &Arc<Conn>, sock: &Socket, read: bool) -> usize {
        debug_assert!(self.owned());
        let token = {
            let mut s = self.slots.lock();
            match s.free.pop() {
                Some(t) => {
                    s.conns[t] = Some(Arc::downgrade(conn));
                    t
                }
                None => {
                    s.conns.push(Some(Arc::downgrade(conn)));
                    s.conns.len() - 1
                }
            }
        };
        // SAFETY: `Conn`'s drop deregisters the socket before closing it.
        let interest = if read { Event::readable(token) } else { Event::none(token) };
        if let Err(e) = unsafe { self.poller.add(sock.raw(), interest) } {
            log::error!(target: "websocket", "reactor: cannot watch a socket: {e}");
        }
        token
    }

    pub fn deregister(&self, token: usize, sock: &Socket) {
        if !self.owned() {
            return;
        }
        let _ = self.poller.delete(sock.inner());
        let mut s = self.slots.lock();
        if token < s.conns.len() {
            s.conns[token] = None;
            s.free.push(token);
        }
    }

    /// Arms the one-shot watch: readable when `read` is set (not while flow control has
    /// paused reading), writable when `write` is set.
    pub fn arm(&self, token: usize, sock: &Socket, read: bool, write: bool) {
        if !self.owned() {
            return;
        }
        let _ = self.poller.modify(sock.inner(), Event::new(token, read, write));
    }

    /// Withdraws an armed watch (a Python thread is about to read the socket itself), so
    /// that the data it waits for does not also wake this thread for nothing.
    pub fn disarm(&self, token: usize, sock: &Socket) {
        if !self.owned() {
            return;
        }
        let _ = self.poller.modify(sock.inner(), Event::none(token));
    }

    /// Serves the connection on the reactor thread soon, without waiting for its socket: for
    /// a stream with bytes already buffered in this process.
    pub fn serve_now(&self, token: usize) {
        if !self.owned() {
            return;
        }
        self.ready.lock().push(token);
        self.kick();
    }

    /// Asks for the connection to be armed once its owner has been quiet for a moment.
    pub fn schedule(&self, conn: Weak<Conn>) {
        if !self.owned() {
            return;
        }
        self.pending.lock().push(conn);
        if !self.has_pending.swap(true, Ordering::AcqRel) {
            self.kick();
        }
    }

    fn kick(&self) {
        let _ = self.poller.notify();
    }

    fn run(self: Arc<Self>) {
        let mut events = Events::with_capacity(std::num::NonZeroUsize::new(64).expect("non-zero"));
        loop {
            let timeout = if self.has_pending.load(Ordering::Acquire) { Some(TICK) } else { None };
            events.clear();
            if let Err(e) = self.poller.wait(&mut events, timeout) {
                log::error!(target: "websocket", "reactor stopped: waiting for sockets failed: {e}");
                return;
            }
            for ev in events.iter() {
                self.serve(ev.key, Ready::from_event(&ev));
            }
            let ready = std::mem::take(&mut *self.ready.lock());
            for token in ready {
                self.serve(token, Ready::READABLE);
            }
            if self.has_pending.load(Ordering::Acquire) {
                // A panic here must not end the thread every connection depends on.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.process_pending())).is_err() {
                    log::error!(target: "websocket", "reactor: internal error while arming connections");
                    self.pending.lock().clear();
                    self.has_pending.store(false, Ordering::Release);
                }
            }
        }
    }

    fn serve(&self, token: usize, flags: Ready) {
        let conn = {
            let s = self.slots.lock();
            s.conns.get(token).and_then(|c| c.as_ref()).and_then(|w| w.upgrade())
        };
        if let Some(conn) = conn {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                #[cfg(test)]
                if *super::robustness_tests::PANIC_ON.lock() == Some(conn.fd()) {
                    panic!("injected by a test");
                }
                conn.on_event(flags)
            }));
            if outcome.is_err() {
                conn.poison("internal error in the reactor");
            }
        }
    }

    fn process_pending(&self) {
        let list = std::mem::take(&mut *self.pending.lock());
        let now = Instant::now();
        let mut keep = Vec::new();
        for weak in list {
            if let Some(conn) = weak.upgrade() {
                if !conn.try_arm(now) {
                    keep.push(weak);
                }
            }
        }
        let mut p = self.pending.lock();
        p.extend(keep);
        self.has_pending.store(!p.is_empty(), Ordering::Release);
    }
}
