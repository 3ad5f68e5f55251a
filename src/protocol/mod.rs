//! Sans-I/O WebSocket client protocol: frames, UTF-8, the state machine, the handshake,
//! permessage-deflate.

pub mod codec;
pub mod connection;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod proxy;
pub mod receiver;
pub mod sender;
pub mod utf8;
