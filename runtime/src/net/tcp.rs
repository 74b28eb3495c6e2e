//! TCP: [`TcpListener`] and [`TcpStream`] on the netpoller.

use super::{AcceptDeadline, Timeouts, each_addr};
use scheduler::netpoll::{Mode, Registration, deadline_after, register};
use scheduler::socket;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

/// A TCP socket listening for connections; `accept` parks the calling G.
///
/// ```no_run
/// let listener = runtime::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// runtime::go(move || {
///     let mut c = runtime::net::TcpStream::connect(addr).unwrap();
///     std::io::Write::write_all(&mut c, b"hi").unwrap();
/// });
/// let (mut s, _) = listener.accept().unwrap();
/// let mut buf = [0u8; 2];
/// std::io::Read::read_exact(&mut s, &mut buf).unwrap();
/// ```
#[derive(Debug)]
pub struct TcpListener {
    // Field order is drop order: deregister before the socket closes.
    reg: Registration,
    inner: std::net::TcpListener,
    accept_at: AcceptDeadline,
}

impl TcpListener {
    /// Binds to `addr` (the first of its addresses that works) and listens
    /// with the system's largest backlog (`net.core.somaxconn`).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let fd = socket::socket_for(a, socket::Kind::Stream)?;
            socket::bind_inet(fd.as_fd(), a, socket::Kind::Stream)?;
            socket::listen(fd.as_fd())?;
            TcpListener::wrap(std::net::TcpListener::from(fd))
        })
    }

    fn wrap(inner: std::net::TcpListener) -> io::Result<TcpListener> {
        let reg = register(inner.as_raw_fd())?;
        Ok(TcpListener {
            reg,
            inner,
            accept_at: AcceptDeadline::default(),
        })
    }

    accept_deadline_method!();

    /// Waits for a connection (parks the G; blocks a plain thread).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = self.reg.io(Mode::Read, self.accept_at.get(), || {
            socket::accept(self.inner.as_fd())
        })?;
        let stream = TcpStream::from_fd(fd)?;
        let addr = match addr {
            Some(a) => a,
            None => stream.peer_addr()?,
        };
        Ok((stream, addr))
    }

    /// An endless iterator of accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Another handle on the same socket (`dup`), registered on its own
    /// (without this handle's deadline).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        TcpListener::wrap(self.inner.try_clone()?)
    }

    /// The pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }
}

/// Iterator over [`TcpListener::accept`]'s connections.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A TCP connection. Reads and writes park the calling G until the socket
/// is ready.
#[derive(Debug)]
pub struct TcpStream {
    // Field order is drop order: deregister before the socket closes.
    reg: Registration,
    inner: std::net::TcpStream,
    timeouts: Timeouts,
    /// `TCP_INQ` is on: each read learns whether it emptied the receive
    /// queue, and the next read then parks without a syscall that would
    /// find `EAGAIN` (`netpoll`'s "Calls that know they drained the socket").
    inq: bool,
}

impl TcpStream {
    fn wrap(inner: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_fd(OwnedFd::from(inner))
    }

    fn from_fd(fd: OwnedFd) -> io::Result<TcpStream> {
        // Kernels before 4.18 (and some emulators) lack TCP_INQ: reads then
        // take the plain path.
        let inq = socket::set_tcp_inq(fd.as_fd()).is_ok();
        let inner = std::net::TcpStream::from(fd);
        let reg = register(inner.as_raw_fd())?;
        Ok(TcpStream {
            reg,
            inner,
            timeouts: Timeouts::default(),
            inq,
        })
    }

    /// `Read::read`: on a G, parks while nothing has arrived.
    fn read_io(&self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = self.timeouts.read_deadline();
        if !self.inq {
            return self.reg.io(Mode::Read, deadline, || {
                std::io::Read::read(&mut &self.inner, buf)
            });
        }
        self.reg.io_drain(Mode::Read, deadline, || {
            socket::recv_inq(self.inner.as_fd(), buf)
        })
    }

    /// `Write::write`: on a G, parks while the send buffer is full. A short
    /// write says it is full now.
    fn write_io(&self, buf: &[u8]) -> io::Result<usize> {
        self.reg
            .io_drain(Mode::Write, self.timeouts.write_deadline(), || {
                std::io::Write::write(&mut &self.inner, buf).map(|n| (n, n < buf.len()))
            })
    }

    /// Connects to `addr` (each of its addresses in turn).
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_deadline(a, None))
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_deadline(addr, deadline_after(Some(timeout)))
    }

    fn connect_deadline(addr: &SocketAddr, deadline: Option<u64>) -> io::Result<TcpStream> {
        let s = TcpStream::from_fd(socket::socket_for(addr, socket::Kind::Stream)?)?;
        match socket::connect_inet(s.inner.as_fd(), addr) {
            Ok(()) => return Ok(s),
            Err(e) if socket::in_progress(&e) => {}
            Err(e) => return Err(e),
        }
        // Connecting: writable once done, with SO_ERROR telling how.
        loop {
            s.reg.wait(Mode::Write, deadline)?;
            if let Some(e) = s.inner.take_error()? {
                return Err(e);
            }
            match s.inner.peer_addr() {
                Ok(_) => return Ok(s),
                Err(e) if socket::not_connected(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Shuts down the read half, the write half, or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    /// Another handle on the same connection (`dup`), registered on its
    /// own; it starts with this handle's timeouts.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let inner = self.inner.try_clone()?;
        let reg = register(inner.as_raw_fd())?;
        Ok(TcpStream {
            reg,
            inner,
            timeouts: self.timeouts.copy(),
            inq: self.inq,
        })
    }

    timeout_methods!();

    /// Reads without consuming (`MSG_PEEK`).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.reg.io(Mode::Read, self.timeouts.read_deadline(), || {
            self.inner.peek(buf)
        })
    }

    /// The pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }
}

super::raw::impl_conversions!(TcpListener, std::net::TcpListener);
super::raw::impl_conversions!(TcpStream, std::net::TcpStream);
impl_fd!(TcpListener);
impl_fd!(TcpStream);
impl_stream_io!(TcpStream);
