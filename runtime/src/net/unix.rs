//! Unix-domain stream sockets: [`UnixListener`] and [`UnixStream`].

use super::Timeouts;
use scheduler::netpoll::{Mode, Registration, register};
use scheduler::sys;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A Unix-domain socket listening for connections. Dropping it does not
/// remove the socket file (as in std).
#[derive(Debug)]
pub struct UnixListener {
    // Field order is drop order: deregister before the socket closes.
    reg: Registration,
    inner: std::os::unix::net::UnixListener,
}

impl UnixListener {
    /// Binds to the socket file `path` (which must not exist) and listens.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let fd = sys::socket(sys::AF_UNIX, sys::Kind::Stream)?;
        sys::bind_unix(fd.as_fd(), path.as_ref())?;
        sys::listen(fd.as_fd())?;
        let inner = std::os::unix::net::UnixListener::from(fd);
        let reg = register(inner.as_raw_fd())?;
        Ok(UnixListener { reg, inner })
    }

    /// Waits for a connection (parks the G; blocks a plain thread).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (fd, _) = self
            .reg
            .io(Mode::Read, None, || sys::accept(self.inner.as_fd()))?;
        let s = UnixStream::from_fd(fd)?;
        let addr = s.inner.peer_addr()?;
        Ok((s, addr))
    }

    /// An endless iterator of accepted connections.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
        core::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A Unix-domain stream connection.
#[derive(Debug)]
pub struct UnixStream {
    // Field order is drop order: deregister before the socket closes.
    reg: Registration,
    inner: std::os::unix::net::UnixStream,
    timeouts: Timeouts,
}

impl UnixStream {
    fn from_fd(fd: OwnedFd) -> io::Result<UnixStream> {
        let inner = std::os::unix::net::UnixStream::from(fd);
        let reg = register(inner.as_raw_fd())?;
        Ok(UnixStream {
            reg,
            inner,
            timeouts: Timeouts::default(),
        })
    }

    /// `Read::read`: on a G, parks while nothing has arrived.
    fn read_io(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.reg.io(Mode::Read, self.timeouts.read_deadline(), || {
            std::io::Read::read(&mut &self.inner, buf)
        })
    }

    /// `Write::write`: on a G, parks while the send buffer is full.
    fn write_io(&self, buf: &[u8]) -> io::Result<usize> {
        self.reg
            .io(Mode::Write, self.timeouts.write_deadline(), || {
                std::io::Write::write(&mut &self.inner, buf)
            })
    }

    /// Connects to the socket file `path`. While the listener's backlog is
    /// full the G sleeps a millisecond between tries (the kernel reports no
    /// readiness for that case).
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let s = UnixStream::from_fd(sys::socket(sys::AF_UNIX, sys::Kind::Stream)?)?;
        loop {
            match sys::connect_unix(s.inner.as_fd(), path.as_ref()) {
                Ok(()) => return Ok(s),
                Err(e) if sys::backlog_full(&e) => crate::sleep(Duration::from_millis(1)),
                Err(e) if sys::in_progress(&e) => {
                    s.reg.wait(Mode::Write, None)?;
                    return match s.inner.take_error()? {
                        Some(e) => Err(e),
                        None => Ok(s),
                    };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A connected pair of streams (`socketpair`).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((
            UnixStream::from_fd(OwnedFd::from(a))?,
            UnixStream::from_fd(OwnedFd::from(b))?,
        ))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Shuts down the read half, the write half, or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Another handle on the same connection (`dup`), registered on its
    /// own; it starts with this handle's timeouts.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let inner = self.inner.try_clone()?;
        let reg = register(inner.as_raw_fd())?;
        Ok(UnixStream {
            reg,
            inner,
            timeouts: self.timeouts.copy(),
        })
    }

    timeout_methods!();

    /// The pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }
}

impl_fd!(UnixListener);
impl_fd!(UnixStream);
impl_stream_io!(UnixStream);
