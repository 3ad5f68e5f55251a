//! A live connection: the read side (codec, message queue) and the write side (frame writer,
//! outbox for control replies), shared between Python threads and the reactor.
//!
//! Locks: `read` and `write` are independent; a reader may `try_lock` the write side, a
//! writer never touches the read side. No lock is held while waiting for the GIL.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::error::{Error, Terminal};
use super::reactor::{self, Reactor, Ready};
use crate::trace;
use crate::protocol::codec::{Config, Item, Mode, Reply, TracedFrame, ADOPT_MIN};
use crate::protocol::frame::{self, OP_CLOSE, OP_PONG};
use crate::protocol::receiver::{Ended, Receiver};
use crate::protocol::sender::{encode_failure, encode_reply, CloseSent, Sender};
use crate::transport::readiness::Readiness;
use crate::transport::socket::Wait;
use crate::transport::stream::{ReadOutcome, Stream};
use crate::transport::sys::RawSock;
use crate::transport::{Deadline, Interrupt, NetError};

/// Flow control: the reactor stops reading a connection whose queue holds more than this
/// (Python is not keeping up), and resumes below LOW_WATER.
pub const HIGH_WATER: usize = 64 * 1024 * 1024;
pub const LOW_WATER: usize = 16 * 1024 * 1024;
/// Unsent pongs kept at most; past this the peer is not reading what we send, and further
/// pongs are dropped (RFC 6455 5.5.3 lets an endpoint answer only the latest ping).
const MAX_PONG_BACKLOG: usize = 256 * 1024;
/// Largest read the reactor does for one connection before looking at the others.
const REACTOR_BUDGET: usize = 1024 * 1024;
const SCRATCH: usize = 64 * 1024;
/// How long the close frame that fails a connection may take to go out.
const FAIL_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest single wait of a reader that no interrupt can reach (see `wait_for`).
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// Frame buffers above this are released after use, so idle connections stay small.
const KEEP_CAPACITY: usize = 64 * 1024;

thread_local! {
    /// The read buffer of TLS connections (rustls copies plaintext into initialised memory).
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH]);
    /// The read buffer of plain connections (read into its spare capacity). A large
    /// message that arrives whole in one read takes it over as its payload
    /// (`Receiver::receive_read`), and the next read allocates another.
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

struct ReadSide {
    /// The protocol's receiving half: codec, queue, peer close, failure.
    rx: Receiver,
    /// A thread (Python or the reactor) is reading the socket right now.
    reading: bool,
    /// The reactor's one-shot watch is armed.
    armed: bool,
    /// On the reactor's pending list.
    pending_arm: bool,
    /// Flow control: reading paused until the queue drains.
    paused: bool,
    /// Arm again as soon as recv() returns (select() readiness is in use).
    eager: bool,
    /// Why the transport stopped (EOF, a reset, a TLS error); a protocol failure is the
    /// receiver's. Kept so every later call reports the same.
    transport_end: Option<Terminal>,
    /// When the owner last left a waiting `recv` (the reactor waits QUIET after it).
    last_exit: Instant,
    /// Messages taken without waiting (`try_recv_queued`), and how many the reactor had
    /// seen at its last look: a take since then counts as the owner being back within a
    /// tick. A counter, not a clock read per message: on this VM `Instant::now()` was 6%
    /// of a queued 100-byte message's whole cost (bench/RESULTS.md, push100).
    quick_takes: u64,
    quick_takes_seen: u64,
    ready_signalled: bool,
    /// Frames re-encoded for `recv_raw` and not handed over yet.
    raw_out: Vec<u8>,
}

impl ReadSide {
    /// Nothing more will be read: the transport ended or the protocol failed.
    fn stopped(&self) -> bool {
        self.transport_end.is_some() || self.rx.bytes_wanted() == 0
    }

    /// A take would not wait.
    fn has_item(&self) -> bool {
        self.rx.has_item() || self.transport_end.is_some()
    }
}

struct WriteSide {
    /// Wire bytes accepted but not yet sent (from non-blocking attempts).
    pending: Vec<u8>,
    /// The protocol's sending half (framing, masking, compression).
    sender: Sender,
    scratch: Vec<u8>,
    /// Where the bytes the caller writes through `ws.sock.send` stand: our own frames go
    /// out only between theirs.
    raw: frame::Boundary,
}

/// What `Conn::try_send_frame` did.
#[derive(Debug)]
pub enum TrySend {
    /// The whole frame went out; its length on the wire.
    Done(usize),
    /// The frame was taken (its length), part of it waits: call `finish_send`.
    Rest(usize),
    /// Nothing was done: use `send_frame`.
    NotNow,
    Failed(Error),
}

pub struct Conn {
    stream: Stream,
    read: Mutex<ReadSide>,
    read_cv: Condvar,
    write: Mutex<WriteSide>,
    outbox: Mutex<Vec<u8>>,
    outbox_flag: AtomicBool,
    want_write: AtomicBool,
    close: CloseSent,
    /// Readable while an item is waiting (for select() on `ws.sock`); made on first use.
    ready: OnceLock<Readiness>,
    reactor: Arc<Reactor>,
    /// The reactor's token while the socket is registered (taken at shutdown or drop).
    token: Mutex<Option<usize>>,
    /// `shutdown()` shut the socket down already.
    shut_down: AtomicBool,
}

