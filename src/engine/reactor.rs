//! One background thread, shared by every connection, that reads sockets nobody is reading.
//!
//! A connection is watched (epoll, one-shot) only while no Python thread is inside `recv()`.
//! After `recv()` returns the connection is put on a pending list and armed a little later,
//! once its owner has been quiet for `QUIET`; a tight send/recv loop therefore never pays for
//! epoll_ctl calls or reactor wake-ups, while a connection whose owner is busy elsewhere has
//! its pings answered within a few milliseconds.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::conn::Conn;

const WAKE_TOKEN: u64 = u64::MAX;
/// How long a connection's owner must have been out of `recv()` before the reactor takes
/// over reading it.
pub const QUIET: Duration = Duration::from_millis(1);
/// A connection whose owner went back into `recv()` within this time of its last return
/// stays on the pending list: in a send/recv loop each return would otherwise wake this
/// thread (an eventfd write, a context switch and an epoll_wait per message, on the CPU the
/// owner runs on), while a tick every TICK_MS serves the whole list.
pub const STAY_PENDING: Duration = Duration::from_millis(10);
const TICK_MS: i32 = 2;

static CURRENT: Mutex<Option<Arc<Reactor>>> = Mutex::new(None);

extern "C" fn atfork_prepare() {
    std::mem::forget(CURRENT.lock());
}

extern "C" fn atfork_release() {
    // SAFETY: locked by atfork_prepare in this thread (the child's only thread is a copy of
    // it), and the guard was forgotten.
    unsafe { CURRENT.force_unlock() };
}

pub struct Reactor {
    epfd: OwnedFd,
    wake: OwnedFd,
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
        ATFORK.call_once(|| unsafe {
            libc::pthread_atfork(Some(atfork_prepare), Some(atfork_release), Some(atfork_release));
        });
        let mut cur = CURRENT.lock();
        let pid = std::process::id();
        if let Some(r) = cur.as_ref().filter(|r| r.pid == pid) {
            return Ok(r.clone());
        }
        let r = Arc::new(Reactor::new()?);
        let thread_ref = r.clone();
        std::thread::Builder::new()
            .name("websocket-reactor".into())
            .stack_size(256 * 1024)
            .spawn(move || thread_ref.run())?;
        *cur = Some(r.clone());
        Ok(r)
    }

    /// False in a forked child for the parent's reactor: its thread did not survive the
    /// fork, and its epoll instance is shared with the parent, so the child must not change
    /// it (an inherited connection dropped in the child would otherwise stop the parent's
    /// reactor from watching that socket).
    fn owned(&self) -> bool {
        self.pid == std::process::id()
    }

    fn new() -> std::io::Result<Reactor> {
        unsafe {
            let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            if ep < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let epfd = OwnedFd::from_raw_fd(ep);
            let w = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
            if w < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let wake = OwnedFd::from_raw_fd(w);
            let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: WAKE_TOKEN };
            if libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, w, &mut ev) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(Reactor {
                epfd,
                wake,
                slots: Mutex::new(Slots::default()),
                pending: Mutex::new(Vec::new()),
                has_pending: AtomicBool::new(false),
                ready: Mutex::new(Vec::new()),
                pid: std::process::id(),
            })
        }
    }

    /// Registers a connection's socket, disarmed; returns its token.
    pub fn register(&self, conn: &Arc<Conn>, fd: RawFd) -> usize {
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
        let mut ev = libc::epoll_event { events: libc::EPOLLONESHOT as u32, u64: token as u64 };
        unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        token
    }

    pub fn deregister(&self, token: usize, fd: RawFd) {
        if !self.owned() {
            return;
        }
        unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
        let mut s = self.slots.lock();
        if token < s.conns.len() {
            s.conns[token] = None;
            s.free.push(token);
        }
    }

    /// Arms the one-shot watch: readable when `read` is set (not while flow control has
    /// paused reading), writable when `write` is set.
    pub fn arm(&self, token: usize, fd: RawFd, read: bool, write: bool) {
        if !self.owned() {
            return;
        }
        let mut events = libc::EPOLLONESHOT as u32;
        if read {
            events |= (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        }
        if write {
            events |= libc::EPOLLOUT as u32;
        }
        let mut ev = libc::epoll_event { events, u64: token as u64 };
        unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_MOD, fd, &mut ev) };
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
        let one: u64 = 1;
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn run(self: Arc<Self>) {
        let mut events: Vec<libc::epoll_event> = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            let timeout = if self.has_pending.load(Ordering::Acquire) { TICK_MS } else { -1 };
            let n = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, timeout) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!(target: "websocket", "reactor stopped: epoll_wait failed: {e}");
                return;
            }
            for ev in &events[..n as usize] {
                let (token, flags) = (ev.u64, ev.events);
                if token == WAKE_TOKEN {
                    let mut buf = 0u64;
                    unsafe { libc::read(self.wake.as_raw_fd(), (&mut buf as *mut u64).cast(), 8) };
                    continue;
                }
                self.serve(token as usize, flags);
            }
            let ready = std::mem::take(&mut *self.ready.lock());
            for token in ready {
                self.serve(token, libc::EPOLLIN as u32);
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

    fn serve(&self, token: usize, flags: u32) {
        let conn = {
            let s = self.slots.lock();
            s.conns.get(token).and_then(|c| c.as_ref()).and_then(|w| w.upgrade())
        };
        if let Some(conn) = conn {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                #[cfg(test)]
                if conn.fd() == super::robustness_tests::PANIC_ON_FD.load(Ordering::SeqCst) {
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
