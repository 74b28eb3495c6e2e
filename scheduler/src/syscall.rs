//! Calls out of the runtime: syscalls and C calls that may block.
//!
//! `enter_syscall` sets the M's P aside (status `Syscall`, a new sequence
//! number) without giving it up: a short call takes it back with one
//! compare-and-swap in `exit_syscall`. If the call lasts, `sysmon` retakes
//! the P (after ~20 µs when other work waits) and hands it to another M, so
//! the blocked M holds no P. On return such an M takes an idle P if there is
//! one, or queues its G on the global queue and sleeps.

use crate::g::GStatus;
use crate::m::current_m;
use crate::p::P;
use core::sync::atomic::Ordering;

/// Runs `f` (a blocking syscall or C call) with the calling G's P set aside
/// so that other Gs keep running if `f` blocks. On a plain thread, or when
/// already inside a syscall, it just calls `f`.
#[inline]
pub fn syscall<R>(f: impl FnOnce() -> R) -> R {
    if !enter_syscall() {
        return f();
    }
    /// Takes the P back even if `f` unwinds.
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            exit_syscall();
        }
    }
    let _exit = Exit;
    f()
}

/// Marks the running G as in a syscall. Returns false (doing nothing) when
/// not on a G holding a P.
#[inline]
pub fn enter_syscall() -> bool {
    if crate::fork::in_forked_child() {
        // No P to set aside in a forked child: the call just runs.
        return false;
    }
    let Some(m) = current_m() else { return false };
    if m.curg().is_none() {
        return false;
    }
    // A G running user code has lent its P: take it back first.
    let (m, _) = crate::engine::enter_or_wait(m);
    let Some(g) = m.curg() else { return false };
    let Some(p) = m.p() else { return false };
    let word = p.enter_syscall();
    m.oldp_word.store(word, Ordering::Relaxed);
    m.oldp.store(p as *const P as *mut P, Ordering::Relaxed);
    m.p.store(core::ptr::null_mut(), Ordering::Release);
    g.set_status(GStatus::Syscall);
    crate::bell::note_syscall();
    true
}

/// Ends a syscall begun by [`enter_syscall`]: takes the old P back, or
/// another idle P, or parks the G on the global queue until an M runs it.
#[inline]
pub fn exit_syscall() {
    let Some(m) = current_m() else { return };
    let Some(g) = m.curg() else { return };
    let p = m.oldp.swap(core::ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: oldp holds null or a 'static P stored by enter_syscall.
    if let Some(p) = unsafe { p.as_ref() }
        && p.exit_syscall_fast(m.oldp_word.load(Ordering::Relaxed))
    {
        m.p.store(p as *const P as *mut P, Ordering::Release);
        g.set_status(GStatus::Running);
        crate::engine::leave_on(m);
        return;
    }
    crate::engine::exit_syscall_slow(m);
    crate::engine::leave();
}
