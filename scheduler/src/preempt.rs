//! Preemption without signals: an M *lends* its P while its G runs user
//! code, and `sysmon` may take a lent P away, the way Go retakes a P from a
//! syscall.
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
//!    ([`SLICE_NS`], ~10 ms: the G has not made one runtime call) while
//!    other work waits for that P (its queue, the global queue, a due
//!    timer). It swaps the word to `Retaking`, issues the heavy barrier,
//!    and takes the P (`Idle`) unless the lending M has claimed it
//!    (`P::retake`); then it sets the M's `preempt` flag and hands the P to
//!    another M (`hand_off_p`), which runs the other Gs. The stuck M now runs
//!    its G without a P, like an M in a syscall; the number of Ms stays
//!    under `GORT_MAX_THREADS`.
//! 4. When the stuck G reaches its next runtime call, the claim of step 2
//!    finds the word changed: the M takes any idle P, or queues the G on the
//!    global queue and sleeps (`exit_syscall_slow`). [`preempt_point`] is a
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

use crate::g::GStatus;
use crate::m::{MRef, current_m};
use crate::p::P;
use core::sync::atomic::{AtomicBool, Ordering};

/// A G that keeps its P this long without a runtime call while other work
/// waits loses it.
pub const SLICE_NS: u64 = 10_000_000;

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
        crate::schedule::take_idle_p(m);
    }
}

/// Whether an M's thread runs at lowered priority ([`M::demotion`]): a G
/// that lost its P and goes on running its own code must not take CPU from
/// the Gs that hold Ps, or `GORT_MAXPROCS` would no longer bound the Gs
/// running at once. Only sysmon and the M itself (in [`lost_p`], at the
/// G's first runtime call after the retake) write it; neither is a hot
/// path.
///
/// | state | meaning | next |
/// |---|---|---|
/// | `None` | normal; no retake since the M's last return | sysmon → `Armed` just before it retakes the M's lent P (back to `None` if the retake fails) |
/// | `Armed` | P retaken; normal priority | the M → `None` ([`lost_p`]); sysmon → `Demoting` once it sees the thread run |
/// | `Demoting` | sysmon is lowering the priority | sysmon → `Demoted`; the M waits for it |
/// | `Demoted` | the thread runs at nice 19 (`M::demoted_from` keeps its own) | the M restores its priority → `None` |
///
/// `Armed` is stored before the retake's verdict is published (the P's
/// state word), and the M reads this only after it has seen the verdict,
/// so it never misses a demotion; sysmon demotes only from `Armed`, so it
/// never demotes an M that is back.
///
/// Every access to this word and to `M::demoted_from` is `SeqCst`. They
/// are on cold paths (a retake, an M's first runtime call after one), and
/// the argument above then needs no separate order for each access. What
/// it needs is publication: `Armed` before the verdict, `demoted_from`
/// before `Demoted`, each a store that a later load consumes; Release
/// stores and Acquire loads would carry both, and these may be weakened to
/// them.
///
/// Lowering is always allowed; raising a thread back from nice 19 needs
/// `CAP_SYS_NICE` (or `RLIMIT_NICE`). Without it the M cannot restore its
/// thread and *retires* (`exit_requested`): its G goes on, P-less, to its
/// next park or yield, and continues on another M; the thread exits. So an
/// M whose thread cannot retire — an extra M (a foreign thread) or one
/// with a locked G — is demoted only where restoring works.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Demotion {
    None = 0,
    Armed = 1,
    Demoting = 2,
    Demoted = 3,
}

/// Set at sysmon's start: whether a thread can go back from nice 19 here.
static CAN_RESTORE: AtomicBool = AtomicBool::new(false);

/// sysmon, once at start.
pub(crate) fn probe_restore() {
    CAN_RESTORE.store(crate::thread_state::can_restore_nice(), Ordering::Relaxed);
}

/// sysmon, before it retakes `m`'s lent P.
pub(crate) fn arm_demotion(m: MRef) {
    // SeqCst: see `Demotion` (every access to the word).
    m.demotion.store(Demotion::Armed as u8, Ordering::SeqCst);
}

/// sysmon, when the retake it armed for failed (the M keeps its P).
pub(crate) fn disarm_demotion(m: MRef) {
    // SeqCst: see `Demotion`.
    m.demotion.store(Demotion::None as u8, Ordering::SeqCst);
}

