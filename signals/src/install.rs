//! Installing the crash handlers, and the per-thread part of it each M
//! does when it starts. The top of the crash path: it points the kernel
//! at [`crate::handler`] and prepares what the handler will need (the
//! crash stack, the previous handlers); nothing on the crash path calls
//! back here. Start-up and M start only: may allocate.

use crate::clock::now_ns;
use crate::crash;
use crate::handler;
use crate::live::LIVE_SIGNAL;
use crate::previous;
use crate::table;
use crate::write::Out;
use core::sync::atomic::{AtomicU64, Ordering};

/// Installs gort's handler for every signal of the table (and the live
/// dumps' [`LIVE_SIGNAL`]), keeping the previous handlers to call after the
/// dump. Start-up only.
pub fn install() {
    crash::arm_selftest_from_env();
    crash::map_stack();
    arch::sigctx::set_signal_target(Some(handler::handle));
    install_entry(LIVE_SIGNAL);
    for e in table::TABLE {
        if let Some(old) = install_entry(e.signo)
            && old.sa_sigaction != arch::sigctx::signal_entry as *const () as usize
        {
            previous::record(e.signo, &old);
        }
    }
}

/// Installs `arch::sigctx::signal_entry` (which reaches
/// [`handler::handle`]) for `signo`; returns the action it replaced, or
/// `None` if sigaction failed. Everything is blocked during the handler
/// except the synchronous faults: a fault inside the handler must re-enter
/// it so that it ends the process with the *original* signal
/// (`exit::die_with`); blocked, the kernel would kill us with the new one.
fn install_entry(signo: libc::c_int) -> Option<libc::sigaction> {
    // SAFETY: sigaction with zeroed structs we fill; the entry point has
    // the SA_SIGINFO signature.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        let mut old: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = arch::sigctx::signal_entry as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        libc::sigfillset(&mut sa.sa_mask);
        for f in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
        ] {
            libc::sigdelset(&mut sa.sa_mask, f);
        }
        (libc::sigaction(signo, &sa, &mut old) == 0).then_some(old)
    }
}

/// M start hook part: unblock the table's signals on this thread and check
/// that nobody replaced a handler with one lacking `SA_ONSTACK`.
pub fn on_m_start() {
    // SAFETY: building a signal set and changing this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        for e in table::TABLE {
            libc::sigaddset(&mut set, e.signo);
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut());
    }
    if onstack_check_due(now_ns(libc::CLOCK_MONOTONIC_COARSE)) {
        check_onstack();
    }
}

/// When an M start last looked at the handlers (`CLOCK_MONOTONIC_COARSE`,
/// ns; 0: never).
static ONSTACK_CHECKED_AT: AtomicU64 = AtomicU64::new(0);

/// How often M starts look at the handlers. The handlers are process-wide,
/// so one look stands for every M that starts soon after; looking at each
/// start cost a foreign thread's first callback (which starts an extra M)
/// seven `sigaction` calls, ~0.7 µs of ~1.6 µs.
const ONSTACK_CHECK_EVERY_NS: u64 = 100_000_000;

/// Whether the M starting at `now` should look (then it claims the look).
fn onstack_check_due(now: u64) -> bool {
    let last = ONSTACK_CHECKED_AT.load(Ordering::Relaxed);
    (last == 0 || now.saturating_sub(last) >= ONSTACK_CHECK_EVERY_NS)
        && ONSTACK_CHECKED_AT
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// Reports handlers installed after gort's without `SA_ONSTACK`: a fault
/// on a G whose stack overflowed would then kill the process silently. Run
/// by M starts at most every [`ONSTACK_CHECK_EVERY_NS`].
pub fn check_onstack() -> usize {
    let mut bad = 0;
    for e in table::TABLE {
        // SAFETY: querying only.
        let cur = unsafe {
            let mut cur: libc::sigaction = core::mem::zeroed();
            libc::sigaction(e.signo, core::ptr::null(), &mut cur);
            cur
        };
        let ours = cur.sa_sigaction == arch::sigctx::signal_entry as *const () as usize;
        if !ours && cur.sa_sigaction > 1 && cur.sa_flags & libc::SA_ONSTACK == 0 {
            bad += 1;
            let mut o = Out::stderr();
            o.str("gort: the handler for ")
                .str(e.name)
                .str(" was replaced by one without SA_ONSTACK: ")
                .str("faults on G stacks will not be reported")
                .nl();
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Symptom: every M start pays for the handler check (seven syscalls on
    /// a foreign thread's first callback), or a check never comes again.
    #[test]
    fn m_starts_look_at_the_handlers_at_most_every_interval() {
        // Far past any real clock reading, so M starts elsewhere in this
        // process cannot claim a look in between.
        let t = 1u64 << 62;
        assert!(onstack_check_due(t));
        assert!(!onstack_check_due(t + 1_000_000));
        assert!(!onstack_check_due(t + ONSTACK_CHECK_EVERY_NS - 1));
        assert!(onstack_check_due(t + ONSTACK_CHECK_EVERY_NS));
        assert!(!onstack_check_due(t + ONSTACK_CHECK_EVERY_NS + 1));
    }
}
