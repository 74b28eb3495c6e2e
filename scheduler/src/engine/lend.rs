//! The lent P: an M *lends* its P while its G runs user code, and `sysmon`
//! may take a lent P away, the way Go retakes a P from a syscall. This is
//! preemption without signals; the engine's half (lend, take back, the way
//! on for a G whose P was retaken) is here, sysmon's retake in `sysmon.rs`
//! and the thread demotion that goes with it in `preempt.rs`.
//!
//! Async-signal preemption is unsound for Rust code in general (a G stopped
//! inside `malloc` holds the arena lock), so a G is never stopped. Instead:
//!
//! 1. When a G returns to its own code (from `g_entry`, a park, a spawn, a
//!    `ready`, a syscall...), its M *lends* its P ([`leave`]): the P goes to
//!    state `Lent` with a fresh sequence number, `m.p` is cleared and the P
//!    is remembered in `m.oldp` — exactly what `enter_syscall` does.
//! 2. At the G's next runtime call that needs the P ([`enter`]: spawn,
//!    ready, park, yield, syscall, exit, `preempt_point`), the M claims the
//!    P back (`P::take_back_lent`): it records its claim on that exact
//!    `Lent` word, issues the light barrier (`barrier.rs`) and, finding the
//!    word unchanged, marks the P `Running`. No locked instruction: this
//!    runs at every runtime call.
//! 3. `sysmon` sees a P whose `Lent` word has not changed for a whole slice
//!    (`preempt::SLICE_NS`, ~10 ms: the G has not made one runtime call) while
//!    other work waits for that P (its queue, the global queue, a due
//!    timer). It swaps the word to `Retaking`, issues the heavy barrier,
//!    and takes the P (`Idle`) unless the lending M has claimed it
//!    (`P::retake`); then it sets the M's `preempt` flag and hands the P to
//!    another M (`hand_off_p`), which runs the other Gs. The stuck M now runs
//!    its G without a P, like an M in a syscall; the number of Ms stays
//!    under `GORT_MAX_THREADS`.
//! 4. When the stuck G reaches its next runtime call, the claim of step 2
//!    finds the word changed: the M takes any idle P, or queues the G on the
//!    global queue and sleeps (`exit_syscall_slow`). `preempt_point` is a
//!    cheap runtime call for long loops: one load of the M's `preempt` flag.
//!
//! # Races
//!
//! - M takes back vs sysmon retakes: a Dekker hand-shake on the state word
//!   and the M's own claim, with asymmetric barriers; exactly one wins
//!   (`P::take_back_lent` has the table, `p.rs` a test that races them).
//!   The sequence number changes at every lend, so a P that was retaken,
//!   used elsewhere and lent again cannot be taken back by the old M (ABA),
//!   and sysmon never retakes a P whose G has made a runtime call since it
//!   last looked.
//! - Owner fields of a P (its queue, caches, free lists) are touched only
//!   between [`enter`] and [`leave`], i.e. while the P is `Running`, never
//!   while `Lent`, so sysmon's hand-off cannot race with them. Code that
//!   forgets to call [`enter`] sees `m.p == null` and takes the "no P" path
//!   (global queue, global pools): slower, never unsound.
//! - `m.preempt` is only a hint (relaxed): a G that misses it sees the lost
//!   P at its next runtime call anyway.
//!
//! Not lent: Gs of extra Ms (foreign-thread callbacks keep their P tight)
//! and Gs in a syscall (their P is already set aside as `Syscall`).
//!
//! Rejected: a "preempt me" flag alone (a G inside `std::thread::sleep`
//! never looks at it); taking the P back with a compare-and-swap, as from a
//! syscall (what this did first: ~9 ns of every runtime call).

use super::handoff::take_idle_p;
use super::switch::switch_from_g;
use crate::g::GStatus;
use crate::m::{Demotion, MRef, Pending, current_m};
use crate::p::P;
use core::sync::atomic::Ordering;

/// Entry to runtime code on a G: take the lent P back, or any idle P. If
/// sysmon took it and none is idle, the caller continues *without a P*
/// (`m.p` null: it queues Gs globally, parks through `g0`, and the M then
/// sleeps until given a P). It never sleeps here, because callers may hold
/// a lock (`park` is called with a wait list's lock held; `ready` and
/// `spawn` may be). Returns whether the P was lent (the caller then calls
/// [`leave`] on its way back to user code).
#[inline]
pub(crate) fn enter(m: MRef) -> bool {
    if !m.p.load(Ordering::Relaxed).is_null() {
        return false;
    }
    if crate::fork::in_forked_child() {
        // Taking a P back may need a lock a vanished thread held.
        crate::fork::refuse_park();
    }
    let Some(g) = m.curg() else { return false };
    if g.status() != GStatus::Running {
        return false;
    }
    // `oldp` is written only by this M's own thread: a load and a store,
    // not an atomic swap (this path runs at every runtime call).
    let p = m.oldp.load(Ordering::Relaxed);
    // SAFETY: oldp holds null or a 'static P stored by `leave`.
    let Some(p) = (unsafe { p.as_ref() }) else {
        return false;
    };
    m.oldp.store(core::ptr::null_mut(), Ordering::Relaxed);
    if p.take_back_lent(m.oldp_word.load(Ordering::Relaxed), &m.claim) {
        m.p.store(p as *const P as *mut P, Ordering::Release);
    } else {
        lost_p(m);
    }
    true
}

