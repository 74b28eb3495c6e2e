//! Ps changing hands: an M taking an idle P or releasing its own, handing
//! a P it no longer uses to an M that will run its work (Go's `handoffp`),
//! waking an M for new work (`wakep`), and stopping an M until another M
//! hands it a P.

use super::find::reset_spinning;
use super::hooks;
use crate::clock::{NEVER, refresh_coarse_now};
use crate::g::GRef;
use crate::m::{MRef, MStatus};
use crate::p::{P, PStatus};
use crate::state::sched;
use core::sync::atomic::Ordering;

/// Wakes an idle M with an idle P to look for work, if there is an idle P
/// and nobody is spinning already (Go's `wakep`).
pub(crate) fn wakep() {
    let s = sched();
    // SeqCst: the producer's load in the pairs above, after `push_global`'s
    // fence or `barrier::light`; ordered against `pidle_put`'s increment.
    if s.npidle.load(Ordering::SeqCst) == 0 {
        return;
    }
    // Only one M spins up at a time; the spinning M wakes the next one when
    // it finds work (`reset_spinning`).
    // SeqCst: (the compare-exchange) claims the one wake-up. Every update of
    // `nmspinning` is SeqCst, so this claim and the last spinner's decrement in
    // `find_runnable` (followed by `barrier::heavy`) fall in one order: a
    // producer sees 0 and claims, or sees a spinner and leaves the work to it.
    if s.nmspinning.load(Ordering::Relaxed) != 0
        || s.nmspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    start_m(None, true);
}

/// After making work available: wake an M if Ps are idle and nobody spins.
///
/// The barrier pairs with the one in `find_runnable` after an M stops
/// spinning: either that M sees our work, or we see it idle and wake it.
/// This is the hot side (every `ready`, every spawn), so it is the light
/// barrier and the M about to sleep pays the heavy one (`barrier.rs`).
#[inline]
pub(crate) fn wakep_if_idle() {
    crate::barrier::light();
    let s = sched();
    let npidle = s.npidle.load(Ordering::Relaxed);
    if npidle != 0 && s.nmspinning.load(Ordering::Relaxed) == 0 {
        wakep();
    } else if npidle == 0 {
        // Every P is held: if one is held by a thread blocked in plain code,
        // sysmon should know soon (see `sysmon.rs`, "Plain blocking code").
        crate::bell::note_work_waits();
    }
}

/// Gives `p` (or an idle P) to an idle M, or to a new one, and wakes it.
/// With `spinning`, the caller has already counted the M in `nmspinning`;
/// if no P is free the count is undone.
pub(super) fn start_m(p: Option<&'static P>, spinning: bool) {
    start_m_or(p, spinning, AtLimit::Fatal)
}

