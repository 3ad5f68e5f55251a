//! Windows: select() there takes sockets only, so a connected loopback TCP pair. Python gets
//! one end; a byte sent from the other makes it readable, and is read back to clear it. That
//! end stays writable, since nothing is ever sent from it.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::windows::io::{AsRawSocket, RawSocket};
use std::time::Duration;

pub struct Handle {
    /// The end Python select()s.
    theirs: TcpStream,
    ours: TcpStream,
}

impl Handle {
    pub fn new() -> io::Result<Handle> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let theirs = TcpStream::connect(listener.local_addr()?)?;
        // Another local process could connect to the listener first: take only our own.
        let ours = loop {
            let (s, peer) = listener.accept()?;
            if peer == theirs.local_addr()? {
                break s;
            }
        };
        ours.set_nodelay(true)?;
        ours.set_nonblocking(true)?;
        // Cleared only after a byte was sent, which loopback delivers at once; the timeout is
        // a bound for a byte still in flight, never reached in practice.
        theirs.set_read_timeout(Some(Duration::from_secs(1)))?;
        Ok(Handle { theirs, ours })
    }

    pub fn raw(&self) -> RawSocket {
        self.theirs.as_raw_socket()
    }

    pub fn set(&self, ready: bool) {
        if ready {
            let _ = (&self.ours).write(&[1]);
        } else {
            let mut buf = [0u8; 1];
            let _ = (&self.theirs).read(&mut buf);
        }
    }
}
