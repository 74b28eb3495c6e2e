//! Preemption's satellite half: the time slice, the demotion of a thread
//! whose lent P sysmon retook while its G runs on (`Demotion`, in `m.rs`),
//! and [`preempt_point`] for long loops.
//!
//! The protocol itself — an M lends its P while its G runs user code and
//! takes it back at the G's next runtime call; sysmon may retake a P lent
//! for a whole slice while other work waits — is the engine's, and its
//! essay is in `engine/lend.rs`.

use crate::m::{Demotion, MRef, current_m};
use core::sync::atomic::{AtomicBool, Ordering};

/// A G that keeps its P this long without a runtime call while other work
/// waits loses it.
pub const SLICE_NS: u64 = 10_000_000;

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
    crate::engine::yield_now();
}

#[cfg(test)]
mod tests {
    // Atomics here are SeqCst for simplicity: they order the test's own
    // assertions, not a protocol (docs/design.md, "Atomics").
    use super::*;
    use crate::engine::back_from_retake;
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
