//! The transport (src/transport/loopback.rs): a `Stream`, TLS (rustls) or plain, over an
//! in-memory pipe whose server end lives in the pipe.
//!
//! Input: every decision of the run, read byte by byte as it is taken (a used-up input reads
//! as zeros, and 0 always means progress, so every input ends). First the configuration:
//! byte 0 even = TLS, else plain; byte 1 % 3 == 1: TLS 1.2 only; byte 2 % 4: server records
//! of at most 32..1056 bytes (1) or 32..16 KiB (2), each with 3 more bytes, else 16 KiB; then
//! how much the pipe holds before the server waits, how much the server sends (3 bytes, up
//! to 512 KiB), whether and how much the client uploads, how the server ends (nothing,
//! close_notify, FIN, both), the data pattern and the number of steps. Then the schedule:
//! each step reads (any size up to 80 KiB, `read` or `read_into`), lets the server run,
//! pauses the reader until the pipe is full, uploads, or probes `has_buffered()`; and inside
//! the pipe, each call may be cut short, return WouldBlock, or let the server run first.
//!
//! Checked (a failure panics with the reason):
//! - the plaintext the client reads is exactly what the server wrote, and the server gets
//!   exactly the client's upload; no error, no EOF before the end, nothing after it;
//! - a read that returns WouldBlock leaves `has_buffered()` false;
//! - reading only when the pipe has bytes or `has_buffered()` is true (the reactor's rule),
//!   everything arrives once the server is done.
#![no_main]

use _native::transport::loopback::{run, Choices};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = run(Choices::from_bytes(data), None) {
        panic!("{e}");
    }
});