/// [`start_m`] choosing what happens at the thread limit.
pub(super) fn start_m_or(p: Option<&'static P>, spinning: bool, at_limit: AtLimit) {
    let s = sched();
    let mut synced = s.synced.lock();
    let from_idle = p.is_none();
    let p = match p.or_else(|| s.pidle_get(&mut synced)) {
        Some(p) => p,
        None => {
            if spinning {
                // SeqCst: undoes `wakep`'s claim, in the one order of
                // `nmspinning`'s updates (see `wakep`). Undone under
                // `synced`, as Go's `wakep` does: a producer that saw the
                // claim and left its G to "the spinner" pushed it before
                // this undo, and an M that puts a P idle after it (under
                // the same lock) re-checks the queues after that; undone
                // after the unlock, that M could put its P idle and look
                // in between, miss the G, and sleep with the G queued.
                s.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
            drop(synced);
            return;
        }
    };
    let m = synced.midle.pop();
    if m.is_none() && from_idle && hooks::poller().is_some_and(|p| (p.blocked)()) {
        // No idle M, but one is blocked in netpoll: interrupt it rather than
        // start a thread. The P goes back first, under the lock; the poller
        // clears `blocked` before it takes an idle P under the same lock, so
        // either it sees this P or we saw it was no longer blocked.
        s.pidle_put(&mut synced, p);
        if spinning {
            // SeqCst: as above (and under the lock, as above).
            s.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
        drop(synced);
        if let Some(p) = hooks::poller() {
            (p.wake)();
        }
        return;
    }
    if m.is_some() {
        s.nmidle.fetch_sub(1, Ordering::Relaxed);
    }
    drop(synced);
    match m {
        Some(m) => {
            m.spinning.store(spinning, Ordering::Relaxed);
            m.nextp.store(p as *const P as *mut P, Ordering::Release);
            m.note.wakeup();
        }
        None => super::mloop::new_m(p, spinning, at_limit),
    }
}

/// What [`new_m`] does at the thread limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AtLimit {
    /// A fatal error, as Go's: the program needs a thread it may not have
    /// (e.g. every thread holds a locked G) and cannot go on.
    Fatal,
    /// sysmon handing on a P it took from a blocked M: the P goes back on
    /// the idle list (its Gs to the global queue) and the program waits for
    /// a blocked thread to return. sysmon checks for room before it
    /// retakes, so this is only the race of two threads starting at once.
    Stall,
}

/// Takes an idle P for `m`, if any.
pub(super) fn take_idle_p(m: MRef) -> bool {
    let s = sched();
    let p = s.pidle_get(&mut s.synced.lock());
    match p {
        Some(p) => {
            acquire_p(m, p);
            true
        }
        None => false,
    }
}

/// Binds `p` to `m`.
pub(super) fn acquire_p(m: MRef, p: &'static P) {
    if !m.p.load(Ordering::Relaxed).is_null() {
        crate::throw!("acquire_p: m already has a p");
    }
    refresh_coarse_now();
    p.m.store(m as *const _ as *mut _, Ordering::Relaxed);
    p.set_status(PStatus::Running);
    m.p.store(p as *const P as *mut P, Ordering::Release);
}

/// Unbinds `m`'s P and returns it.
pub(super) fn release_p(m: MRef) -> Option<&'static P> {
    let p = m.p()?;
    p.m.store(core::ptr::null_mut(), Ordering::Relaxed);
    m.p.store(core::ptr::null_mut(), Ordering::Release);
    Some(p)
}

/// Passes a P its M no longer uses to an M that will run its work, or puts
/// it on the idle list if it has none (Go's `handoffp`).
pub(super) fn hand_off_p(p: &'static P) {
    hand_off_p_or(p, AtLimit::Fatal)
}

/// [`hand_off_p`] choosing what happens if a new thread is needed at the
/// thread limit (sysmon's retakes stall rather than fail).
pub(crate) fn hand_off_p_or(p: &'static P, at_limit: AtLimit) {
    let s = sched();
    if !p.runq.is_empty() || !s.global.is_empty() {
        start_m_or(Some(p), false, at_limit);
        return;
    }
    {
        let mut synced = s.synced.lock();
        s.pidle_put(&mut synced, p);
    }
    if recheck_after_idle() {
        wakep();
        return;
    }
    // Its timers still need an M.
    if p.timers.next_when() != NEVER {
        wakep_if_idle();
    }
}

/// After a P went on the idle list without a spinning M's re-check: whether
/// a G arrived on the global queue that nobody will run. The queue is
/// lock-free, so a producer can push after the caller's last look and then,
/// reading `npidle` before the caller's increment, see no idle P and wake
/// nobody (seen under qemu: 100 foreign threads queued their callback Gs
/// while the callbacks before them ended, and every M went to sleep). The
/// fence pairs with the one in `Sched::push_global`: either the producer
/// sees the idle P, or this sees its G. (Local queues need no such look:
/// only the M holding a P pushes to its queue, and it runs what it pushed.)
pub(super) fn recheck_after_idle() -> bool {
    // SeqCst: pairs with `push_global`'s fence (see above): either the producer
    // sees this P idle, or this look sees its G.
    core::sync::atomic::fence(Ordering::SeqCst);
    !sched().global.is_empty()
}

