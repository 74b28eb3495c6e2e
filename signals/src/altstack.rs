//! Per-M alternate signal stacks.
//!
//! A fault on a G's stack that overflowed it, or a dump that walks many
//! stacks, must not run on the stack that faulted. Every M (runtime Ms and
//! extra Ms bound to foreign threads) gets its own alternate signal stack
//! with a guard page when it starts (the scheduler's M start hook), and gives
//! it back when its thread exits ([`crate::per_m`] keeps it). The handlers
//! are installed with `SA_ONSTACK`.
//!
//! Also here, the other stacks a handler may read: the main thread's, the
//! calling thread's, and a probe for pages of an unknown stack. A helper:
//! calls nothing else in this crate.

use core::sync::atomic::Ordering;

/// Usable bytes of a signal stack: the dump keeps frame arrays and a group
/// table on it.
pub const SIGSTACK_SIZE: usize = 256 * 1024;

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

static MAIN_STACK: [core::sync::atomic::AtomicUsize; 2] =
    [const { core::sync::atomic::AtomicUsize::new(0) }; 2];

/// Records the calling thread's stack as the main thread's if it is the
/// main thread (start-up).
pub fn record_main_stack() {
    // SAFETY: getpid/gettid have no preconditions.
    if unsafe { libc::getpid() != libc::gettid() } {
        return;
    }
    if let Some((lo, hi)) = calling_thread_stack() {
        MAIN_STACK[0].store(lo, Ordering::Relaxed);
        MAIN_STACK[1].store(hi, Ordering::Relaxed);
    }
}

/// The main thread's stack if `sp` is in it. Async-signal-safe.
pub fn main_stack_if(sp: usize) -> Option<(usize, usize)> {
    let (lo, hi) = (
        MAIN_STACK[0].load(Ordering::Relaxed),
        MAIN_STACK[1].load(Ordering::Relaxed),
    );
    (lo <= sp && sp < hi).then_some((lo, hi))
}

/// `[lo, hi)` of the calling thread's stack (allocates for the main thread:
/// start-up and M start only).
pub(crate) fn calling_thread_stack() -> Option<(usize, usize)> {
    // SAFETY: pthread_getattr_np fills attr for the calling thread; we
    // destroy it after reading.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = core::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (rc == 0).then(|| (addr as usize, addr as usize + size))
    }
}

/// Enables the signal stack mapped by [`map`] (`(base, len)`, guard page
/// first) on the calling thread.
pub(crate) fn enable(map: (usize, usize)) {
    let g = page();
    let st = libc::stack_t {
        ss_sp: (map.0 + g) as *mut libc::c_void,
        ss_flags: 0,
        ss_size: map.1 - g,
    };
    // SAFETY: the stack is a live mapping owned by this M for the process
    // lifetime; sigaltstack only records it for the calling thread.
    unsafe { libc::sigaltstack(&st, core::ptr::null_mut()) };
}

/// Stops using a signal stack on the calling thread.
pub(crate) fn disable() {
    let st = libc::stack_t {
        ss_sp: core::ptr::null_mut(),
        ss_flags: libc::SS_DISABLE,
        ss_size: 0,
    };
    // SAFETY: disabling the calling thread's alternate stack is always
    // allowed when not running on it (hooks run on the thread's own stack).
    unsafe { libc::sigaltstack(&st, core::ptr::null_mut()) };
}

/// Maps a signal stack of [`SIGSTACK_SIZE`] usable bytes above a guard
/// page: `(base, len)` of the mapping.
pub(crate) fn map() -> Option<(usize, usize)> {
    let g = page();
    let len = SIGSTACK_SIZE + g;
    // SAFETY: a fresh anonymous private mapping; no existing memory is
    // affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the first page of our own mapping becomes the guard.
    unsafe { libc::mprotect(p, g, libc::PROT_NONE) };
    Some((p as usize, len))
}

/// `[lo, hi)` of the calling thread's current alternate signal stack, if
/// any. Async-signal-safe.
pub fn current_altstack() -> Option<(usize, usize)> {
    let mut st = libc::stack_t {
        ss_sp: core::ptr::null_mut(),
        ss_flags: 0,
        ss_size: 0,
    };
    // SAFETY: querying only; st is a valid out-pointer.
    if unsafe { libc::sigaltstack(core::ptr::null(), &mut st) } != 0
        || st.ss_flags & libc::SS_DISABLE != 0
    {
        return None;
    }
    let lo = st.ss_sp as usize;
    Some((lo, lo + st.ss_size))
}

/// A pipe used to test whether memory is readable without touching it:
/// `write(2)` from an unreadable address fails with EFAULT instead of
/// faulting. Made at start-up.
static PROBE_PIPE: [core::sync::atomic::AtomicI32; 2] =
    [const { core::sync::atomic::AtomicI32::new(-1) }; 2];

/// Makes the probe pipe (start-up).
pub fn init_probe() {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid out-array; the pipe is ours for the process.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } == 0 {
        PROBE_PIPE[0].store(fds[0], Ordering::Relaxed);
        PROBE_PIPE[1].store(fds[1], Ordering::Relaxed);
    }
}

/// Whether the byte at `addr` can be read. Async-signal-safe: two system
/// calls, no fault.
pub fn readable(addr: usize) -> bool {
    let (r, w) = (
        PROBE_PIPE[0].load(Ordering::Relaxed),
        PROBE_PIPE[1].load(Ordering::Relaxed),
    );
    if w < 0 {
        return false;
    }
    // SAFETY: write(2) validates the source address itself (EFAULT); the
    // read drains the byte into a local.
    unsafe {
        if libc::write(w, addr as *const libc::c_void, 1) != 1 {
            return false;
        }
        let mut b = 0u8;
        libc::read(r, (&mut b as *mut u8).cast(), 1);
    }
    true
}

/// For a thread whose stack bounds are unknown: the readable pages from
/// `sp`'s page upward (at most `max` bytes), found by probing each page.
/// Empty if `sp`'s own page cannot be read (a stack overflow). Async-signal-
/// safe.
pub fn readable_above(sp: usize, max: usize) -> (usize, usize) {
    let pg = page();
    let lo = sp & !(pg - 1);
    let mut hi = lo;
    while hi - lo < max && readable(hi) {
        hi += pg;
    }
    if hi == lo { (0, 0) } else { (sp.max(lo), hi) }
}