/// sysmon: lowers the priority of `m`'s thread, which runs its G's code
/// without a P, if the M has not come back since the retake. Returns
/// whether the thread is (now) demoted.
pub(crate) fn demote(m: MRef) -> bool {
    let may_retire = !m.extra && m.locked_g.load(Ordering::Relaxed).is_null();
    if !may_retire && !CAN_RESTORE.load(Ordering::Relaxed) {
        return false;
    }
    let state = &m.demotion;
    // SeqCst: see `Demotion`.
    if state
        .compare_exchange(
            Demotion::Armed as u8,
            Demotion::Demoting as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        )
        .is_err()
    {
        // SeqCst: see `Demotion`.
        return state.load(Ordering::SeqCst) == Demotion::Demoted as u8;
    }
    let tid = m.tid();
    let done = match crate::thread_state::nice_of(tid) {
        Some(n) if n < crate::thread_state::LOW_NICE => {
            // SeqCst: see `Demotion`: published by the `Demoted` store below.
            m.demoted_from.store(n, Ordering::SeqCst);
            crate::thread_state::set_nice(tid, crate::thread_state::LOW_NICE)
        }
        _ => false,
    };
    let next = if done {
        Demotion::Demoted
    } else {
        Demotion::Armed
    };
    // SeqCst: see `Demotion`.
    state.store(next as u8, Ordering::SeqCst);
    done
}

/// Whether `m` is still waiting for its G to come back after a retake
/// (`Armed` or further).
pub(crate) fn awaiting_return(m: MRef) -> bool {
    // SeqCst: see `Demotion`.
    m.demotion.load(Ordering::SeqCst) != Demotion::None as u8
}

/// The M, at its G's first runtime call after a retake: ends the demotion
/// protocol. Returns false when the M must retire (its thread could not
/// be restored): it then takes no P.
fn back_from_retake(m: MRef) -> bool {
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
    crate::syscall::exit_syscall_slow(m);
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

/// A cheap scheduling point for long loops: if `sysmon` took this G's P
/// away (the G ran a whole slice while others waited), give the M up now
/// instead of at the next blocking call. One relaxed load otherwise. No
/// effect on a plain thread.
#[inline]
pub fn preempt_point() {
    if let Some(m) = current_m()
        && m.preempt.load(Ordering::Relaxed)
    {
        preempted(m);
    }
}

#[cold]
#[inline(never)]
fn preempted(m: MRef) {
    m.preempt.store(false, Ordering::Relaxed);
    crate::schedule::yield_now();
}

#[cfg(test)]
mod tests {
    // Atomics here are SeqCst for simplicity: they order the test's own
    // assertions, not a protocol (docs/design.md, "Atomics").
    use super::*;
    use crate::m::M;
    use std::sync::{Arc, Barrier};

    fn nice(tid: i32) -> Option<i32> {
        crate::thread_state::nice_of(tid)
    }

    /// sysmon demoting an M races with the M coming back at its G's next
    /// runtime call: whichever order they run in, the thread must end at
    /// its own priority (or, where it cannot go back from nice 19, retire),
    /// and the protocol must be back at `None`.
    #[test]
    fn demotion_and_return_race_cleanly() {
        let m: MRef = Box::leak(Box::new(M::new(9_999)));
        let rounds = 300;
        // go: both sides start a round; done: both finished it; checked:
        // the test thread looked at the M's thread, which may then exit.
        let go = Arc::new(Barrier::new(2));
        let done = Arc::new(Barrier::new(2));
        let checked = Arc::new(Barrier::new(2));
        let (tx, rx) = std::sync::mpsc::channel();
        let (go2, done2, checked2) = (go.clone(), done.clone(), checked.clone());
        let retired_flag = Arc::new(AtomicBool::new(false));
        let retired2 = retired_flag.clone();
        let t = std::thread::spawn(move || {
            m.set_tid();
            tx.send((m.tid(), nice(m.tid()))).unwrap();
            for _ in 0..rounds {
                go2.wait();
                // The M's side: back at a runtime call after a retake.
                if !back_from_retake(m) {
                    m.exit_requested.store(false, Ordering::Relaxed);
                    retired2.store(true, Ordering::SeqCst);
                    // It cannot go back to its priority: stop here.
                    done2.wait();
                    return false;
                }
                done2.wait();
                checked2.wait();
            }
            true
        });
        let (tid, own) = rx.recv().unwrap();
        let mut demoted = 0;
        for _ in 0..rounds {
            arm_demotion(m);
            go.wait();
            if demote(m) {
                demoted += 1;
            }
            done.wait();
            if retired_flag.load(Ordering::SeqCst) {
                break;
            }
            assert_eq!(
                m.demotion.load(Ordering::SeqCst),
                Demotion::None as u8,
                "the M's return ends the protocol"
            );
            assert_eq!(nice(tid), own, "a returned M runs at its own priority");
            checked.wait();
        }
        let restorable = t.join().unwrap();
        if !restorable {
            assert!(
                demoted >= 1,
                "without CAP_SYS_NICE the first demoted M retires"
            );
        }
    }

    /// `demote` does nothing to an M that is back (`None`) or whose retake
    /// was called off.
    #[test]
    fn demote_only_from_armed() {
        let m: MRef = Box::leak(Box::new(M::new(9_998)));
        m.set_tid();
        let own = nice(m.tid());
        assert!(!demote(m), "not armed: left alone");
        assert_eq!(nice(m.tid()), own);
        arm_demotion(m);
        disarm_demotion(m);
        assert!(!demote(m), "disarmed: left alone");
        assert_eq!(nice(m.tid()), own);
    }
}