/// Puts `m` (which has released its P) to sleep until another M hands it a
/// P, or until `deadline` (runtime clock) for the earliest timer.
pub(super) fn stop_m(m: MRef, deadline: u64) {
    let s = sched();
    m.set_status(MStatus::Idle);
    {
        let mut synced = s.synced.lock();
        synced.midle.push(m);
        s.nmidle.fetch_add(1, Ordering::Relaxed);
    }
    let mut deadline = deadline;
    loop {
        if deadline != NEVER {
            // SeqCst: publishes when this M wakes to timer adders, which load
            // `sleep_until` beside pushing their timer (`timer::sleep`,
            // `timer::start_timer`, `netpoll::arm_deadline`) and wake an M when
            // theirs is earlier. An adder whose load comes before this store
            // sees `NEVER` (and wakes an M) or an earlier sleeper's deadline
            // (that sleeper looks at the heaps first). Not a StoreLoad pair:
            // this M read the heaps before; coherence of this one word carries
            // the argument, and SeqCst is stronger than it needs.
            s.sleep_until.fetch_min(deadline, Ordering::SeqCst);
        }
        let woken = m
            .note
            .sleep((deadline != NEVER).then(|| crate::clock::instant_of(deadline)));
        if deadline != NEVER {
            // SeqCst: as the `fetch_min` above.
            let _ = s.sleep_until.compare_exchange(
                deadline,
                NEVER,
                Ordering::SeqCst,
                Ordering::Relaxed,
            );
        }
        if woken {
            break;
        }
        // A timer is due. Leave the idle list with an idle P, unless a
        // waker already took us off the list (then its wake-up is coming).
        let mut synced = s.synced.lock();
        let Some(i) = synced.midle.iter().position(|x| core::ptr::eq(*x, m)) else {
            deadline = NEVER;
            continue;
        };
        match s.pidle_get(&mut synced) {
            Some(p) => {
                synced.midle.swap_remove(i);
                s.nmidle.fetch_sub(1, Ordering::Relaxed);
                drop(synced);
                m.nextp.store(p as *const P as *mut P, Ordering::Release);
                break;
            }
            // Every P is busy; their Ms run the timers when they schedule.
            None => deadline = NEVER,
        }
    }
    m.set_status(MStatus::Running);
    let p = m.nextp.swap(core::ptr::null_mut(), Ordering::Acquire);
    // SAFETY: wakers store a 'static P before waking us.
    let Some(p) = (unsafe { p.as_ref() }) else {
        crate::throw!("stop_m: woken without a p")
    };
    acquire_p(m, p);
}

/// Our locked G cannot run: give the P away and sleep until the G is handed
/// back to us together with a P (Go's `stoplockedm`).
pub(super) fn stop_locked_m(m: MRef) {
    if let Some(p) = release_p(m) {
        hand_off_p(p);
    }
    m.set_status(MStatus::Idle);
    while !m.note.sleep(None) {}
    m.set_status(MStatus::Running);
    let p = m.nextp.swap(core::ptr::null_mut(), Ordering::Acquire);
    // SAFETY: start_locked_m stores a 'static P before waking us.
    let Some(p) = (unsafe { p.as_ref() }) else {
        crate::throw!("stop_locked_m: woken without a p")
    };
    acquire_p(m, p);
}

/// `g` is locked to another M: give it our P and wake it to run `g` (Go's
/// `startlockedm`). We return without a P.
pub(super) fn start_locked_m(m: MRef, g: GRef, target: *mut crate::m::M) {
    // SAFETY: locked_m holds a 'static M.
    let Some(target) = (unsafe { target.as_ref() }) else {
        return;
    };
    if m.spinning.load(Ordering::Relaxed) {
        reset_spinning(m);
    }
    let Some(p) = release_p(m) else {
        crate::throw!("start_locked_m: m has no p")
    };
    if !core::ptr::eq(target.locked_g.load(Ordering::Relaxed), g.as_ptr()) {
        crate::throw!("start_locked_m: g and m disagree on the lock");
    }
    target
        .nextp
        .store(p as *const P as *mut P, Ordering::Release);
    target.note.wakeup();
}
