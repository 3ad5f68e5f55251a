//! Linux: one eventfd, written to make it readable and read to clear it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct Handle(OwnedFd);

impl Handle {
    pub fn new() -> io::Result<Handle> {
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        Ok(Handle(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn set(&self, ready: bool) {
        let mut v: u64 = 1;
        unsafe {
            if ready {
                libc::write(self.raw(), (&v as *const u64).cast(), 8);
            } else {
                libc::read(self.raw(), (&mut v as *mut u64).cast(), 8);
            }
        }
    }
}
