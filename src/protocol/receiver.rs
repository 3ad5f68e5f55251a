//! The receiving half of a connection: bytes from the peer in, messages out.
//!
//! The codec checks and decodes frames; the receiver queues what it yields (checked
//! fragments, control frames, the close frame) and hands the application whole messages,
//! single frames or batches, joining fragments only when a message is taken. It remembers
//! the peer's close frame and a protocol failure, which is reported only once the items that
//! came before it have been taken (as a reader of the wire in order would see it). Every
//! driver uses it; waiting and flow control are the driver's.

use std::collections::VecDeque;

use super::codec::{Codec, Config, Failure, Item, Mode, Reply, Sink, TracedFrame};
use super::frame::{OP_CLOSE, OP_PING, OP_PONG};

/// What one queued item costs besides its payload (the `Item` and its queue slot, rounded
/// up): counted in `queued_bytes` so a flood of empty messages is bounded too.
pub const ITEM_OVERHEAD: usize = 64;
/// About how much payload one `take_batch` hands over.
pub const BATCH_BYTES: usize = 1 << 20;

fn cost(item: &Item) -> usize {
    item.data.len() + ITEM_OVERHEAD
}

/// What a take found when nothing was there to hand over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The peer broke the protocol; the failure was reached in reading order.
    Failed(Failure),
    /// The close frame was delivered: nothing more will come.
    Closed,
}

#[derive(Debug)]
pub struct Receiver {
    codec: Codec,
    queue: VecDeque<Item>,
    queued_bytes: usize,
    /// A fragmented message being joined by `take_message` (its first fragments).
    partial: Option<Item>,
    /// The payload of the peer's close frame, once received.
    peer_close: Option<Vec<u8>>,
    failure: Option<Failure>,
    /// The close code owed to the peer after a failure, until a reader reaches it.
    owed_close: Option<u16>,
}

impl Receiver {
    pub fn new(cfg: Config) -> Self {
        Receiver {
            codec: Codec::new(cfg),
            queue: VecDeque::new(),
            queued_bytes: 0,
            partial: None,
            peer_close: None,
            failure: None,
            owed_close: None,
        }
    }

    pub fn config(&self) -> &Config {
        self.codec.config()
    }

    pub fn set_mode(&mut self, mode: Mode) {
        self.codec.set_mode(mode);
    }

    pub fn set_skip_utf8(&mut self, skip: bool) {
        self.codec.set_skip_utf8(skip);
    }

    pub fn set_max_message(&mut self, max: Option<u64>) {
        self.codec.set_max_message(max);
    }

    /// Feeds bytes read from the peer. Replies the protocol requires (pong, the close
    /// echo) are appended to `replies`; complete frames to `traced` when tracing. Returns
    /// whether something new can be taken (an item, or a failure).
    pub fn receive(&mut self, data: &[u8], replies: &mut Vec<Reply>, traced: Option<&mut Vec<TracedFrame>>) -> bool {
        if self.failure.is_some() {
            return false;
        }
        let before = self.queue.len();
        let result = self.codec.feed(data, &mut Sink { items: &mut self.queue, replies, traced });
        self.absorb(before, result)
    }

    /// `receive` for a buffer a socket read just filled, taken by value: a large data
    /// payload that came whole with its header in it becomes the queued item's payload
    /// without a copy (`Codec::feed_read`, payloads of at least `adopt_min` bytes). Returns
    /// `receive`'s answer and the buffer when it was not taken, for the next read.
    pub fn receive_read(
        &mut self,
        buf: Vec<u8>,
        adopt_min: u64,
        replies: &mut Vec<Reply>,
        traced: Option<&mut Vec<TracedFrame>>,
    ) -> (bool, Option<Vec<u8>>) {
        if self.failure.is_some() {
            return (false, Some(buf));
        }
        let before = self.queue.len();
        let (result, back) = self.codec.feed_read(buf, adopt_min, &mut Sink { items: &mut self.queue, replies, traced });
        (self.absorb(before, result), back)
    }

    /// How many payload bytes could be read straight into the message buffer now (large
    /// unmasked, uncompressed data payloads), skipping one copy.
    pub fn direct_read_hint(&self) -> Option<u64> {
        if self.failure.is_some() {
            return None;
        }
        self.codec.direct_read_hint()
    }

    /// Lends the message buffer for a direct read (see `direct_read_hint`).
    pub fn take_buffer(&mut self) -> Vec<u8> {
        self.codec.take_buffer()
    }

    /// Gives the buffer back with `added` bytes appended by a direct read; as `receive`.
    pub fn return_buffer(&mut self, buf: Vec<u8>, added: usize, replies: &mut Vec<Reply>, traced: Option<&mut Vec<TracedFrame>>) -> bool {
        let before = self.queue.len();
        let result = self.codec.return_buffer(buf, added, &mut Sink { items: &mut self.queue, replies, traced });
        self.absorb(before, result)
    }

