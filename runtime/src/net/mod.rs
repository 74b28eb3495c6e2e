//! Sockets that park the calling G instead of blocking its thread.
//!
//! [`TcpListener`], [`TcpStream`], [`UdpSocket`], [`UnixListener`] and
//! [`UnixStream`] have the shape of their `std::net` namesakes and implement
//! `std::io::Read`/`Write` (also for `&TcpStream`, so one G can read while
//! another writes). Underneath every socket is non-blocking and registered
//! once, edge-triggered, with the scheduler's netpoller
//! (`scheduler::netpoll`): a call that would block parks the G, its M runs
//! other Gs, and the G is made runnable when epoll reports the socket ready.
//! A G waiting for I/O holds no M and no P, so a hundred thousand idle
//! connections cost their buffers and their G stacks, nothing more.
//!
//! Timeouts (`set_read_timeout`, `set_write_timeout`, `connect_timeout`)
//! are the scheduler's own timers, no thread per timer, and fail the call
//! with [`std::io::ErrorKind::TimedOut`]. As with `SO_RCVTIMEO`, a timeout
//! bounds each call, not a whole exchange. Unlike the socket options, they
//! belong to the handle: a `try_clone` copies them once.
//!
//! From a plain thread (not a G) the same types work: a call that would
//! block waits in `poll(2)` on the socket, honouring the timeouts.
//!
//! Name resolution (`"localhost:8080"`) runs in [`crate::syscall`], so a
//! slow resolver sets the P aside instead of stalling the other Gs.

// What every socket type shares, written once. The types keep the same
// field names: `reg` (the netpoll registration), `inner` (the std socket),
// `timeouts`.

/// `AsRawFd` and `AsFd` through `inner`.
macro_rules! impl_fd {
    ($t:ty) => {
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.inner.as_raw_fd()
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }
    };
}

/// The timeout accessors of a socket with a `timeouts` field (inside its
/// inherent `impl`).
macro_rules! timeout_methods {
    () => {
        /// Each later read (receive) fails with `TimedOut` if nothing comes
        /// within `d` (`None`: wait forever). A zero duration is an error,
        /// as in std.
        pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
            Timeouts::set(&self.timeouts.read, d)
        }

        /// Each later write (send) fails with `TimedOut` if it cannot
        /// proceed within `d` (`None`: wait forever).
        pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
            Timeouts::set(&self.timeouts.write, d)
        }

        /// The read timeout.
        pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
            Ok(Timeouts::get(&self.timeouts.read))
        }

        /// The write timeout.
        pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
            Ok(Timeouts::get(&self.timeouts.write))
        }
    };
}

/// `Read` and `Write` for a stream socket and for a shared reference to it
/// (one G reads while another writes): each call goes to the type's
/// `read_io`/`write_io`, which go through the netpoll registration with the
/// handle's deadline.
macro_rules! impl_stream_io {
    ($t:ty) => {
        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let s: &$t = self;
                s.read_io(buf)
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let s: &$t = self;
                s.write_io(buf)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

mod tcp;
mod udp;
mod unix;

pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

use core::sync::atomic::{AtomicU64, Ordering};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// A socket's read and write timeouts, in nanoseconds (0: none).
#[derive(Debug, Default)]
struct Timeouts {
    read: AtomicU64,
    write: AtomicU64,
}

impl Timeouts {
    fn set(slot: &AtomicU64, d: Option<Duration>) -> io::Result<()> {
        let ns = match d {
            None => 0,
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ));
            }
            Some(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1),
        };
        slot.store(ns, Ordering::Relaxed);
        Ok(())
    }

    fn get(slot: &AtomicU64) -> Option<Duration> {
        match slot.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    fn read_deadline(&self) -> Option<u64> {
        scheduler::netpoll::deadline_after(Self::get(&self.read))
    }

    fn write_deadline(&self) -> Option<u64> {
        scheduler::netpoll::deadline_after(Self::get(&self.write))
    }

    fn copy(&self) -> Timeouts {
        Timeouts {
            read: AtomicU64::new(self.read.load(Ordering::Relaxed)),
            write: AtomicU64::new(self.write.load(Ordering::Relaxed)),
        }
    }
}

/// Resolves `addr` (in a syscall section: the resolver may block).
fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = crate::syscall(|| addr.to_socket_addrs())?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        ));
    }
    Ok(addrs)
}

/// Tries `f` on each address in turn; the last error if all fail.
fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in resolve(addr)? {
        match f(&a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no address tried")))
}
