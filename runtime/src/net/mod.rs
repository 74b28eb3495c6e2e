//! Sockets that park the calling G instead of blocking its thread.
//!
//! [`TcpListener`], [`TcpStream`], [`UdpSocket`], [`UnixListener`],
//! [`UnixStream`] and [`UnixDatagram`] have the shape of their `std::net`
//! (`std::os::unix::net`) namesakes and implement
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
//! bounds each call, not a whole exchange. Go's absolute deadlines
//! (`set_deadline`, `set_read_deadline`, `set_write_deadline`, and
//! `set_deadline` on listeners for `accept`) bound every call until the
//! instant given, so a peer that trickles a byte at a time cannot keep an
//! exchange alive; a new deadline also reaches calls already waiting (at
//! once on a G, within 50 ms on a plain thread; a past one fails them: how
//! a server stops an accept loop). Unlike
//! the socket options, timeouts and deadlines belong to the handle: a
//! `try_clone` copies them once.
//!
//! Sockets made elsewhere — a listener from systemd or `listenfd`, a socket
//! built with socket2, a std socket — come in through `from_std`,
//! `From<OwnedFd>` or `FromRawFd`, and go back out through `into_std`,
//! `IntoRawFd` or `OwnedFd::from`. Any other pollable descriptor (a pipe,
//! an eventfd, inotify, a serial port) gets readiness waits that park the G
//! through [`PollFd`].
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

        /// Go's `SetDeadline`: both [`set_read_deadline`](Self::set_read_deadline)
        /// and [`set_write_deadline`](Self::set_write_deadline).
        pub fn set_deadline(&self, at: Option<std::time::Instant>) {
            self.set_read_deadline(at);
            self.set_write_deadline(at);
        }

        /// Go's `SetReadDeadline`: every read (receive) from now on fails
        /// with `TimedOut` once `at` has passed, however many calls it
        /// takes to get there (unlike the per-call timeout, a peer that
        /// sends one byte at a time cannot keep the exchange alive past
        /// it). Applies to reads already waiting too (a plain thread's
        /// within 50 ms); a deadline in the past fails them at once. `None`
        /// removes it.
        pub fn set_read_deadline(&self, at: Option<std::time::Instant>) {
            Timeouts::set_at(&self.timeouts.read_at, at);
            self.reg.wake_waiters(scheduler::netpoll::Mode::Read);
        }

        /// Go's `SetWriteDeadline`: as [`set_read_deadline`](Self::set_read_deadline)
        /// for writes (sends).
        pub fn set_write_deadline(&self, at: Option<std::time::Instant>) {
            Timeouts::set_at(&self.timeouts.write_at, at);
            self.reg.wake_waiters(scheduler::netpoll::Mode::Write);
        }
    };
}

/// What a socket with a peer and per-handle timeouts shares (fields
/// `reg`, `inner`, `timeouts`), inside its inherent `impl`: addresses, the
/// pending error, `try_clone` (registered on its own, with this handle's
/// timeouts and deadlines), and the timeout and deadline methods.
macro_rules! peer_socket_methods {
    ($t:ident, $addr:ty) => {
        /// The local address.
        pub fn local_addr(&self) -> io::Result<$addr> {
            self.inner.local_addr()
        }

        /// The peer's address (the connected one, for a datagram socket).
        pub fn peer_addr(&self) -> io::Result<$addr> {
            self.inner.peer_addr()
        }

        /// The pending socket error (`SO_ERROR`), if any.
        pub fn take_error(&self) -> io::Result<Option<io::Error>> {
            self.inner.take_error()
        }

        /// Another handle on the same socket (`dup`), registered on its
        /// own; it starts with this handle's timeouts and deadlines.
        pub fn try_clone(&self) -> io::Result<$t> {
            let inner = self.inner.try_clone()?;
            let reg = register(inner.as_raw_fd())?;
            Ok($t {
                reg,
                inner,
                timeouts: self.timeouts.copy(),
            })
        }

        timeout_methods!();
    };
}

