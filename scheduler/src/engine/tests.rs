//! Unit tests of the engine's hand-shakes, beside it: a park racing the
//! `ready` that ends it, the `runnext` hand-off from a readying G to the G
//! it readied, a P handed off from an M blocked in a system call, and a
//! lent P retaken from a G looping in user code, then taken back. The
//! hand-shakes at the bottom of these (`runnext`, lend/retake) are also
//! model-checked (`runq.rs`, `p.rs`, `loom.rs`); these run them on real Ms
//! and Ps.
//!
//! Gs report through std channels and atomics; assertions run on the test
//! thread (a G's entry must not unwind). Time bounds are generous: the
//! machine may have two loaded CPUs.

use crate::g::{GRef, WaitReason};
use crate::test_support::{LIMIT, go};
use crate::{current_g, current_m, park, ready};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Symptom guarded: a `ready` that arrives while the parking G's M is still
/// switching away from it (the G published itself in the park callback, its
/// registers just saved) loses the wake-up or runs the G on two Ms at once.
/// A waker on a plain thread and one on a G take turns readying a G that
/// parks over and over, each as soon as the G is published.
#[test]
fn a_park_racing_its_ready_loses_no_wake_up() {
    const ROUNDS: usize = 5_000;
    for waker_on_g in [false, true] {
        let slot = Arc::new(AtomicPtr::new(core::ptr::null_mut()));
        let stop = Arc::new(AtomicBool::new(false));
        let woken = Arc::new(AtomicUsize::new(0));
        let waker = {
            let (slot, stop, woken) = (slot.clone(), stop.clone(), woken.clone());
            move || {
                while !stop.load(Ordering::Acquire) {
                    let p = slot.swap(core::ptr::null_mut(), Ordering::AcqRel);
                    // SAFETY: the slot holds null or a parked G's pointer
                    // from GRef::as_ptr, published by its park callback.
                    match unsafe { GRef::from_ptr(p) } {
                        Some(g) => {
                            woken.fetch_add(1, Ordering::Relaxed);
                            ready(g);
                        }
                        None if current_g().is_some() => crate::yield_now(),
                        None => core::hint::spin_loop(),
                    }
                }
            }
        };
        if waker_on_g {
            go(waker);
        } else {
            std::thread::spawn(waker);
        }
        let (done_tx, done_rx) = mpsc::channel();
        let s = slot.clone();
        go(move || {
            let me = current_g().expect("on a G");
            for _ in 0..ROUNDS {
                park(WaitReason::Park, || {
                    // Published once the registers are saved: from here on
                    // the waker may ready us, even before this returns.
                    s.store(me.as_ptr(), Ordering::Release);
                    true
                });
            }
            let _ = done_tx.send(());
        });
        let r = done_rx.recv_timeout(LIMIT);
        stop.store(true, Ordering::Release);
        assert!(
            r.is_ok(),
            "the parking G hung after {} wake-ups (waker on a G: {waker_on_g})",
            woken.load(Ordering::Relaxed)
        );
        assert_eq!(woken.load(Ordering::Relaxed), ROUNDS);
    }
}

