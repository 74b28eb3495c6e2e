//! The handlers that were installed before gort's (std's stack-overflow
//! reporter, a C library's handler): recorded at installation, called by
//! the crasher after its dump. A helper: calls nothing else in this crate.

use arch::sigctx::SigCtx;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Per signal number: the previous `sa_sigaction`, and its `sa_flags`.
/// Written at start-up before gort's handler is live for that signal
/// (Release), read by the handler (Acquire).
static PREV: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];
static PREV_FLAGS: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];

/// Remembers `old`, the action gort's handler replaced for `signo`.
pub(crate) fn record(signo: i32, old: &libc::sigaction) {
    let Some(i) = usize::try_from(signo).ok().filter(|&i| i < PREV.len()) else {
        return;
    };
    PREV[i].store(old.sa_sigaction, Ordering::Release);
    PREV_FLAGS[i].store(old.sa_flags as usize, Ordering::Release);
}

/// Calls the handler that was installed before gort's for `signo`, if it
/// was a real function (not `SIG_DFL` or `SIG_IGN`). Async-signal-safe as
/// far as that handler is.
pub(crate) fn chain(signo: i32, ctx: &SigCtx) {
    let Some(i) = usize::try_from(signo).ok().filter(|&i| i < PREV.len()) else {
        return;
    };
    let prev = PREV[i].load(Ordering::Acquire);
    if prev <= 1 {
        return;
    }
    let flags = PREV_FLAGS[i].load(Ordering::Acquire) as i32;
    if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it
        // has this signature; the arguments are the kernel's.
        let f: unsafe extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { core::mem::transmute(prev) };
        // SAFETY: as above.
        unsafe { f(signo, ctx.info_ptr(), ctx.uc_ptr()) };
    } else {
        // SAFETY: a plain handler: fn(int).
        let f: unsafe extern "C" fn(libc::c_int) = unsafe { core::mem::transmute(prev) };
        // SAFETY: as above.
        unsafe { f(signo) };
    }
}
