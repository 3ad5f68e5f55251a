//! Sans-I/O WebSocket client protocol: frames, UTF-8, the state machine, the handshake.

pub mod codec;
pub mod frame;
pub mod handshake;
pub mod utf8;