/// Symptom guarded: a park whose callback declines (returns false: the
/// condition it waited for came true meanwhile) leaves the G parked.
#[test]
fn a_declined_park_resumes_the_g() {
    let (tx, rx) = mpsc::channel();
    go(move || {
        for _ in 0..1_000 {
            park(WaitReason::Park, || false);
        }
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(LIMIT).is_ok(),
        "a declined park did not resume"
    );
}

/// Symptom guarded: a G readied by a running G does not go to `runnext`
/// (it waits behind the whole local queue, or on another P), so a
/// hand-off between two Gs costs a trip through the scheduler instead of a
/// direct switch on the same M.
///
/// Each round, G A queues a few filler Gs on its P, readies B (parked) and
/// parks: B must run next on A's M, ahead of the fillers queued before it,
/// and ready A back.
#[test]
fn a_g_readied_by_a_g_runs_next_on_its_m() {
    const ROUNDS: usize = 200;
    const FILLERS: usize = 4;
    let (tx, rx) = mpsc::channel();
    go(move || {
        let mut next = 0;
        for _ in 0..ROUNDS {
            let b_slot = Arc::new(AtomicPtr::new(core::ptr::null_mut()));
            let a_slot = Arc::new(AtomicPtr::new(core::ptr::null_mut()));
            let ran_on = Arc::new(AtomicPtr::new(core::ptr::null_mut()));
            let b_ran = Arc::new(AtomicBool::new(false));
            let early = Arc::new(AtomicUsize::new(0));
            let (bs, a_s, r, br) = (
                b_slot.clone(),
                a_slot.clone(),
                ran_on.clone(),
                b_ran.clone(),
            );
            go(move || {
                let me = current_g().expect("on a G");
                park(WaitReason::Park, || {
                    bs.store(me.as_ptr(), Ordering::Release);
                    true
                });
                br.store(true, Ordering::Release);
                let m: *const crate::m::M = current_m().expect("a G runs on an M");
                r.store(m.cast_mut(), Ordering::Release);
                ready(take_published(&a_s));
            });
            let b = take_published(&b_slot);
            let me = current_g().expect("on a G");
            let mine: *const crate::m::M = current_m().expect("on an M");
            for _ in 0..FILLERS {
                let (b_ran, early) = (b_ran.clone(), early.clone());
                let mine = mine as usize;
                go(move || {
                    let here: *const crate::m::M = current_m().expect("on an M");
                    if here as usize == mine && !b_ran.load(Ordering::Acquire) {
                        early.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            ready(b);
            park(WaitReason::Park, || {
                a_slot.store(me.as_ptr(), Ordering::Release);
                true
            });
            if core::ptr::eq(ran_on.load(Ordering::Acquire), mine)
                && early.load(Ordering::Relaxed) == 0
            {
                next += 1;
            }
        }
        let _ = tx.send(next);
    });
    let next = rx.recv_timeout(LIMIT).expect("the hand-offs finished");
    eprintln!("B ran next on A's M in {next} rounds of {ROUNDS}");
    // A thief may take `runnext` after its grace period, and a busy test
    // machine can stretch any gap past it: most rounds, not all.
    assert!(
        next * 2 >= ROUNDS,
        "B ran next on A's M in {next} rounds of {ROUNDS}"
    );
}

/// The G a park callback published in `slot` (waits, yielding, until one
/// is there).
fn take_published(slot: &AtomicPtr<crate::g::G>) -> GRef {
    loop {
        let p = slot.swap(core::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: the slot holds null or a parked G's pointer from
        // GRef::as_ptr, published by its park callback.
        if let Some(g) = unsafe { GRef::from_ptr(p) } {
            return g;
        }
        crate::yield_now();
    }
}

/// Occupies every P with a G running `occupy` (which keeps its thread for
/// `HOLD`), then starts one more G and returns how long after the last
/// occupier started it ran.
fn a_queued_g_behind_every_p(occupy: impl FnOnce() + Clone + Send + 'static) -> Duration {
    let procs = crate::state::sched().procs();
    let (started_tx, started_rx) = mpsc::channel();
    for _ in 0..procs {
        let (started_tx, occupy) = (started_tx.clone(), occupy.clone());
        go(move || {
            let _ = started_tx.send(());
            occupy();
        });
    }
    for _ in 0..procs {
        started_rx
            .recv_timeout(LIMIT)
            .expect("the occupying Gs started");
    }
    let start = Instant::now();
    let (ran_tx, ran_rx) = mpsc::channel();
    go(move || {
        let _ = ran_tx.send(start.elapsed());
    });
    ran_rx.recv_timeout(LIMIT).expect("the queued G ran")
}

/// How long each occupier of the two tests below keeps its thread.
const HOLD: Duration = Duration::from_secs(3);

/// Symptom guarded: an M blocked in a system call keeps its P, so the Gs
/// queued behind it wait for the call to end (every P blocked: nothing
/// runs at all).
#[test]
fn a_p_is_handed_off_from_an_m_blocked_in_a_syscall() {
    let ran = a_queued_g_behind_every_p(|| crate::syscall(|| std::thread::sleep(HOLD)));
    assert!(
        ran < HOLD / 2,
        "a queued G ran only after {ran:?}, behind blocked calls of {HOLD:?} on every P"
    );
}

/// Symptom guarded: a G that keeps its M busy in user code (no runtime
/// call) keeps its lent P: the Gs queued behind it never run; or, once
/// sysmon retook the P, the G's next runtime call does not get it (or
/// another P) back and the G is lost.
#[test]
fn a_lent_p_is_retaken_from_a_looping_g_and_the_g_comes_back() {
    let (back_tx, back_rx) = mpsc::channel();
    let ran = a_queued_g_behind_every_p(move || {
        let until = Instant::now() + HOLD;
        let mut spins = 0u64;
        while Instant::now() < until {
            spins = spins.wrapping_add(1);
            core::hint::spin_loop();
        }
        // The first runtime call after the loop: takes a P back.
        crate::yield_now();
        let _ = back_tx.send(core::hint::black_box(spins));
    });
    assert!(
        ran < HOLD / 2,
        "a queued G ran only after {ran:?}, behind Gs looping {HOLD:?} on every P"
    );
    for _ in 0..crate::state::sched().procs() {
        back_rx
            .recv_timeout(LIMIT)
            .expect("a looping G came back after its P was retaken");
    }
}