fn wait(dontwait: bool) -> Wait {
    if dontwait {
        Wait::Now
    } else {
        Wait::Slice
    }
}

fn random_mask() -> [u8; 4] {
    rand::random()
}

impl Conn {
    /// Wraps a connected, handshaken stream; `leftover` is what followed the handshake.
    pub fn new(stream: Stream, cfg: Config, leftover: &[u8]) -> Result<Arc<Conn>, Error> {
        let reactor = Reactor::get().map_err(|e| Error::Net(NetError::Io(e)))?;
        let sender = Sender::new(cfg.deflate.as_ref());
        let conn = Arc::new(Conn {
            stream,
            read: Mutex::new(ReadSide {
                rx: Receiver::new(cfg),
                reading: false,
                armed: false,
                pending_arm: false,
                paused: false,
                eager: false,
                transport_end: None,
                last_exit: Instant::now(),
                quick_takes: 0,
                quick_takes_seen: 0,
                ready_signalled: false,
                raw_out: Vec::new(),
            }),
            read_cv: Condvar::new(),
            write: Mutex::new(WriteSide { pending: Vec::new(), sender, scratch: Vec::new(), raw: frame::Boundary::default() }),
            outbox: Mutex::new(Vec::new()),
            outbox_flag: AtomicBool::new(false),
            want_write: AtomicBool::new(false),
            close: CloseSent::new(),
            ready: OnceLock::new(),
            reactor,
            token: Mutex::new(None),
            shut_down: AtomicBool::new(false),
        });
        // Watch from the start: a server may push before the first recv(). Armed now rather
        // than through the reactor's pending list, which would wake its thread (a notify and
        // a poller wait, on the CPU Python runs on) for every connection opened.
        if leftover.is_empty() && !conn.stream.has_buffered() {
            // The usual case: registered armed, in one poller call. Under the read lock, so
            // that an event arriving at once finds `armed` set (the reactor takes this lock).
            {
                let mut st = conn.read.lock();
                let token = conn.reactor.register(&conn, conn.stream.socket(), true);
                *conn.token.lock() = Some(token);
                st.armed = true;
            }
            return Ok(conn);
        }
        let token = conn.reactor.register(&conn, conn.stream.socket(), false);
        *conn.token.lock() = Some(token);
        if !leftover.is_empty() {
            let mut st = conn.read.lock();
            let replies = conn.feed(&mut st, leftover);
            drop(st);
            conn.send_replies(replies);
        }
        conn.arm_now(&mut conn.read.lock());
        Ok(conn)
    }

