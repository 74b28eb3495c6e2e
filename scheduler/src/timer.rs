//! Arming timers: `sleep` for Gs, and function timers (channel timeouts,
//! `after`, tickers) through [`start_timer`].
//!
//! The heaps themselves are per P and data only (`timer_heap.rs`); the
//! engine fires them. This module picks the heap a new timer goes on and
//! wakes an M when the new timer is earlier than every sleeping M's
//! deadline.

use crate::clock::nanotime;
use crate::engine::wakep;
use crate::engine::{park, yield_now};
use crate::g::WaitReason;
use crate::m::{current_g, current_m};
use crate::p::P;
use crate::state::sched;
use core::sync::atomic::Ordering;
use std::time::Duration;

pub use crate::timer_heap::{Timer, TimerFn, Timers};

/// The P a new timer goes on: the current M's, or, for an M that lost its P
/// to sysmon (or a plain thread), one chosen by the M's id (heaps are
/// locked, so any thread may add to any P's timers; the Ms that run timers
/// look at every P).
pub(crate) fn host_p() -> &'static P {
    let s = sched();
    let m = current_m();
    match m.and_then(|m| m.p()) {
        Some(p) => p,
        None => &s.ps[m.map_or(0, |m| m.id) % s.ps.len()],
    }
}

/// Starts a timer that calls `f(when)` at `when` (runtime clock, see
/// [`nanotime`](crate::clock::nanotime)) on a scheduler context. `f` must not block. From a G the
/// timer goes on its P's heap; from a plain thread on a P picked by the
/// thread id. Wakes an M if the new timer is earlier than every sleeping
/// M's deadline.
pub fn start_timer(when: u64, f: Box<TimerFn>) -> Timer {
    let s = sched();
    let heap: &'static Timers = match current_m().and_then(|m| m.p()) {
        Some(p) => &p.timers,
        None => {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() } as usize;
            &s.ps[tid % s.ps.len()].timers
        }
    };
    let t = heap.add_func(when, f);
    // SeqCst: the adder's load of `sleep_until`, after its timer was pushed
    // (see `stop_m` in `engine/handoff.rs`).
    if when < s.sleep_until.load(Ordering::SeqCst) {
        wakep();
    }
    t
}

/// Puts the calling G to sleep for at least `d` without holding its M. On a
/// plain thread, sleeps the thread.
pub fn sleep(d: Duration) {
    let Some(g) = current_g() else {
        return std::thread::sleep(d);
    };
    if d.is_zero() {
        return yield_now();
    }
    let when = nanotime().saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    park(WaitReason::Sleep, move || {
        // We run on the next context of the same M: its P, or, if sysmon
        // took that P while the G ran, any P (timer heaps are locked).
        let p = host_p();
        // SeqCst: as in `start_timer`; the timer is pushed just below, and a
        // wake-up only makes an M look again, so reading first is safe.
        let wake_someone = when < sched().sleep_until.load(Ordering::SeqCst);
        p.timers.add(when, g);
        // Past this point the G may be running again: touch nothing of it.
        if wake_someone {
            wakep();
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::nanotime;
    use std::time::Duration;

    #[test]
    fn a_function_timer_fires_once_and_cannot_be_stopped_after() {
        let (tx, rx) = std::sync::mpsc::channel();
        let t = start_timer(
            nanotime() + 1_000_000,
            Box::new(move |when| tx.send(when).unwrap()),
        );
        let when = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("timer fired");
        assert!(nanotime() >= when);
        assert!(!t.stop(), "stop after firing must report it was too late");
        assert!(
            rx.recv_timeout(Duration::from_millis(20)).is_err(),
            "fired twice"
        );
    }
}