/// `send` and `recv` on the connected peer of a datagram socket.
macro_rules! datagram_methods {
    () => {
        /// Sends one datagram to the connected peer.
        pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
            self.reg
                .io(Mode::Write, self.timeouts.write_deadline(), || {
                    self.inner.send(buf)
                })
        }

        /// Receives one datagram from the connected peer.
        pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
            self.reg.io(Mode::Read, self.timeouts.read_deadline(), || {
                self.inner.recv(buf)
            })
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

/// `set_deadline` for a listener with an `accept_at` field and a `reg`.
macro_rules! accept_deadline_method {
    () => {
        /// Go's `SetDeadline` on a listener: `accept` fails with
        /// `TimedOut` once `at` has passed, including an `accept` already
        /// waiting on a G (the way to stop an accept loop for a clean
        /// shutdown). `None` removes it.
        pub fn set_deadline(&self, at: Option<std::time::Instant>) {
            Timeouts::set_at(&self.accept_at.0, at);
            self.reg.wake_waiters(scheduler::netpoll::Mode::Read);
        }
    };
}

mod pollfd;
mod raw;
mod tcp;
mod udp;
mod unix;

pub use pollfd::PollFd;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};

/// A listener's accept deadline on the runtime clock (0: none), and its
/// setter (Go's `SetDeadline` on a listener).
#[derive(Debug, Default)]
struct AcceptDeadline(AtomicU64);

impl AcceptDeadline {
    fn get(&self) -> Deadline<'_> {
        Deadline {
            fixed: None,
            shared: Some(&self.0),
        }
    }
}

use core::sync::atomic::{AtomicU64, Ordering};
use scheduler::netpoll::Deadline;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// `O_NONBLOCK` and netpoll registration of a descriptor a user handed in.
fn register_user_fd(
    fd: std::os::fd::BorrowedFd<'_>,
) -> io::Result<scheduler::netpoll::Registration> {
    use std::os::fd::AsRawFd;
    scheduler::socket::set_nonblocking(fd, true)?;
    scheduler::netpoll::register(fd.as_raw_fd()).map_err(|e| {
        // epoll_ctl's EPERM: the descriptor does not support polling.
        if e.kind() == io::ErrorKind::PermissionDenied {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "this descriptor cannot be polled (a regular file or directory is always \
                 ready: read or write it directly)",
            )
        } else {
            e
        }
    })
}

/// A socket's read and write timeouts, in nanoseconds (0: none), and its
/// absolute read and write deadlines on the runtime clock (0: none).
#[derive(Debug, Default)]
struct Timeouts {
    read: AtomicU64,
    write: AtomicU64,
    read_at: AtomicU64,
    write_at: AtomicU64,
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

    fn set_at(slot: &AtomicU64, at: Option<std::time::Instant>) {
        // A deadline before the runtime clock's epoch is 0 there: 1 still
        // means "passed", 0 means none.
        let t = at.map_or(0, |i| scheduler::clock::nanotime_of(i).max(1));
        slot.store(t, Ordering::Release);
    }

    /// A read's deadline: the per-call timeout from now, and the socket's
    /// deadline as it stands at each wait.
    fn read_deadline(&self) -> Deadline<'_> {
        Deadline {
            fixed: scheduler::netpoll::deadline_after(Self::get(&self.read)),
            shared: Some(&self.read_at),
        }
    }

    /// A write's deadline (as [`read_deadline`](Self::read_deadline)).
    fn write_deadline(&self) -> Deadline<'_> {
        Deadline {
            fixed: scheduler::netpoll::deadline_after(Self::get(&self.write)),
            shared: Some(&self.write_at),
        }
    }

    fn copy(&self) -> Timeouts {
        let c = |a: &AtomicU64| AtomicU64::new(a.load(Ordering::Relaxed));
        Timeouts {
            read: c(&self.read),
            write: c(&self.write),
            read_at: c(&self.read_at),
            write_at: c(&self.write_at),
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
