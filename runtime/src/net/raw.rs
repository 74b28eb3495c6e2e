//! Sockets made elsewhere (systemd or listenfd, socket2, a parent process)
//! and handed to gort, and gort's sockets handed back: `from_std`/
//! `into_std`, `From<OwnedFd>`, `FromRawFd`, `IntoRawFd` and
//! `From<socket> for OwnedFd`, written once for every socket type.
//!
//! The one `unsafe` here is `FromRawFd::from_raw_fd` itself, whose contract
//! (the caller owns an open descriptor) is the trait's.

/// The conversions of a socket type `$t` (fields `reg` and `inner`, and a
/// `wrap(inner: $std) -> io::Result<$t>` that registers a non-blocking
/// socket) whose std twin is `$std`.
macro_rules! impl_conversions {
    ($t:ident, $std:ty) => {
        impl $t {
            /// Takes over a socket made elsewhere (a listener from systemd
            /// or `listenfd`, a socket built with socket2, a std socket):
            /// puts it in non-blocking mode and registers it with the
            /// netpoller. Fails if the netpoller cannot take it (the
            /// socket is closed then, as it was moved in).
            pub fn from_std(socket: $std) -> std::io::Result<$t> {
                socket.set_nonblocking(true)?;
                $t::wrap(socket)
            }

            /// Hands the socket back as a std one in blocking mode, no
            /// longer registered with the netpoller.
            pub fn into_std(self) -> std::io::Result<$std> {
                let socket = <$std>::from(std::os::fd::OwnedFd::from(self));
                socket.set_nonblocking(false)?;
                Ok(socket)
            }
        }

        impl From<std::os::fd::OwnedFd> for $t {
            /// As [`from_std`]($t::from_std).
            ///
            /// # Panics
            ///
            /// If the netpoller cannot take the descriptor (no memory, the
            /// epoll watch limit): `from_std` returns that error instead.
            fn from(fd: std::os::fd::OwnedFd) -> $t {
                match $t::from_std(<$std>::from(fd)) {
                    Ok(s) => s,
                    Err(e) => panic!(
                        concat!("runtime::net::", stringify!($t), "::from(OwnedFd): {}"),
                        e
                    ),
                }
            }
        }

        // The trait's method is `unsafe fn`; this is the crate's only
        // unsafe code outside `scope` and `ffi`.
        #[allow(unsafe_code)]
        impl std::os::fd::FromRawFd for $t {
            /// As `From<OwnedFd>`.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $t {
                // SAFETY: the trait's contract: the caller owns `fd`, an
                // open descriptor, and gives it to us.
                $t::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
            }
        }

        impl std::os::fd::IntoRawFd for $t {
            /// Deregisters the socket and hands its descriptor over (still
            /// in non-blocking mode).
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(std::os::fd::OwnedFd::from(self))
            }
        }

        impl From<$t> for std::os::fd::OwnedFd {
            /// Deregisters the socket and hands its descriptor over (still
            /// in non-blocking mode).
            fn from(s: $t) -> std::os::fd::OwnedFd {
                let $t { reg, inner, .. } = s;
                drop(reg);
                std::os::fd::OwnedFd::from(inner)
            }
        }
    };
}

pub(crate) use impl_conversions;