    pub fn fd(&self) -> RawSock {
        self.stream.raw_socket()
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    pub fn close_sent(&self) -> bool {
        self.close.is_set()
    }

    // ---- configuration ----------------------------------------------------------------

    pub fn set_mode(&self, mode: Mode) {
        self.read.lock().rx.set_mode(mode);
    }

    pub fn set_skip_utf8(&self, skip: bool) {
        self.read.lock().rx.set_skip_utf8(skip);
    }

    pub fn set_max_message(&self, max: Option<u64>) {
        self.read.lock().rx.set_max_message(max);
    }

    // ---- reading ------------------------------------------------------------------------

    /// Feeds bytes to the receiver under the read lock; returns the replies to send.
    fn feed(&self, st: &mut ReadSide, data: &[u8]) -> Vec<Reply> {
        let mut replies = Vec::new();
        let mut traced = Vec::new();
        let tracing = trace::enabled();
        let progress = st.rx.receive(data, &mut replies, tracing.then_some(&mut traced));
        self.after_feed(st, progress, traced);
        replies
    }

    /// `feed` for the buffer a read filled, which the receiver may keep (see `READ_BUF`);
    /// returns the replies, and the buffer when it was not kept.
    fn feed_read(&self, st: &mut ReadSide, buf: Vec<u8>) -> (Vec<Reply>, Option<Vec<u8>>) {
        let mut replies = Vec::new();
        let mut traced = Vec::new();
        let tracing = trace::enabled();
        let (progress, back) = st.rx.receive_read(buf, ADOPT_MIN, &mut replies, tracing.then_some(&mut traced));
        self.after_feed(st, progress, traced);
        (replies, back)
    }

    fn after_feed(&self, st: &mut ReadSide, progress: bool, traced: Vec<TracedFrame>) {
        for t in &traced {
            let mut raw = Vec::new();
            frame::encode_frame(&mut raw, t.fin, t.rsv, t.opcode, &t.payload, None);
            trace::frame("Rcv", &raw, t.fin, t.opcode, &t.payload);
        }
        if progress {
            self.read_cv.notify_all();
        }
        self.update_ready(st);
    }

    /// One read by the current reader (the caller has set `reading`); the lock is released
    /// during the socket call. Returns false on WouldBlock.
    fn read_step(&self, st: &mut MutexGuard<'_, ReadSide>, dontwait: bool) -> (bool, Vec<Reply>, usize) {
        let mut replies = Vec::new();
        if let Some(remaining) = st.rx.direct_read_hint() {
            // Large payload: read straight into the message buffer.
            let mut buf = st.rx.take_buffer();
            let want = remaining.min(4 << 20) as usize;
            let res = MutexGuard::unlocked(st, || self.stream.read_into(&mut buf, want, wait(dontwait)));
            let added = match &res {
                Ok(ReadOutcome::Data(n)) => *n,
                _ => 0,
            };
            let mut traced = Vec::new();
            let tracing = trace::enabled();
            let progress = st.rx.return_buffer(buf, added, &mut replies, tracing.then_some(&mut traced));
            self.after_feed(st, progress, traced);
            return self.finish_read(st, res, replies, added);
        }
        if !self.stream.is_tls() {
            // Taken out of the thread's slot for the read (a panic in between only costs a
            // new allocation), put back unless the receiver kept it.
            let mut buf = READ_BUF.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
            buf.clear();
            let res = MutexGuard::unlocked(st, || self.stream.read_into(&mut buf, SCRATCH, wait(dontwait)));
            let (out, back) = match res {
                Ok(ReadOutcome::Data(n)) => {
                    let (replies, back) = self.feed_read(st, buf);
                    ((true, replies, n), back)
                }
                other => (self.finish_read(st, other, replies, 0), Some(buf)),
            };
            if let Some(buf) = back {
                READ_BUF.with(|cell| *cell.borrow_mut() = buf);
            }
            return out;
        }
        SCRATCH_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            let res = MutexGuard::unlocked(st, || self.stream.read(&mut buf, wait(dontwait)));
            match res {
                Ok(ReadOutcome::Data(n)) => {
                    let replies = self.feed(st, &buf[..n]);
                    (true, replies, n)
                }
                other => self.finish_read(st, other, replies, 0),
            }
        })
    }

    fn finish_read(
        &self,
        st: &mut ReadSide,
        res: Result<ReadOutcome, NetError>,
        replies: Vec<Reply>,
        n: usize,
    ) -> (bool, Vec<Reply>, usize) {
        match res {
            Ok(ReadOutcome::Data(_)) => (true, replies, n),
            Ok(ReadOutcome::WouldBlock) => (false, replies, 0),
            Ok(ReadOutcome::Eof) => {
                if st.transport_end.is_none() {
                    st.transport_end = Some(Terminal::Eof);
                }
                self.read_cv.notify_all();
                self.update_ready(st);
                (true, replies, 0)
            }
            Err(e) => {
                if st.transport_end.is_none() {
                    st.transport_end = Some(match e {
                        NetError::Tls(t) => Terminal::Tls(t),
                        other => Terminal::Broken(format!("Connection to remote host was lost. ({other})")),
                    });
                }
                self.read_cv.notify_all();
                self.update_ready(st);
                (true, replies, 0)
            }
        }
    }

    /// Waits until `take` yields something, reading the socket inline when nobody else is.
    fn wait_for<T>(
        self: &Arc<Self>,
        timeout: Option<Duration>,
        interrupt: Interrupt<'_>,
        mut take: impl FnMut(&mut Receiver) -> Option<Result<T, Error>>,
    ) -> Result<T, Error> {
        let deadline = Deadline::after(timeout);
        let mut st = self.read.lock();
        // Set when a read made progress past the deadline: bytes trickling in without
        // completing an item must not hold the caller beyond its timeout.
        let mut overdue = false;
        let result = loop {
            if let Some(r) = take(&mut st.rx) {
                break r;
            }
            match st.rx.ended() {
                Some(Ended::Failed(f)) => {
                    if let Some(code) = st.rx.take_owed_close() {
                        MutexGuard::unlocked(&mut st, || self.fail_connection(code));
                    }
                    break Err(Error::Protocol(f));
                }
                // The close frame was delivered: nothing more will come.
                Some(Ended::Closed) => break Err(Error::Closed("Connection to remote host was lost.".into())),
                None => {}
            }
            if let Some(t) = &st.transport_end {
                break Err(t.to_error());
            }
            if overdue {
                break Err(Error::timeout());
            }
            if st.reading {
                // The reactor is reading this connection; it will notify.
                self.read_cv.wait_for(&mut st, deadline.slice());
            } else {
                // A deadline closer than one wait slice: poll for exactly the time left
                // instead of a blocking read that could overshoot it.
                let short = deadline.remaining().filter(|r| *r < crate::transport::SLICE);
                // Read here, not by the reactor: its watch would only wake it for what this
                // thread reads anyway.
                self.disarm_for_reading(&mut st);
                st.reading = true;
                let (progress, replies, _) = self.read_step(&mut st, short.is_some());
                st.reading = false;
                // Queued before another reader can take what came with them (see on_event).
                if !replies.is_empty() && self.queue_replies(replies) {
                    MutexGuard::unlocked(&mut st, || self.flush_outbox());
                }
                if progress {
                    overdue = deadline.expired();
                    continue;
                }
                if let Some(left) = short {
                    let socket = self.stream.socket();
                    MutexGuard::unlocked(&mut st, || socket.wait_readable(left)).ok();
                    if !deadline.expired() {
                        continue;
                    }
                } else if !crate::transport::interruptible_here() {
                    // A whole slice passed with nothing, and no Ctrl-C can reach this thread:
                    // one wait until the socket is readable or the deadline passes (capped,
                    // to look around now and then), instead of a wake-up every slice. Still
                    // the reader meanwhile; shutdown() makes the socket readable (EOF).
                    let socket = self.stream.socket();
                    let wait = deadline.remaining().unwrap_or(IDLE_WAIT).min(IDLE_WAIT);
                    st.reading = true;
                    MutexGuard::unlocked(&mut st, || socket.wait_readable(wait)).ok();
                    st.reading = false;
                    if !deadline.expired() {
                        continue;
                    }
                }
            }
            if deadline.expired() {
                break Err(Error::timeout());
            }
            if MutexGuard::unlocked(&mut st, interrupt) {
                break Err(Error::Net(NetError::Interrupted));
            }
        };
        st.last_exit = Instant::now();
        self.resume_if_drained(&mut st);
        self.update_ready(&mut st);
        self.schedule_arm(&mut st);
        result
    }

    /// The next message: data fragments joined (the codec queues checked fragments, so
    /// `recv_frame` can still see them one by one), control frames as they come. Pings and
    /// pongs are skipped unless `control` is set. In raw mode items pass through untouched.
    pub fn recv(self: &Arc<Self>, control: bool, timeout: Option<Duration>, interrupt: Interrupt<'_>) -> Result<Item, Error> {
        self.wait_for(timeout, interrupt, |rx| rx.take_message(control).map(Ok))
    }

    /// `recv` for a message that is already queued: never waits, not even for the read
    /// lock (a caller that holds the GIL uses it before detaching), so None only means "go
    /// the slow way". The exit bookkeeping is `wait_for`'s.
    pub fn try_recv_queued(self: &Arc<Self>, control: bool) -> Option<Item> {
        let mut st = self.read.try_lock()?;
        if st.rx.is_empty() {
            return None;
        }
        let item = st.rx.take_message(control)?;
        st.quick_takes = st.quick_takes.wrapping_add(1);
        self.resume_if_drained(&mut st);
        self.update_ready(&mut st);
        self.schedule_arm(&mut st);
        Some(item)
    }

    /// The next frame as it arrived (fragments not joined); pings/pongs only if `control`.
    pub fn recv_frame(self: &Arc<Self>, control: bool, timeout: Option<Duration>, interrupt: Interrupt<'_>) -> Result<Item, Error> {
        self.wait_for(timeout, interrupt, |rx| rx.take_frame(control).map(Ok))
    }

    /// Up to `max` items at once (at least one), for callback dispatch: messages joined
    /// unless `fragments` is set; every control frame included.
    pub fn recv_batch(
        self: &Arc<Self>,
        max: usize,
        fragments: bool,
        timeout: Option<Duration>,
        interrupt: Interrupt<'_>,
    ) -> Result<Vec<Item>, Error> {
        self.wait_for(timeout, interrupt, |rx| {
            let items = rx.take_batch(max, fragments);
            (!items.is_empty()).then_some(Ok(items))
        })
    }

    /// Whether an item is queued (a recv would not block).
    pub fn has_item(&self) -> bool {
        self.read.lock().has_item()
    }

    fn resume_if_drained(&self, st: &mut ReadSide) {
        if st.paused && st.rx.queued_bytes() < LOW_WATER {
            st.paused = false;
        }
    }

    // ---- the reactor side ---------------------------------------------------------------

    /// Puts the connection on the reactor's pending list (or arms it now in eager mode).
    fn schedule_arm(self: &Arc<Self>, st: &mut ReadSide) {
        if st.armed || st.pending_arm || st.stopped() || st.paused {
            return;
        }
        if st.eager {
            self.arm_now(st);
            return;
        }
        if self.token.lock().is_none() {
            return; // out of the reactor (closing): waking its thread would be for nothing
        }
        st.pending_arm = true;
        self.reactor.schedule(Arc::downgrade(self));
    }

    fn arm_now(&self, st: &mut ReadSide) {
        // While flow control has paused reading, only unsent control replies are watched.
        let read = !st.paused;
        let write = self.want_write.load(Ordering::Acquire);
        if !read && !write {
            return;
        }
        if let Some(token) = *self.token.lock() {
            st.armed = true;
            if read && self.stream.has_buffered() {
                // TLS records already read from the socket: no readiness event will come.
                self.reactor.serve_now(token);
            } else {
                self.reactor.arm(token, self.stream.socket(), read, write);
            }
        }
    }

    /// Withdraws an armed read watch before a Python thread reads the socket itself (kept
    /// while unsent control replies need the write side watched).
    fn disarm_for_reading(&self, st: &mut ReadSide) {
        if !st.armed || self.want_write.load(Ordering::Acquire) {
            return;
        }
        if let Some(token) = *self.token.lock() {
            self.reactor.disarm(token, self.stream.socket());
        }
        st.armed = false;
    }

    /// Called by the reactor for pending connections; true when done with it.
    pub(super) fn try_arm(&self, now: Instant) -> bool {
        let Some(mut st) = self.read.try_lock() else { return false };
        if st.reading && now.duration_since(st.last_exit) < reactor::STAY_PENDING && !st.stopped() {
            // The owner is back inside recv() soon after its last one (a send/recv loop):
            // kept on the list, so its next return does not wake the reactor again. Dropped
            // once it was away that long, so a thread blocked in recv() costs no ticks.
            return false;
        }
        if st.reading || st.stopped() || st.paused || st.armed {
            st.pending_arm = false;
            return true;
        }
        if now.duration_since(st.last_exit) < reactor::QUIET {
            return false;
        }
        if st.quick_takes != st.quick_takes_seen {
            // The owner took queued messages since the last look: still busy with them.
            st.quick_takes_seen = st.quick_takes;
            return false;
        }
        st.pending_arm = false;
        self.arm_now(&mut st);
        true
    }

    /// The reactor saw the socket ready.
    pub(super) fn on_event(self: &Arc<Self>, events: Ready) {
        if events.writable {
            self.flush_nonblocking();
        }
        let mut st = self.read.lock();
        st.armed = false;
        if st.reading || st.stopped() {
            return;
        }
        if st.paused {
            // Armed for the write side only: reading stays paused until Python drains the
            // queue (resume_if_drained). A hung-up socket is reported whatever was asked.
            if !events.hangup {
                self.arm_now(&mut st);
            }
            return;
        }
        let mut queued = false;
        let mut budget = REACTOR_BUDGET;
        st.reading = true;
        loop {
            let (progress, replies, n) = self.read_step(&mut st, true);
            // Queued before the read lock is let go (the next read_step does, around its
            // socket call): a reader that takes the items read with them then cannot send
            // a frame that overtakes them.
            if !replies.is_empty() && self.queue_replies(replies) {
                queued = true;
            }
            if !progress || st.stopped() {
                break;
            }
            budget = budget.saturating_sub(n.max(1));
            if budget == 0 {
                break;
            }
            if st.rx.queued_bytes() > HIGH_WATER {
                st.paused = true;
                break;
            }
        }
        st.reading = false;
        self.read_cv.notify_all();
        if !st.stopped() && !st.paused {
            self.arm_now(&mut st);
        }
        drop(st);
        if queued {
            self.flush_outbox();
        }
    }

    /// Marks the connection broken after an internal error (a caught panic).
    pub fn poison(&self, why: &str) {
        let mut st = self.read.lock();
        st.reading = false;
        if st.transport_end.is_none() {
            st.transport_end = Some(Terminal::Broken(why.to_string()));
        }
        self.read_cv.notify_all();
        drop(st);
        self.stream.shutdown();
    }

    // ---- select() readiness -------------------------------------------------------------

    /// A handle that is readable exactly while an item is queued (and always writable);
    /// created on first use.
    pub fn readiness_fd(self: &Arc<Self>) -> std::io::Result<RawSock> {
        if let Some(r) = self.ready.get() {
            return Ok(r.raw());
        }
        let mut st = self.read.lock();
        if let Some(r) = self.ready.get() {
            return Ok(r.raw());
        }
        // Set under the read lock: no other thread sets it meanwhile.
        let _ = self.ready.set(Readiness::new()?);
        let new = self.ready.get().expect("set above").raw();
        st.eager = true;
        st.ready_signalled = false;
        self.update_ready(&mut st);
        if !st.reading {
            self.arm_now(&mut st);
        }
        Ok(new)
    }

    fn update_ready(&self, st: &mut ReadSide) {
        let Some(ready) = self.ready.get() else { return };
        let want = st.has_item();
        if want == st.ready_signalled {
            return;
        }
        ready.set(want);
        st.ready_signalled = want;
    }

    // ---- writing ------------------------------------------------------------------------

    /// Sends one frame (compressed when permessage-deflate is on, see `Sender::encode`);
    /// returns its length on the wire. Frames of several threads never interleave.
    #[allow(clippy::too_many_arguments)]
    pub fn send_frame(
        &self,
        fin: bool,
        rsv: u8,
        opcode: u8,
        payload: &[u8],
        mask: Option<[u8; 4]>,
        timeout: Option<Duration>,
        interrupt: Interrupt<'_>,
    ) -> Result<usize, Error> {
        let mask = mask.unwrap_or_else(random_mask);
        if opcode == OP_CLOSE {
            // A close frame built by the caller counts as our close.
            self.close.claim();
        }
        let mut guard = self.write.lock();
        let w = &mut *guard;
        if !w.raw.at_boundary() {
            return Err(Error::Value("a frame written through ws.sock.send() is incomplete: send the rest of it first".into()));
        }
        self.outbox_to_pending(w);
        let len = Self::encode_frame(w, fin, rsv, opcode, payload, mask);
        let res = self.write_locked(w, None, timeout, interrupt);
        drop(guard);
        self.flush_outbox_if_queued();
        res?;
        Ok(len)
    }

    /// One frame into `w.scratch` (traced when tracing is on); its length on the wire.
    fn encode_frame(w: &mut WriteSide, fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: [u8; 4]) -> usize {
        w.scratch.clear();
        let len = w.sender.encode(fin, rsv, opcode, payload, mask, &mut w.scratch);
        if trace::enabled() {
            trace::frame("Sent", &w.scratch, fin, opcode, payload);
        }
        len
    }

    /// Control replies queued while a writer held the write side go out now.
    fn flush_outbox_if_queued(&self) {
        if self.outbox_flag.load(Ordering::SeqCst) {
            self.flush_outbox();
        }
    }

    /// `send_frame` without waiting for anything, for a caller that would otherwise give up
    /// the GIL around a write that almost always completes at once (bench/RESULTS.md, rt64):
    /// the write lock is free, nothing waits to go out before the frame, and the socket
    /// takes what it can now. `NotNow` when nothing was done (close frames, a busy lock,
    /// bytes pending, a caller's raw frame half written: `send_frame` handles those);
    /// `Rest` when the frame was taken but part of it waits in `pending`: `finish_send`
    /// writes it, waiting as `send_frame` would.
    pub fn try_send_frame(&self, fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> TrySend {
        if opcode == OP_CLOSE {
            return TrySend::NotNow;
        }
        let Some(mut guard) = self.write.try_lock() else { return TrySend::NotNow };
        let w = &mut *guard;
        if !w.raw.at_boundary() {
            return TrySend::NotNow;
        }
        self.outbox_to_pending(w);
        if !w.pending.is_empty() {
            return TrySend::NotNow;
        }
        let len = Self::encode_frame(w, fin, rsv, opcode, payload, mask.unwrap_or_else(random_mask));
        // Once sealed (TLS), the record must go out as it is: whatever the socket does not
        // take now waits in `pending`, as after a write that timed out.
        let scratch = std::mem::take(&mut w.scratch);
        let outcome = match self.stream.seal(&scratch) {
            Err(e) => TrySend::Failed(e.into()),
            Ok(wire) => match self.stream.try_send_wire(&wire) {
                Ok(n) if n == wire.len() => TrySend::Done(len),
                Ok(n) => {
                    w.pending.extend_from_slice(&wire[n..]);
                    TrySend::Rest(len)
                }
                Err(e) => {
                    w.pending.extend_from_slice(&wire);
                    self.watch_pending();
                    TrySend::Failed(e.into())
                }
            },
        };
        if scratch.capacity() <= KEEP_CAPACITY {
            w.scratch = scratch;
        }
        drop(guard);
        self.flush_outbox_if_queued();
        outcome
    }

    /// Bytes wait in `pending` after a write that did not finish: the reactor sends them
    /// once the socket takes them.
    fn watch_pending(&self) {
        self.want_write.store(true, Ordering::Release);
        if let Some(mut st) = self.read.try_lock() {
            if !st.reading && !st.stopped() {
                self.arm_now(&mut st);
            }
        }
    }

    /// Writes what `try_send_frame` left pending, waiting up to `timeout`.
    pub fn finish_send(&self, timeout: Option<Duration>, interrupt: Interrupt<'_>) -> Result<(), Error> {
        let mut guard = self.write.lock();
        let w = &mut *guard;
        let mut sent = 0;
        let res = self.stream.send_wire_counted(&w.pending, &mut sent, timeout, interrupt);
        w.pending.drain(..sent);
        if res.is_err() && !w.pending.is_empty() {
            self.watch_pending();
        }
        drop(guard);
        self.flush_outbox_if_queued();
        Ok(res?)
    }

    /// Writes what `w.scratch` holds (or `plain`), after any bytes still pending, under the
    /// write lock; the scratch buffer is released when it grew large.
    ///
    /// A frame is never cut by another: when a write times out (or is interrupted) part-way,
    /// what is left of it stays in `pending`, goes out first at the next write, and the
    /// reactor sends it meanwhile once the socket takes it. The frame being written when
    /// that happens goes out too, whole: it was encoded (the compressor and the TLS record
    /// sequence have moved past it), so dropping it would corrupt the stream.
    fn write_locked(&self, w: &mut WriteSide, plain: Option<&[u8]>, timeout: Option<Duration>, interrupt: Interrupt<'_>) -> Result<(), Error> {
        let scratch = std::mem::take(&mut w.scratch);
        let wire = self.stream.seal(plain.unwrap_or(&scratch))?;
        let mut res = Ok(());
        if !w.pending.is_empty() {
            let mut sent = 0;
            res = self.stream.send_wire_counted(&w.pending, &mut sent, timeout, interrupt);
            w.pending.drain(..sent);
        }
        if res.is_ok() {
            let mut sent = 0;
            res = self.stream.send_wire_counted(&wire, &mut sent, timeout, interrupt);
            if res.is_err() {
                w.pending.extend_from_slice(&wire[sent..]);
            }
        } else {
            w.pending.extend_from_slice(&wire);
        }
        if res.is_err() && !w.pending.is_empty() {
            self.watch_pending();
        }
        if w.pending.capacity() > KEEP_CAPACITY && w.pending.is_empty() {
            w.pending = Vec::new();
        }
        drop(wire);
        if scratch.capacity() <= KEEP_CAPACITY {
            w.scratch = scratch;
        }
        Ok(res?)
    }

    /// Writes bytes the caller formatted (frames, as `ABNF.format()` makes them) in order
    /// with our own frames: control replies wait until the caller's stream stands between
    /// two frames.
    pub fn send_raw(&self, data: &[u8], timeout: Option<Duration>, interrupt: Interrupt<'_>) -> Result<(), Error> {
        let mut w = self.write.lock();
        self.outbox_to_pending(&mut w);
        w.raw.feed(data);
        let res = self.write_locked(&mut w, Some(data), timeout, interrupt);
        drop(w);
        self.flush_outbox_if_queued();
        res
    }

    /// Up to `max` bytes of the server's frame stream, for code that parses frames itself
    /// (`ws.sock.recv`): frames still queued are re-encoded as they arrived (unmasked,
    /// inflated ones without RSV1), and later frames come through untouched (raw mode).
    /// Empty once the stream ended.
    pub fn recv_raw(self: &Arc<Self>, max: usize, timeout: Option<Duration>, interrupt: Interrupt<'_>) -> Result<Vec<u8>, Error> {
        let mut st = self.read.lock();
        if st.rx.config().mode != Mode::Raw {
            st.rx.set_mode(Mode::Raw);
        }
        if st.raw_out.is_empty() {
            drop(st);
            let item = match self.recv_frame(true, timeout, interrupt) {
                Ok(item) => item,
                Err(Error::Closed(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            st = self.read.lock();
            frame::encode_frame(&mut st.raw_out, item.fin, item.rsv, item.opcode, &item.data, None);
        }
        let n = max.min(st.raw_out.len());
        let rest = st.raw_out.split_off(n);
        Ok(std::mem::replace(&mut st.raw_out, rest))
    }

    /// Sends our close frame once; later calls do nothing.
    pub fn send_close(&self, payload: &[u8], timeout: Option<Duration>, interrupt: Interrupt<'_>) -> Result<bool, Error> {
        let mut frame = Vec::new();
        if !Sender::encode_close(&self.close, payload, random_mask(), &mut frame) {
            return Ok(false);
        }
        self.send_encoded(&frame, OP_CLOSE, payload, timeout, interrupt)?;
        Ok(true)
    }

    /// Sends a frame the protocol encoded outside the data path (a close), in order with
    /// the frames of other writers.
    fn send_encoded(&self, frame: &[u8], opcode: u8, payload: &[u8], timeout: Option<Duration>, interrupt: Interrupt<'_>) -> Result<(), Error> {
        if trace::enabled() {
            trace::frame("Sent", frame, true, opcode, payload);
        }
        let mut w = self.write.lock();
        self.outbox_to_pending(&mut w);
        let res = self.write_locked(&mut w, Some(frame), timeout, interrupt);
        drop(w);
        self.flush_outbox_if_queued();
        res
    }

    /// Fails the connection after a protocol error (RFC 6455 7.1.7): our close frame with
    /// `code` unless one was sent, then the TCP connection is dropped.
    fn fail_connection(&self, code: u16) {
        let mut frame = Vec::new();
        if encode_failure(code, &self.close, random_mask(), &mut frame) {
            let _ = self.send_encoded(&frame, OP_CLOSE, &code.to_be_bytes(), Some(FAIL_CLOSE_TIMEOUT), &|| false);
        }
        self.stream.shutdown();
    }

    /// Control replies from the read path: written at once when the write side is free,
    /// otherwise left in the outbox for the current writer, never blocking the caller.
    fn send_replies(&self, replies: Vec<Reply>) {
        if self.queue_replies(replies) {
            self.flush_outbox();
        }
    }

    /// Encodes control replies into the outbox (false when there is nothing to send). A
    /// frame of ours written from then on goes after them (`outbox_to_pending`): the read
    /// path queues them before it hands over the items that came with them.
    fn queue_replies(&self, replies: Vec<Reply>) -> bool {
        let mut bytes = Vec::new();
        // Bytes already waiting to go out (what a blocked writer holds is not seen, but
        // then the outbox itself grows and is counted).
        let backlog = self.outbox.lock().len() + self.write.try_lock().map_or(0, |w| w.pending.len());
        for r in replies {
            if matches!(r, Reply::Pong(_)) && backlog + bytes.len() > MAX_PONG_BACKLOG {
                // The peer reads nothing: answering more pings would only grow memory.
                continue;
            }
            let start = bytes.len();
            if let Some(payload) = encode_reply(&r, &self.close, random_mask(), &mut bytes) {
                if trace::enabled() {
                    let opcode = if matches!(r, Reply::Pong(_)) { OP_PONG } else { OP_CLOSE };
                    trace::frame("Sent", &bytes[start..], true, opcode, &payload);
                }
            }
        }
        if bytes.is_empty() {
            return false;
        }
        self.outbox.lock().extend_from_slice(&bytes);
        self.outbox_flag.store(true, Ordering::SeqCst);
        true
    }

    /// Under the write lock, before a frame of ours: control replies that could not go out
    /// when they were made (the write side was busy a moment) go first, so that a frame
    /// sent after the read that called for them never overtakes them (a pong after the
    /// message it came with, as the peer expects).
    fn outbox_to_pending(&self, w: &mut WriteSide) {
        if self.outbox_flag.load(Ordering::SeqCst) && w.raw.at_boundary() {
            // A TLS failure here is the stream's: the frame's own write reports it.
            let _ = self.move_outbox(w);
        }
    }

    /// The outbox, sealed, appended to what waits to go out (the write lock held, the
    /// caller's stream between two frames).
    fn move_outbox(&self, w: &mut WriteSide) -> Result<(), NetError> {
        self.outbox_flag.store(false, Ordering::SeqCst);
        let out = std::mem::take(&mut *self.outbox.lock());
        if !out.is_empty() {
            let wire = self.stream.seal(&out)?;
            w.pending.extend_from_slice(&wire);
        }
        Ok(())
    }

    /// Moves the outbox to the socket if the write side is free (non-blocking).
    fn flush_outbox(&self) {
        let Some(mut w) = self.write.try_lock() else { return };
        if !w.raw.at_boundary() {
            // Inside a frame the caller is writing through ws.sock: its next write flushes.
            return;
        }
        if self.move_outbox(&mut w).is_err() {
            return;
        }
        self.try_flush_pending(&mut w);
    }

    /// Writes what waits to go out (control replies in the outbox, the rest of a write that
    /// timed out), waiting as needed: before the socket is shut down, so that a close
    /// echo the reactor could not write at once is not lost.
    fn flush(&self, timeout: Option<Duration>, interrupt: Interrupt<'_>) -> Result<(), Error> {
        let mut w = self.write.lock();
        if w.raw.at_boundary() {
            self.move_outbox(&mut w)?;
        }
        if w.pending.is_empty() {
            return Ok(());
        }
        let mut sent = 0;
        let res = self.stream.send_wire_counted(&w.pending, &mut sent, timeout, interrupt);
        w.pending.drain(..sent);
        Ok(res?)
    }

    fn flush_nonblocking(&self) {
        if let Some(mut w) = self.write.try_lock() {
            self.try_flush_pending(&mut w);
        }
    }

    fn try_flush_pending(&self, w: &mut WriteSide) {
        if w.pending.is_empty() {
            self.want_write.store(false, Ordering::Release);
            return;
        }
        match self.stream.try_send_wire(&w.pending) {
            Ok(n) => {
                w.pending.drain(..n);
            }
            Err(_) => w.pending.clear(),
        }
        let more = !w.pending.is_empty();
        self.want_write.store(more, Ordering::Release);
        if more {
            if let Some(mut st) = self.read.try_lock() {
                if !st.reading && !st.stopped() {
                    self.arm_now(&mut st);
                }
            }
        }
    }

    // ---- closing ------------------------------------------------------------------------

    /// The close handshake within one deadline: our close frame (unless sent), the peer's
    /// (data arriving meanwhile is dropped), then the socket is shut down. When our frame
    /// could not be written the peer cannot answer it, so nothing is waited for. Returns the
    /// peer's close payload, if it came.
    pub fn close(self: &Arc<Self>, payload: &[u8], timeout: Option<Duration>, interrupt: Interrupt<'_>) -> Option<Vec<u8>> {
        let deadline = Deadline::after(timeout);
        {
            // This thread reads the answer itself: the reactor's watch would only race it
            // (and wake the reactor's thread) for the peer's close frame. The connection
            // leaves the reactor now (one poller call, where disarming and leaving at
            // shutdown were two), unless unsent control replies still need its write watch.
            let mut st = self.read.lock();
            if self.want_write.load(Ordering::Acquire) {
                self.disarm_for_reading(&mut st);
            } else {
                st.armed = false;
                self.leave_reactor();
            }
        }
        let peer = match self.send_close(payload, timeout, interrupt) {
            Ok(_) => self.await_peer_close(deadline.remaining(), interrupt),
            Err(_) => self.peer_close(),
        };
        // Our close echo may still wait in the outbox (the reactor answered the peer's close
        // while the socket was full): out before the socket goes down.
        let _ = self.flush(deadline.remaining(), interrupt);
        self.shutdown();
        peer
    }

    /// Waits for the peer's close frame; returns its payload, or None on timeout/EOF.
    pub fn await_peer_close(self: &Arc<Self>, timeout: Option<Duration>, interrupt: Interrupt<'_>) -> Option<Vec<u8>> {
        let r = self.wait_for(timeout, interrupt, |rx| {
            // Data that arrives while closing is dropped, as the reference does.
            if rx.peer_close().is_none() {
                rx.discard();
            }
            rx.peer_close().map(|p| Ok(p.to_vec()))
        });
        r.ok()
    }

    pub fn peer_close(&self) -> Option<Vec<u8>> {
        self.read.lock().rx.peer_close().map(<[u8]>::to_vec)
    }

    /// Shuts the socket down both ways, waking every blocked thread. A later read reports
    /// that the connection was shut down here (not that the peer went away), unless it
    /// had ended otherwise before.
    pub fn shutdown(&self) {
        // Recorded before the socket goes down, so that a reader woken by it reports this.
        let mut st = self.read.lock();
        if st.transport_end.is_none() {
            st.transport_end = Some(Terminal::Broken("Connection was shut down locally (shutdown() or abort()).".into()));
        }
        self.read_cv.notify_all();
        self.update_ready(&mut st);
        st.armed = false;
        drop(st);
        // Out of the reactor's poller first: a socket shut down while registered reports a
        // hang-up (even unarmed), which would wake the reactor for a connection that is over.
        self.leave_reactor();
        // Once: close() shuts down, and WebSocket.close() then calls shutdown() again.
        if !self.shut_down.swap(true, Ordering::AcqRel) {
            self.stream.shutdown();
        }
    }
}

impl Conn {
    /// Takes the socket out of the reactor's poller (once: the token is taken); nothing
    /// arms it again after that.
    fn leave_reactor(&self) {
        if let Some(token) = self.token.lock().take() {
            self.reactor.deregister(token, self.stream.socket());
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.leave_reactor();
    }
}
#[cfg(test)]
mod size_tests {
    /// Every open connection carries a `Conn`, idle or not (bench idle200: memory per idle
    /// connection). The TLS session and the permessage-deflate state are boxed, so a plain
    /// connection does not carry them inline: it was 2,056 bytes before they were.
    #[test]
    fn a_plain_connection_state_stays_small() {
        let size = std::mem::size_of::<super::Conn>();
        assert!(size <= 768, "Conn is {size} bytes");
        assert!(std::mem::size_of::<super::Stream>() <= 32);
    }
}
