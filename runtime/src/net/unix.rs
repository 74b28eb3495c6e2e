//! Unix-domain sockets: [`UnixListener`], [`UnixStream`] and
//! [`UnixDatagram`].

use super::{AcceptDeadline, Timeouts};
use scheduler::netpoll::{Mode, Registration, register};
use scheduler::socket;
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
    accept_at: AcceptDeadline,
}

impl UnixListener {
    /// Binds to the socket file `path` (which must not exist) and listens.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let fd = socket::socket(socket::AF_UNIX, socket::Kind::Stream)?;
        socket::bind_unix(fd.as_fd(), path.as_ref())?;
        socket::listen(fd.as_fd())?;
        UnixListener::wrap(std::os::unix::net::UnixListener::from(fd))
    }

    fn wrap(inner: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        let reg = register(inner.as_raw_fd())?;
        Ok(UnixListener {
            reg,
            inner,
            accept_at: AcceptDeadline::default(),
        })
    }

    accept_deadline_method!();

    /// Waits for a connection (parks the G; blocks a plain thread).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (fd, _) = self.reg.io(Mode::Read, self.accept_at.get(), || {
            socket::accept(self.inner.as_fd())
        })?;
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
    fn wrap(inner: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        UnixStream::from_fd(OwnedFd::from(inner))
    }

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
        let s = UnixStream::from_fd(socket::socket(socket::AF_UNIX, socket::Kind::Stream)?)?;
        loop {
            match socket::connect_unix(s.inner.as_fd(), path.as_ref()) {
                Ok(()) => return Ok(s),
                Err(e) if socket::backlog_full(&e) => crate::sleep(Duration::from_millis(1)),
                Err(e) if socket::in_progress(&e) => {
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

    /// Shuts down the read half, the write half, or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    peer_socket_methods!(UnixStream, SocketAddr);
}

/// A Unix-domain datagram socket. `recv`/`recv_from` park the calling G
/// until a datagram arrives; sends park only while the peer's queue is full.
#[derive(Debug)]
pub struct UnixDatagram {
    // Field order is drop order: deregister before the socket closes.
    reg: Registration,
    inner: std::os::unix::net::UnixDatagram,
    timeouts: Timeouts,
}

impl UnixDatagram {
    fn wrap(inner: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        inner.set_nonblocking(true)?;
        let reg = register(inner.as_raw_fd())?;
        Ok(UnixDatagram {
            reg,
            inner,
            timeouts: Timeouts::default(),
        })
    }

    /// A socket bound to the socket file `path` (which must not exist).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address (it can send, and receive replies only
    /// once connected, or on Linux through an autobound name).
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A connected pair of datagram sockets (`socketpair`).
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::wrap(a)?, UnixDatagram::wrap(b)?))
    }

    /// Sets the default peer for [`send`](Self::send) and filters
    /// [`recv`](Self::recv) to it.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.inner.connect(path)
    }

    /// Sends one datagram to the socket file `path`.
    pub fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.reg
            .io(Mode::Write, self.timeouts.write_deadline(), || {
                self.inner.send_to(buf, path)
            })
    }

    /// Receives one datagram and who sent it.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.reg.io(Mode::Read, self.timeouts.read_deadline(), || {
            self.inner.recv_from(buf)
        })
    }

    /// Shuts down the read half, the write half, or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    datagram_methods!();
    peer_socket_methods!(UnixDatagram, SocketAddr);
}

super::raw::impl_conversions!(UnixListener, std::os::unix::net::UnixListener);
super::raw::impl_conversions!(UnixStream, std::os::unix::net::UnixStream);
super::raw::impl_conversions!(UnixDatagram, std::os::unix::net::UnixDatagram);
impl_fd!(UnixListener);
impl_fd!(UnixStream);
impl_fd!(UnixDatagram);
impl_stream_io!(UnixStream);