/// sysmon took the P while our G ran: take an idle one if there is one.
#[cold]
#[inline(never)]
fn lost_p(m: MRef) {
    m.preempt.store(false, Ordering::Relaxed);
    if let Some(g) = m.curg() {
        g.set_blocked_since(0);
    }
    if back_from_retake(m) {
        take_idle_p(m);
    }
}

/// The M, at its G's first runtime call after a retake: ends the demotion
/// protocol. Returns false when the M must retire (its thread could not
/// be restored): it then takes no P.
pub(crate) fn back_from_retake(m: MRef) -> bool {
    // For sysmon's judgement of its own retakes (see `sysmon`, "Short
    // blocks"); written before the state below moves to `None`.
    m.returned_at
        .store(crate::clock::nanotime(), Ordering::Relaxed);
    loop {
        // SeqCst: see `Demotion`.
        let state = m.demotion.load(Ordering::SeqCst);
        if state == Demotion::Demoting as u8 {
            // sysmon is a system call away from the verdict.
            core::hint::spin_loop();
            continue;
        }
        // SeqCst: see `Demotion`; `demoted_from` below is read after this saw
        // `Demoted`.
        if m.demotion
            .compare_exchange(
                state,
                Demotion::None as u8,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_err()
        {
            continue;
        }
        // SeqCst: the `demoted_from` load below; see `Demotion`.
        if state != Demotion::Demoted as u8
            // SAFETY: gettid has no preconditions.
            || crate::thread_state::set_nice(unsafe { libc::gettid() }, m.demoted_from.load(Ordering::SeqCst))
        {
            return true;
        }
        if m.extra || !m.locked_g.load(Ordering::Relaxed).is_null() {
            // Cannot retire (see `Demotion`); `demote` does not get here
            // unless restoring was possible, so this is a G that locked
            // itself to the thread since: it stays at low priority.
            return true;
        }
        m.exit_requested.store(true, Ordering::Relaxed);
        return false;
    }
}

/// [`enter`] for callers that hold no lock (`yield_now`, `enter_syscall`):
/// without a P to take, the G queues itself on the global queue and its M
/// sleeps until one is free (`exit_syscall_slow`); it may then continue on
/// another M. Returns that M and whether the P was lent.
#[inline]
pub(crate) fn enter_or_wait(m: MRef) -> (MRef, bool) {
    let lent = enter(m);
    if !m.p.load(Ordering::Relaxed).is_null() {
        return (m, lent);
    }
    wait_for_p(m, lent)
}

/// [`enter_or_wait`] found no P to take.
#[cold]
#[inline(never)]
fn wait_for_p(m: MRef, lent: bool) -> (MRef, bool) {
    if m.curg().is_none_or(|g| g.status() != GStatus::Running) {
        return (m, lent);
    }
    exit_syscall_slow(m);
    match current_m() {
        Some(m) => (m, true),
        None => crate::throw!("enter_or_wait: no M after taking a P back"),
    }
}

/// Return to user code on a G: lend the M's P (see the module docs).
/// After a switch the M may differ, so this looks it up again.
#[inline]
pub(crate) fn leave() {
    if let Some(m) = current_m() {
        leave_on(m);
    }
}

/// [`leave`] for a caller that knows its M (no switch since it looked).
#[inline]
pub(crate) fn leave_on(m: MRef) {
    let Some(p) = m.p() else { return };
    let Some(g) = m.curg() else { return };
    if g.status() != GStatus::Running {
        return;
    }
    let word = p.lend();
    m.oldp_word.store(word, Ordering::Relaxed);
    m.oldp.store(p as *const P as *mut P, Ordering::Relaxed);
    m.p.store(core::ptr::null_mut(), Ordering::Release);
}

/// Takes any idle P for `m`'s G, or queues the G on the global queue and
/// sleeps until an M runs it (the G then continues on that M).
#[cold]
#[inline(never)]
pub(crate) fn exit_syscall_slow(m: MRef) {
    let Some(g) = m.curg() else { return };
    // An M that must retire (see `m::Demotion`) takes no P: its G
    // goes on on another M.
    if !m.exit_requested.load(Ordering::Relaxed) && take_idle_p(m) {
        g.set_status(GStatus::Running);
        return;
    }
    // No P anywhere: queue ourselves and let this M sleep. We come back
    // running on some M with a P.
    m.set_pending(Pending::SyscallNoP(g));
    switch_from_g(m, g);
}
