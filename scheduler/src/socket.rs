//! The socket system calls `runtime::net` needs that std does not offer in
//! non-blocking form, with every `unsafe` of the network layer in one place
//! (and the two descriptor calls the netpoller shares with it: `poll(2)`
//! for plain threads, `O_NONBLOCK`).
//!
//! std already gives safe, non-blocking-capable `read`, `write`, `accept`,
//! `send_to`, `recv_from`, `shutdown`, `peer_addr`, ... once a socket is in
//! non-blocking mode; `runtime::net` uses them. What std lacks: creating a
//! socket non-blocking from the start (`SOCK_NONBLOCK`, one syscall instead of
//! two), a `connect` that returns `EINPROGRESS` instead of blocking, `listen`
//! with a backlog of our choosing, `accept4` that makes the new socket
//! non-blocking in the same call, and `poll(2)` for plain threads. Addresses
//! cross the boundary as std types; conversion to and from `sockaddr` is done
//! here.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Socket kinds `runtime::net` creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `SOCK_STREAM`.
    Stream,
    /// `SOCK_DGRAM`.
    Datagram,
}

impl Kind {
    fn raw(self) -> libc::c_int {
        match self {
            Kind::Stream => libc::SOCK_STREAM,
            Kind::Datagram => libc::SOCK_DGRAM,
        }
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The Unix-domain address family, for [`socket`].
pub const AF_UNIX: libc::c_int = libc::AF_UNIX;

/// A new non-blocking, close-on-exec socket of `domain` (`AF_INET`,
/// `AF_INET6`, `AF_UNIX`).
pub fn socket(domain: libc::c_int, kind: Kind) -> io::Result<OwnedFd> {
    let ty = kind.raw() | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) has no memory preconditions.
    let fd = cvt(unsafe { libc::socket(domain, ty, 0) })?;
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A non-blocking socket for `addr`'s family.
pub fn socket_for(addr: &SocketAddr, kind: Kind) -> io::Result<OwnedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    socket(domain, kind)
}

/// A `sockaddr` big enough for any family we use.
#[repr(C)]
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    fn empty() -> RawAddr {
        RawAddr {
            // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
            storage: unsafe { core::mem::zeroed() },
            len: core::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    fn inet(addr: &SocketAddr) -> RawAddr {
        let mut raw = RawAddr::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned at
                // least as sockaddr_in (its purpose).
                unsafe { core::ptr::write((&raw mut raw.storage).cast(), sin) };
                raw.len = core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above, for sockaddr_in6.
                unsafe { core::ptr::write((&raw mut raw.storage).cast(), sin6) };
                raw.len = core::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        raw
    }

    fn unix(path: &Path) -> io::Result<RawAddr> {
        let bytes = path.as_os_str().as_bytes();
        let mut raw = RawAddr::empty();
        // SAFETY: sockaddr_storage is larger than and aligned at least as
        // sockaddr_un; we only write inside it.
        let sun = unsafe { &mut *(&raw mut raw.storage).cast::<libc::sockaddr_un>() };
        if bytes.is_empty() || bytes.len() >= sun.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unix socket path is empty or longer than sun_path (107 bytes)",
            ));
        }
        if bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unix socket path contains a NUL byte",
            ));
        }
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        raw.len = (core::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1)
            as libc::socklen_t;
        Ok(raw)
    }

    fn ptr(&self) -> *const libc::sockaddr {
        (&raw const self.storage).cast()
    }

    /// The inet address in `storage`, if it holds one.
    fn to_inet(&self) -> Option<SocketAddr> {
        match self.storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in (family AF_INET).
                let sin = unsafe { &*(&raw const self.storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the kernel wrote a sockaddr_in6 (family AF_INET6).
                let sin6 = unsafe { &*(&raw const self.storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

fn connect_raw(fd: BorrowedFd<'_>, raw: &RawAddr) -> io::Result<()> {
    loop {
        // SAFETY: raw holds a valid sockaddr of raw.len bytes.
        let r = unsafe { libc::connect(fd.as_raw_fd(), raw.ptr(), raw.len) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Starts connecting `fd` to `addr`. A non-blocking socket returns
/// `EINPROGRESS` ([`in_progress`]): wait until writable, then read
/// `SO_ERROR` (std's `take_error`).
pub fn connect_inet(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    connect_raw(fd, &RawAddr::inet(addr))
}

/// [`connect_inet`] for a Unix socket path.
pub fn connect_unix(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    connect_raw(fd, &RawAddr::unix(path)?)
}

/// Whether `e` says a non-blocking connect is under way.
pub fn in_progress(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINPROGRESS) | Some(libc::EALREADY)
    )
}

/// Whether `e` is `ENOTCONN` (a connect not finished yet).
pub fn not_connected(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTCONN)
}

/// Whether `e` is `EAGAIN` from a Unix-socket connect (the listener's
/// backlog is full: try again later).
pub fn backlog_full(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAGAIN)
}

fn bind_raw(fd: BorrowedFd<'_>, raw: &RawAddr) -> io::Result<()> {
    // SAFETY: raw holds a valid sockaddr of raw.len bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), raw.ptr(), raw.len) }).map(drop)
}

/// Binds `fd` to `addr` (with `SO_REUSEADDR` for stream sockets, as std and
/// Go do).
pub fn bind_inet(fd: BorrowedFd<'_>, addr: &SocketAddr, kind: Kind) -> io::Result<()> {
    if kind == Kind::Stream {
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    }
    bind_raw(fd, &RawAddr::inet(addr))
}

/// Binds `fd` to a Unix socket path.
pub fn bind_unix(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    bind_raw(fd, &RawAddr::unix(path)?)
}

/// `listen(2)` with the system's largest backlog (`net.core.somaxconn`), as
/// Go does: a burst of thousands of connects must not overflow the queue.
pub fn listen(fd: BorrowedFd<'_>) -> io::Result<()> {
    static BACKLOG: std::sync::OnceLock<libc::c_int> = std::sync::OnceLock::new();
    let backlog = *BACKLOG.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|&n: &libc::c_int| n > 0)
            .unwrap_or(4096)
    });
    // SAFETY: listen(2) has no memory preconditions.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(drop)
}

/// `accept4(2)`: the new socket is non-blocking and close-on-exec. Returns
/// it with the peer's inet address (`None` for other families).
pub fn accept(fd: BorrowedFd<'_>) -> io::Result<(OwnedFd, Option<SocketAddr>)> {
    let mut raw = RawAddr::empty();
    loop {
        // SAFETY: raw.storage is a writable sockaddr_storage of raw.len bytes.
        let r = unsafe {
            libc::accept4(
                fd.as_raw_fd(),
                (&raw mut raw.storage).cast(),
                &mut raw.len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if r >= 0 {
            // SAFETY: accept4 returned a new descriptor nobody else owns.
            let owned = unsafe { OwnedFd::from_raw_fd(r) };
            return Ok((owned, raw.to_inet()));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sets an `int` socket option.
pub fn set_int_opt(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: value is a live c_int and we pass its size.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            core::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Turns on `TCP_INQ` (Linux 4.18): every `recvmsg` then reports how many
/// bytes are left to read ([`recv_inq`]).
pub fn set_tcp_inq(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int_opt(fd, libc::SOL_TCP, libc::TCP_INQ, 1)
}

/// `recvmsg(2)` into `buf` on a TCP socket with `TCP_INQ` set: returns the
/// bytes read and whether the kernel said none are left (the `TCP_CM_INQ`
/// count is 0; the kernel reports 1 at end of stream, so a socket at its
/// end never counts as drained). `false` when the count is missing.
pub fn recv_inq(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, bool)> {
    // Room for one cmsg holding an int, aligned for cmsghdr.
    #[repr(C)]
    struct Control {
        _align: [libc::cmsghdr; 0],
        bytes: [u8; 32],
    }
    let mut control = Control {
        _align: [],
        bytes: [0; 32],
    };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no iov yet).
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes.as_mut_ptr().cast();
    msg.msg_controllen = control.bytes.len() as _;
    // SAFETY: msg points at one iovec over `buf` (writable, its length) and
    // at the writable control buffer of the length given; both outlive the
    // call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut left = None;
    // SAFETY: msg was filled in by recvmsg; CMSG_FIRSTHDR/NXTHDR stay
    // within msg_controllen, and the data of a TCP_CM_INQ cmsg is an int
    // (read unaligned, as the layout only promises cmsg alignment).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_TCP && (*c).cmsg_type == libc::TCP_CM_INQ {
                left = Some(libc::CMSG_DATA(c).cast::<libc::c_int>().read_unaligned());
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, n > 0 && left == Some(0)))
}

/// Which readiness a plain thread waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Readable (or closed, or in error).
    Read,
    /// Writable (or closed, or in error).
    Write,
}

/// `poll(2)` on one descriptor: blocks the calling thread until `fd` is
/// ready for `interest` or `timeout_ms` passes (negative: no limit).
/// Returns whether it became ready. For plain threads, which have no
/// netpoller to park on.
pub fn poll_one(fd: RawFd, interest: Interest, timeout_ms: libc::c_int) -> io::Result<bool> {
    let events = match interest {
        Interest::Read => libc::POLLIN | libc::POLLRDHUP,
        Interest::Write => libc::POLLOUT,
    };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: pfd is one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r >= 0 {
            return Ok(r > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sets or clears `O_NONBLOCK` on any descriptor.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL on a borrowed (open) descriptor has no memory effects.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL with flags derived from the descriptor's own.
    if new != flags && unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
