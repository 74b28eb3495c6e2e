//! [`PollFd`]: park a G until any descriptor is ready.

use scheduler::netpoll::{Deadline, Mode, Registration};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Instant;

/// Any pollable descriptor (a pipe, an eventfd, a timerfd, inotify, a
/// serial port, a socket gort has no type for) registered with the
/// netpoller, so that a G can park until it is readable or writable —
/// tokio's `AsyncFd`, built on the same edge-triggered registration as
/// gort's sockets.
///
/// [`new`](Self::new) puts the descriptor in non-blocking mode. Readiness is
/// edge-triggered: after [`readable`](Self::readable) returns, read until
/// the call says `WouldBlock` before waiting again, or let
/// [`read_with`](Self::read_with) do that loop. Regular files and
/// directories cannot be polled (they are always ready): `new` says so.
///
/// ```
/// use std::io::{Read, Write};
/// let (r, mut w) = std::io::pipe().unwrap();
/// let r = runtime::net::PollFd::new(r).unwrap();
/// let reader = runtime::go(move || {
///     let mut buf = [0u8; 5];
///     let n = r.read_with(None, |mut p| p.read(&mut buf)).unwrap();
///     buf[..n].to_vec()
/// });
/// w.write_all(b"ready").unwrap();
/// assert_eq!(reader.join().unwrap(), b"ready");
/// ```
#[derive(Debug)]
pub struct PollFd<T: AsFd> {
    // Field order is drop order: deregister before the descriptor closes.
    reg: Registration,
    inner: T,
}

/// The runtime-clock deadline of an `Instant` (1 for one already passed:
/// 0 means none).
fn at(deadline: Option<Instant>) -> Deadline<'static> {
    Deadline {
        fixed: deadline.map(|i| scheduler::clock::nanotime_of(i).max(1)),
        shared: None,
    }
}

impl<T: AsFd> PollFd<T> {
    /// Registers `inner`'s descriptor (and sets `O_NONBLOCK` on it). Fails
    /// for descriptors epoll cannot watch.
    pub fn new(inner: T) -> io::Result<PollFd<T>> {
        let reg = super::register_user_fd(inner.as_fd())?;
        Ok(PollFd { reg, inner })
    }

    /// The wrapped value.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Deregisters the descriptor and returns the wrapped value (still in
    /// non-blocking mode).
    pub fn into_inner(self) -> T {
        let PollFd { reg, inner } = self;
        drop(reg);
        inner
    }

    /// Waits until the descriptor may be readable (parks the G; blocks a
    /// plain thread in `poll(2)`), or fails with `TimedOut` at `deadline`.
    /// A wake-up may be spurious: the next read may still say
    /// `WouldBlock`.
    pub fn readable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.reg.wait(Mode::Read, at(deadline))
    }

    /// Waits until the descriptor may be writable (as [`readable`](Self::readable)).
    pub fn writable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.reg.wait(Mode::Write, at(deadline))
    }

    /// Runs `op` (a non-blocking read-side call on the wrapped value) until
    /// it stops saying `WouldBlock`, parking in between; `TimedOut` at
    /// `deadline`.
    pub fn read_with<R>(
        &self,
        deadline: Option<Instant>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.reg.io(Mode::Read, at(deadline), || op(&self.inner))
    }

    /// As [`read_with`](Self::read_with) for a write-side call.
    pub fn write_with<R>(
        &self,
        deadline: Option<Instant>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.reg.io(Mode::Write, at(deadline), || op(&self.inner))
    }
}

impl<T: AsFd> AsRawFd for PollFd<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_fd().as_raw_fd()
    }
}

impl<T: AsFd> AsFd for PollFd<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}
