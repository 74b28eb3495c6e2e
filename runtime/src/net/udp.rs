//! UDP: [`UdpSocket`] on the netpoller.

use super::{Timeouts, each_addr, resolve};
use scheduler::netpoll::{Mode, Registration, register};
use scheduler::socket;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

/// A UDP socket. `recv_from`/`recv` park the calling G until a datagram
/// arrives; `send_to`/`send` park only while the send buffer is full.
#[derive(Debug)]
pub struct UdpSocket {
    // Field order is drop order: deregister before the socket closes.
    reg: Registration,
    inner: std::net::UdpSocket,
    timeouts: Timeouts,
}

impl UdpSocket {
    /// Binds to `addr` (the first of its addresses that works).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            let fd = socket::socket_for(a, socket::Kind::Datagram)?;
            socket::bind_inet(fd.as_fd(), a, socket::Kind::Datagram)?;
            UdpSocket::wrap(std::net::UdpSocket::from(fd))
        })
    }

    fn wrap(inner: std::net::UdpSocket) -> io::Result<UdpSocket> {
        let reg = register(inner.as_raw_fd())?;
        Ok(UdpSocket {
            reg,
            inner,
            timeouts: Timeouts::default(),
        })
    }

    /// Sends `buf` as one datagram to `addr` (its first address).
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let to = resolve(addr)?[0];
        self.reg
            .io(Mode::Write, self.timeouts.write_deadline(), || {
                self.inner.send_to(buf, to)
            })
    }

    /// Receives one datagram and who sent it.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.reg.io(Mode::Read, self.timeouts.read_deadline(), || {
            self.inner.recv_from(buf)
        })
    }

    /// Sets the default peer for [`send`](UdpSocket::send) and filters
    /// [`recv`](UdpSocket::recv) to it.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        each_addr(addr, |a| self.inner.connect(a))
    }

    datagram_methods!();
    peer_socket_methods!(UdpSocket, SocketAddr);

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner.set_broadcast(on)
    }
}

impl_fd!(UdpSocket);
super::raw::impl_conversions!(UdpSocket, std::net::UdpSocket);
