//! The process system calls `runtime::process` needs that std does not
//! offer: a pidfd to park a G on until a child exits, and `kill(2)` with
//! the pid checked, so the runtime crate itself stays free of `unsafe`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// `pidfd_open(2)`: a descriptor that turns readable when process `pid`
/// exits (Linux 5.3+). `GORT_PIDFD=0` makes it fail with `Unsupported`, to
/// exercise callers' fallbacks.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    if std::env::var_os("GORT_PIDFD").is_some_and(|v| v == "0") {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "pidfd disabled by GORT_PIDFD=0",
        ));
    }
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: pidfd_open takes two integers and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `kill(2)`: sends `signal` to process `pid`. Refuses pids that would
/// address a group or every process (0, or out of `pid_t`'s positive
/// range) and signal numbers out of range, with `InvalidInput`.
pub fn kill(pid: u32, signal: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a single process id"))?;
    if !(0..=libc::SIGRTMAX()).contains(&signal) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "signal number out of range",
        ));
    }
    // SAFETY: kill takes two integers.
    if unsafe { libc::kill(pid, signal) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
