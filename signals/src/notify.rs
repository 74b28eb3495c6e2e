//! OS signals delivered to the program instead of their default action:
//! the handler side of `runtime::signal` (Go's `os/signal`).
//!
//! [`enable`] installs [`on_signal`] for a signal gort does not use for
//! crash tracing. The handler is async-signal-safe: it sets the signal's
//! flag in [`PENDING`] and writes one byte to a non-blocking pipe (a full
//! pipe already means "look"), saving and restoring `errno`. A delivery
//! thread blocks in [`wait_pending`] on the pipe's other end and takes the
//! flags. Nothing here allocates or locks in the handler; byte-sized flags
//! (not one 64-bit word) keep the handler free of 64-bit atomics, which on
//! i686 compile to SSE or `cmpxchg8b` loops.
//!
//! Crash signals (faults, SIGABRT, SIGQUIT) and the ones no process may
//! catch are refused: see [`enable`].

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use scheduler::lock_rank::{Rank, RankedMutex};
use std::io;

/// Highest signal number handled here (the real-time signals included).
pub const MAX_SIGNAL: usize = 64;

/// A signal arrived and was not taken yet, per signal number.
static PENDING: [AtomicBool; MAX_SIGNAL + 1] = [const { AtomicBool::new(false) }; MAX_SIGNAL + 1];
/// The pipe: the handler writes, [`wait_pending`] reads. -1 until made.
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
static PIPE_R: AtomicI32 = AtomicI32::new(-1);

/// The action each enabled signal had before [`enable`], for [`disable`].
static PREVIOUS: RankedMutex<Vec<(i32, libc::sigaction)>> =
    RankedMutex::new(Rank::SignalPrevious, Vec::new());

/// Why a signal cannot be delivered to the program.
#[derive(Debug)]
pub enum NotifyError {
    /// Not a signal number (1..=64 on Linux).
    OutOfRange(i32),
    /// Used by gort's crash tracing (a fault, SIGABRT, SIGQUIT), or one no
    /// process can catch (SIGKILL, SIGSTOP).
    Reserved(i32),
    /// `sigaction` or `pipe2` failed.
    Os(io::Error),
}

impl core::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NotifyError::OutOfRange(s) => write!(f, "signal {s} is not a signal number (1..=64)"),
            NotifyError::Reserved(s) => write!(
                f,
                "signal {s} cannot be delivered to the program: gort uses it (a crash \
                 signal: a fault, SIGABRT, SIGQUIT; SIGURG for live dumps) or it cannot be \
                 caught (SIGKILL, SIGSTOP)"
            ),
            NotifyError::Os(e) => write!(f, "installing the signal handler failed: {e}"),
        }
    }
}

impl std::error::Error for NotifyError {}

/// Whether `sig` may be delivered to the program.
fn check(sig: i32) -> Result<usize, NotifyError> {
    let n = usize::try_from(sig)
        .ok()
        .filter(|&n| (1..=MAX_SIGNAL).contains(&n))
        .ok_or(NotifyError::OutOfRange(sig))?;
    if sig == libc::SIGKILL
        || sig == libc::SIGSTOP
        || sig == crate::live::LIVE_SIGNAL
        || crate::table::TABLE.iter().any(|e| e.signo == sig)
    {
        return Err(NotifyError::Reserved(sig));
    }
    Ok(n)
}

fn pipe() -> io::Result<()> {
    if PIPE_R.load(Ordering::Acquire) >= 0 {
        return Ok(());
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a writable array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // The read end blocks (the delivery thread sleeps in read); the write
    // end stays non-blocking for the handler.
    // SAFETY: fcntl on the descriptor just made.
    unsafe { libc::fcntl(fds[0], libc::F_SETFL, 0) };
    PIPE_W.store(fds[1], Ordering::Release);
    PIPE_R.store(fds[0], Ordering::Release);
    Ok(())
}

/// The handler: see the module docs. Async-signal-safe.
extern "C" fn on_signal(sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: glibc's errno location for this thread; saved and restored
    // so the interrupted code does not see our write's errno.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(flag) = usize::try_from(sig).ok().and_then(|n| PENDING.get(n)) {
        flag.store(true, Ordering::Release);
    }
    let fd = PIPE_W.load(Ordering::Acquire);
    if fd >= 0 {
        let b = 0u8;
        // SAFETY: write(2) of one byte from a local; async-signal-safe.
        unsafe { libc::write(fd, (&raw const b).cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Starts delivering `sig` to [`wait_pending`] instead of its current
/// action (idempotent). Refuses crash signals and uncatchable ones.
pub fn enable(sig: i32) -> Result<(), NotifyError> {
    check(sig)?;
    crate::init();
    let mut prev = PREVIOUS.lock();
    if prev.iter().any(|(s, _)| *s == sig) {
        return Ok(());
    }
    pipe().map_err(NotifyError::Os)?;
    // SAFETY: an all-zero sigaction is valid; the fields are set below.
    let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
    sa.sa_sigaction = on_signal as *const () as usize;
    sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
    // SAFETY: sa_mask is a valid sigset_t to clear.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: zeroed is a valid sigaction to receive the old action.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: both point to valid sigaction structs; sig was checked.
    if unsafe { libc::sigaction(sig, &sa, &mut old) } < 0 {
        return Err(NotifyError::Os(io::Error::last_os_error()));
    }
    prev.push((sig, old));
    Ok(())
}

/// Gives `sig` back the action it had before [`enable`] (no effect if not
/// enabled). A signal that arrived in between is still reported.
pub fn disable(sig: i32) {
    let mut prev = PREVIOUS.lock();
    if let Some(i) = prev.iter().position(|(s, _)| *s == sig) {
        let (_, old) = prev.swap_remove(i);
        // SAFETY: `old` is the action sigaction gave us for this signal.
        unsafe { libc::sigaction(sig, &old, core::ptr::null_mut()) };
    }
}

/// Whether `sig` is enabled.
pub fn enabled(sig: i32) -> bool {
    PREVIOUS.lock().iter().any(|(s, _)| *s == sig)
}

/// Blocks the calling thread until some enabled signal arrived, then
/// returns the signals that arrived since the last call (each once, in
/// number order). For the one delivery thread.
pub fn wait_pending() -> Vec<i32> {
    loop {
        let mut out = Vec::new();
        for (n, flag) in PENDING.iter().enumerate() {
            if flag.swap(false, Ordering::AcqRel) {
                out.push(n as i32);
            }
        }
        if !out.is_empty() {
            return out;
        }
        let fd = PIPE_R.load(Ordering::Acquire);
        if fd < 0 {
            // Nothing enabled yet: nothing can arrive.
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        let mut buf = [0u8; 64];
        // SAFETY: reading into a local buffer from our pipe. EINTR and
        // the like just loop.
        unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    }
}