    fn absorb(&mut self, before: usize, result: Result<(), Failure>) -> bool {
        for item in self.queue.iter().skip(before) {
            self.queued_bytes += cost(item);
            if item.opcode == OP_CLOSE {
                self.peer_close = Some(item.data.to_vec());
            }
        }
        if let Err(failure) = result {
            self.owed_close = Some(failure.close_code());
            self.failure = Some(failure);
        }
        self.queue.len() != before || self.failure.is_some()
    }

    /// The most bytes a driver may read now without reading past the frame in progress
    /// (at least 1 while the connection is open, 0 once nothing more is expected). A driver
    /// whose socket others may poll reads no further, so bytes that are not yet part of a
    /// frame stay in the socket, as they would with a reader that reads frame by frame.
    pub fn bytes_wanted(&self) -> usize {
        if self.failure.is_some() {
            return 0;
        }
        self.codec.bytes_wanted()
    }

    // ---- taking ----------------------------------------------------------------------------

    /// Whether a take would hand something over (an item, or the failure).
    pub fn has_item(&self) -> bool {
        !self.queue.is_empty() || self.failure.is_some()
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn peer_close(&self) -> Option<&[u8]> {
        self.peer_close.as_deref()
    }

    /// Why nothing more will come, once every item before it was taken; None while items
    /// are queued or the connection goes on.
    pub fn ended(&self) -> Option<Ended> {
        if !self.queue.is_empty() {
            return None;
        }
        if let Some(f) = &self.failure {
            return Some(Ended::Failed(f.clone()));
        }
        if self.peer_close.is_some() {
            return Some(Ended::Closed);
        }
        None
    }

    /// The close code owed to the peer after a failure, once (the driver sends it, then
    /// drops the connection). Only handed out when the reader has reached the failure.
    pub fn take_owed_close(&mut self) -> Option<u16> {
        if self.queue.is_empty() {
            self.owed_close.take()
        } else {
            None
        }
    }

    fn pop(&mut self) -> Option<Item> {
        let item = self.queue.pop_front()?;
        self.queued_bytes -= cost(&item);
        Some(item)
    }

    /// The next frame as it arrived (fragments not joined); pings and pongs only with
    /// `control` (raw mode hands over everything).
    pub fn take_frame(&mut self, control: bool) -> Option<Item> {
        let raw = self.codec.config().mode == Mode::Raw;
        loop {
            let item = self.pop()?;
            if control || raw || !matches!(item.opcode, OP_PING | OP_PONG) {
                return Some(item);
            }
        }
    }

    /// The next message: data fragments joined, control frames as they come (pings and
    /// pongs only with `control`), the close frame always. Fragments taken so far wait in
    /// `partial`; an unfragmented message is handed over without a copy.
    pub fn take_message(&mut self, control: bool) -> Option<Item> {
        let raw = self.codec.config().mode == Mode::Raw;
        loop {
            let item = self.pop()?;
            if raw {
                return Some(item);
            }
            match item.opcode {
                OP_PING | OP_PONG => {
                    if control {
                        return Some(item);
                    }
                }
                OP_CLOSE => return Some(item),
                _ => {
                    let done = item.fin;
                    let msg = match self.partial.take() {
                        None => item,
                        Some(mut first) => {
                            first.data.extend_from_slice(&item.data);
                            first
                        }
                    };
                    if done {
                        return Some(Item { fin: true, ..msg });
                    }
                    self.partial = Some(msg);
                }
            }
        }
    }

    /// Up to `max` items (at least one if any) and about `BATCH_BYTES` of payload: whole
    /// messages with every control frame, or every frame as it came with `fragments`. The
    /// byte bound keeps what a batch moves out of the queue small: a driver that resumes
    /// reading once its queue drains would otherwise let a slow consumer hold a whole
    /// queue's worth in its batch while the queue fills again.
    pub fn take_batch(&mut self, max: usize, fragments: bool) -> Vec<Item> {
        let mut items = Vec::new();
        let mut bytes = 0;
        while items.len() < max.max(1) && (items.is_empty() || bytes < BATCH_BYTES) {
            let next = if fragments { self.pop() } else { self.take_message(true) };
            match next {
                Some(item) => {
                    bytes += item.data.len();
                    items.push(item);
                }
                None => break,
            }
        }
        items
    }

    /// Drops every queued item (data that arrives while closing is not delivered).
    pub fn discard(&mut self) {
        while self.pop().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{self, OP_BINARY, OP_CONT, OP_TEXT};

    fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        frame::encode_frame(&mut v, fin, 0, op, payload, None);
        v
    }

    fn fragments_cfg() -> Config {
        Config { mode: Mode::Fragments, ..Config::default() }
    }

    #[test]
    fn messages_are_joined_at_take_frames_stay_apart() {
        let mut wire = frame(false, OP_TEXT, b"Hel");
        wire.extend(frame(true, OP_PING, b"p"));
        wire.extend(frame(true, OP_CONT, b"lo"));
        let mut rx = Receiver::new(fragments_cfg());
        let mut replies = Vec::new();
        assert!(rx.receive(&wire, &mut replies, None));
        assert_eq!(replies, vec![Reply::Pong(b"p".to_vec())]);
        let msg = rx.take_message(false).unwrap();
        assert_eq!((msg.opcode, msg.fin, &msg.data[..]), (OP_TEXT, true, &b"Hello"[..]));
        assert!(rx.is_empty() && rx.queued_bytes() == 0);

        let mut rx = Receiver::new(fragments_cfg());
        rx.receive(&wire, &mut Vec::new(), None);
        let frames: Vec<_> = std::iter::from_fn(|| rx.take_frame(true)).map(|i| (i.opcode, i.data.into_vec())).collect();
        assert_eq!(frames, vec![(OP_TEXT, b"Hel".to_vec()), (OP_PING, b"p".to_vec()), (OP_CONT, b"lo".to_vec())]);
    }

    #[test]
    fn a_failure_is_reported_after_the_items_before_it() {
        let mut wire = frame(true, OP_BINARY, b"first");
        wire.extend([0x83, 0x00]); // reserved opcode
        let mut rx = Receiver::new(fragments_cfg());
        rx.receive(&wire, &mut Vec::new(), None);
        assert_eq!(rx.ended(), None);
        assert_eq!(rx.take_owed_close(), None, "not before the reader reaches it");
        assert_eq!(rx.take_message(false).unwrap().data, b"first");
        assert!(matches!(rx.ended(), Some(Ended::Failed(f)) if f.close_code() == 1002));
        assert_eq!(rx.take_owed_close(), Some(1002));
        assert_eq!(rx.take_owed_close(), None, "owed once");
        assert_eq!(rx.bytes_wanted(), 0);
    }

    #[test]
    fn close_frame_ends_the_stream_once_taken() {
        let mut wire = frame(true, OP_TEXT, b"bye");
        wire.extend(frame(true, OP_CLOSE, &[0x03, 0xe8]));
        let mut rx = Receiver::new(fragments_cfg());
        let mut replies = Vec::new();
        rx.receive(&wire, &mut replies, None);
        assert_eq!(replies, vec![Reply::Close(Some(1000), vec![])]);
        assert_eq!(rx.peer_close(), Some(&[0x03, 0xe8][..]));
        assert_eq!(rx.ended(), None);
        let batch = rx.take_batch(10, false);
        assert_eq!(batch.iter().map(|i| i.opcode).collect::<Vec<_>>(), vec![OP_TEXT, OP_CLOSE]);
        assert_eq!(rx.ended(), Some(Ended::Closed));
        assert_eq!(rx.bytes_wanted(), 0);
    }

    #[test]
    fn a_batch_is_bounded_in_bytes_but_holds_at_least_one_item() {
        let mut wire = Vec::new();
        for _ in 0..4 {
            wire.extend(frame(true, OP_BINARY, &vec![1u8; 600 * 1024]));
        }
        let mut rx = Receiver::new(fragments_cfg());
        rx.receive(&wire, &mut Vec::new(), None);
        assert_eq!(rx.take_batch(256, false).len(), 2, "600 KiB + 600 KiB reaches the bound");
        let mut rx = Receiver::new(fragments_cfg());
        rx.receive(&frame(true, OP_BINARY, &vec![1u8; 3 << 20]), &mut Vec::new(), None);
        assert_eq!(rx.take_batch(256, false).len(), 1);
    }

    #[test]
    fn bytes_wanted_never_reaches_past_the_frame() {
        let mut wire = frame(true, OP_TEXT, &[b'a'; 300]); // 4-byte header (16-bit length)
        wire.extend(frame(true, OP_TEXT, b"next"));
        let mut rx = Receiver::new(fragments_cfg());
        let mut fed = 0;
        let mut reads = 0;
        while rx.take_message(false).is_none() {
            let n = rx.bytes_wanted();
            assert!(n >= 1 && fed + n <= 304, "read of {n} at {fed} would pass the first frame");
            rx.receive(&wire[fed..fed + n], &mut Vec::new(), None);
            fed += n;
            reads += 1;
        }
        assert_eq!(fed, 304);
        assert!(reads <= 3, "{reads} reads for one frame");
    }
}
