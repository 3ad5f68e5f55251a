//! macOS and the other Unix systems without eventfd: a Unix socketpair. Python gets one end;
//! a byte written to the other makes it readable, and is read back to clear it. Not a pipe:
//! the read end of a pipe is never writable, and the handle must always be writable (see
//! mod.rs); this end is, since nothing is ever written to it.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

pub struct Handle {
    /// The end Python select()s.
    theirs: UnixStream,
    ours: UnixStream,
}

impl Handle {
    pub fn new() -> io::Result<Handle> {
        // Close-on-exec (and SO_NOSIGPIPE is moot: neither end is closed while the other is
        // written to).
        let (theirs, ours) = UnixStream::pair()?;
        theirs.set_nonblocking(true)?;
        ours.set_nonblocking(true)?;
        Ok(Handle { theirs, ours })
    }

    pub fn raw(&self) -> RawFd {
        self.theirs.as_raw_fd()
    }

    pub fn set(&self, ready: bool) {
        if ready {
            let _ = (&self.ours).write(&[1]);
        } else {
            let mut buf = [0u8; 16];
            while matches!((&self.theirs).read(&mut buf), Ok(n) if n > 0) {}
        }
    }
}
