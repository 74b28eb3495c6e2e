//! How a crash ends the process: the bottom of the crash path, below the
//! dispatch, the crasher's dump and the relay; it calls nothing else in
//! this crate. Every function here is async-signal-safe and never returns.

use crate::clock;

/// Ends the process with `sig` and its default action (a core dump for
/// SIGABRT and the faults): resets the handler, unblocks `sig` and sends it
/// to this thread, so the thread that ends the process is thread 1 in the
/// core. `_exit(128 + sig)` if the signal somehow returns.
pub(crate) fn die_with(sig: i32) -> ! {
    // SAFETY: resetting a handler, unblocking and sending a signal to this
    // thread, and _exit are async-signal-safe; the structs are zeroed
    // locals we fill.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &sa, core::ptr::null_mut());
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut());
        libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::gettid(), sig);
        libc::_exit(128 + sig)
    }
}

/// Ends the process with SIGABRT and its default action (a core dump): how
/// the crash relay ends.
pub(crate) fn abort() -> ! {
    die_with(libc::SIGABRT)
}

/// Ends the process with `status` at once (`_exit`: no destructors, no
/// `atexit` handlers, no stdio flush; the dump wrote unbuffered).
pub(crate) fn exit(status: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and always safe to call.
    unsafe { libc::_exit(status) }
}

/// For a thread that lost the race to dump: sleeps until the thread that
/// won ends the process.
pub(crate) fn wait_for_the_end() -> ! {
    loop {
        clock::sleep_ns(1_000_000_000);
    }
}
