//! Finding work: `find_runnable` looks at the local queue, the global
//! queue, due timers, ready sockets and other Ps' queues, spins for a
//! bounded while, and only then gives the P up and sleeps (the essay's
//! "Spinning and parking", in `mod.rs`).

use super::handoff::{recheck_after_idle, release_p, stop_m, take_idle_p, wakep, wakep_if_idle};
use super::hooks;
use super::switch::{global_turn, ready_in_order};
use crate::clock::{NEVER, nanotime};
use crate::g::GRef;
use crate::m::MRef;
use crate::p::{P, PStatus};
use crate::state::sched;
use core::sync::atomic::{AtomicU64, Ordering};

/// Rounds of stealing over all Ps before a spinning M gives up.
const STEAL_ROUNDS: usize = 4;

/// How long a spinning M keeps looking before it releases its P and sleeps,
/// at first (see [`spin_budget`]).
const SPIN_NS: u64 = 50_000;

/// The longest spin [`spin_budget`] grows to: 16 × [`SPIN_NS`].
const SPIN_MAX_NS: u64 = 800_000;

/// A spinner starting this soon after the last one gave up counts as woken
/// again at once (see [`spin_budget`]).
const REWAKE_NS: u64 = 200_000;

/// The current spin length, in ns (see [`spin_budget`]).
static SPIN_BUDGET_NS: AtomicU64 = AtomicU64::new(SPIN_NS);

/// When a spinner last gave up (runtime clock, ns; 0: never).
static SPIN_GAVE_UP_AT: AtomicU64 = AtomicU64::new(0);

/// How long a spinner that starts at `now` spins. Normally [`SPIN_NS`]; but
/// when spinners keep being woken again right after giving up, the spin
/// doubles at each such start, up to [`SPIN_MAX_NS`]. That is the pattern
/// of two Gs handing off to each other on one P (a channel ping-pong):
/// every hand-off readies a G, finds a P idle and no M spinning, and wakes
/// one, which spins, finds nothing (the other G runs on its own P next),
/// gives up and is woken again a microsecond later. Each round costs the
/// busy P a futex wake and the spinner's `membarrier` (a third of a
/// ping-pong round trip, measured). Spinning longer breaks the cycle; the
/// spinner's CPU was already nearly always busy. Any start longer than
/// [`REWAKE_NS`] after the last give-up goes back to [`SPIN_NS`], so an
/// idle runtime stops spinning within one budget (at most 800 µs), and a
/// lightly loaded one never spins long.
fn spin_budget(now: u64) -> u64 {
    let gave_up = SPIN_GAVE_UP_AT.load(Ordering::Relaxed);
    let budget = SPIN_BUDGET_NS.load(Ordering::Relaxed);
    let next = if gave_up != 0 && now.saturating_sub(gave_up) < REWAKE_NS {
        (budget * 2).min(SPIN_MAX_NS)
    } else {
        SPIN_NS
    };
    if next != budget {
        SPIN_BUDGET_NS.store(next, Ordering::Relaxed);
    }
    next
}

/// Our M stops being a spinner because it found work; if it was the last
/// one, another M starts spinning to pick up any remaining work.
pub(super) fn reset_spinning(m: MRef) {
    m.spinning.store(false, Ordering::Relaxed);
    // SeqCst: a spinner that found work stops being one, then `wakep` below
    // loads `npidle`; one order with the other updates of `nmspinning` (see
    // `wakep` in `handoff.rs`).
    let prev = sched().nmspinning.fetch_sub(1, Ordering::SeqCst);
    if prev == 0 {
        crate::throw!("reset_spinning: negative nmspinning");
    }
    wakep();
}

/// Finds a runnable G for M `m` (which holds a P), sleeping as long as there
/// is none. Returns holding a P.
pub(super) fn find_runnable(m: MRef) -> GRef {
    let s = sched();
    loop {
        let Some(p) = m.p() else {
            crate::throw!("find_runnable: m has no p")
        };
        run_due_timers();
        if global_turn(p)
            && let Some(g) = global_get(p)
        {
            return g;
        }
        // SAFETY: m holds p.
        if let Some(g) = unsafe { p.runq.get() } {
            return g;
        }
        if let Some(g) = global_get(p) {
            return g;
        }
        // Sockets that became ready, before stealing (an optimisation: the
        // M blocked in netpoll, if any, would get them too).
        if let Some(g) = netpoll_get(p) {
            return g;
        }
        let busy = s.procs() - s.npidle.load(Ordering::Relaxed);
        if m.spinning.load(Ordering::Relaxed) || 2 * s.nmspinning.load(Ordering::Relaxed) < busy {
            if !m.spinning.load(Ordering::Relaxed) {
                m.spinning.store(true, Ordering::Relaxed);
                // SeqCst: becoming a spinner is what a producer that sees
                // `nmspinning != 0` relies on (it wakes nobody); this M
                // re-checks every queue when it stops, if it is the last (the
                // decrement below).
                s.nmspinning.fetch_add(1, Ordering::SeqCst);
            }
            if let Some(g) = steal_work(m, p) {
                return g;
            }
            // Before giving up the P, spin a little longer: work often
            // arrives a microsecond later (a plain thread spawning in a
            // loop), and sleeping now would cost a futex wake per G. Bounded
            // (`spin_budget`), so an idle runtime still sleeps soon after.
            let now = nanotime();
            let spin_until = now + spin_budget(now);
            let mut gave_up = true;
            while nanotime() < spin_until {
                for _ in 0..64 {
                    core::hint::spin_loop();
                }
                // A running P's `runnext` is not work for us: its owner
                // is about to run it (see `steal_runnext`).
                let work = !s.global.is_empty()
                    || s.ps
                        .iter()
                        .any(|v| !core::ptr::eq(v, p) && !v.runq.stealer.is_empty());
                if work && let Some(g) = steal_work(m, p) {
                    return g;
                }
                // Sockets turn ready within microseconds under
                // request/response load: look while we spin.
                if let Some(g) = netpoll_get(p) {
                    return g;
                }
                // Any P's timer, not just ours: a long spin must not hold
                // back the timers of idle Ps, which only Ms looking for
                // work run.
                if earliest_timer() <= nanotime() {
                    gave_up = false;
                    break;
                }
            }
            if gave_up {
                SPIN_GAVE_UP_AT.store(nanotime(), Ordering::Relaxed);
            }
        }

        // Nothing to do: give up the P, then sleep.
        {
            let mut synced = s.synced.lock();
            if !s.global.is_empty() {
                continue;
            }
            let Some(p) = release_p(m) else {
                crate::throw!("find_runnable: lost p")
            };
            s.pidle_put(&mut synced, p);
        }
        if m.spinning.load(Ordering::Relaxed) {
            m.spinning.store(false, Ordering::Relaxed);
            // Only the last spinner to stop must re-check (Go's rule): a
            // producer that saw another spinner counted relies on that one,
            // which re-checks when it stops in turn, being last. So the
            // heavy barrier runs once per "no M spins any more", not once
            // per M that gives up, which keeps `membarrier`'s IPIs rare on
            // machines with many Ps.
            // SeqCst: the sleeper's store of the no-lost-wake-up pair;
            // `barrier::heavy` below orders it before the re-check, against a
            // producer's push, `barrier::light` and load of `nmspinning`.
            let last = s.nmspinning.fetch_sub(1, Ordering::SeqCst) == 1;
            // StoreLoad with `wakep_if_idle`: see the module docs. We are
            // the rare side: producers pay only a compiler barrier.
            if last {
                crate::barrier::heavy();
            }
            if last && work_anywhere() && take_idle_p(m) {
                m.spinning.store(true, Ordering::Relaxed);
                // SeqCst: as the increment above.
                s.nmspinning.fetch_add(1, Ordering::SeqCst);
                continue;
            }
        } else if recheck_after_idle() && take_idle_p(m) {
            continue;
        }
        let next = earliest_timer();
        if next <= nanotime() && take_idle_p(m) {
            continue;
        }
        if next == NEVER {
            (hooks::get().check_dead)(true);
        }
        // Gs wait for I/O and no M blocks in netpoll: this M does, instead
        // of sleeping on its note (netpoll.rs). It holds no P and is not on
        // the idle list; `start_m` interrupts it when it needs an M.
        let mut woken = take_buf();
        if hooks::poller().is_some_and(|p| (p.try_block)(next, &mut woken)) {
            // Queue them before looking for a P: an M that releases its P
            // looks at the global queue under the same lock (no lost G).
            let n = woken.len();
            for &g in &woken {
                s.push_global(g);
            }
            put_buf(woken);
            if take_idle_p(m) {
                if n > 1 {
                    wakep_if_idle();
                }
                continue;
            }
            if n > 0 {
                wakep_if_idle();
            }
            stop_m(m, earliest_timer());
            continue;
        }
        put_buf(woken);
        stop_m(m, next);
    }
}

/// Gs whose sockets are ready (non-blocking poll): one to run, the rest on
/// `p`'s queue.
fn netpoll_get(p: &'static P) -> Option<GRef> {
    let poller = hooks::poller()?;
    if (poller.waiting)() == 0 {
        return None;
    }
    let mut woken = take_buf();
    (poller.poll_ready)(&mut woken);
    let first = woken.pop();
    if !woken.is_empty() {
        for &g in &woken {
            // SAFETY: the caller's M holds p.
            unsafe { p.runq.put(g, false) };
        }
        wakep_if_idle();
    }
    put_buf(woken);
    first
}

/// Whether any run queue holds a G (racy; used only for re-checks).
pub(crate) fn work_anywhere() -> bool {
    let s = sched();
    !s.global.is_empty() || s.ps.iter().any(|p| !p.runq.is_empty())
}

/// Takes a batch from the global queue into `p`'s queue and returns one G.
pub(super) fn global_get(p: &'static P) -> Option<GRef> {
    let s = sched();
    // SAFETY: the caller's M holds p.
    let q = unsafe { p.runq.worker() };
    loop {
        match s.global.steal_batch_and_pop(q) {
            crossbeam_deque::Steal::Success(g) => return Some(g),
            crossbeam_deque::Steal::Empty => return None,
            crossbeam_deque::Steal::Retry => {}
        }
    }
}

/// Steals from other Ps in random order (half of a victim's queue, or its
/// `runnext` as a last resort).
fn steal_work(m: MRef, p: &'static P) -> Option<GRef> {
    let s = sched();
    let n = s.procs();
    // SAFETY: m holds p.
    let q = unsafe { p.runq.worker() };
    for round in 0..STEAL_ROUNDS {
        let start = m.fastrand() as usize % n;
        for i in 0..n {
            let victim = &s.ps[(start + i) % n];
            if core::ptr::eq(victim, p) {
                continue;
            }
            loop {
                match victim.runq.stealer.steal_batch_and_pop(q) {
                    crossbeam_deque::Steal::Success(g) => return Some(g),
                    crossbeam_deque::Steal::Empty => break,
                    crossbeam_deque::Steal::Retry => {}
                }
            }
            // The victim's runnext on the last round only: its owner is
            // likely about to run it.
            if round == STEAL_ROUNDS - 1
                && let Some(g) = steal_runnext(victim)
            {
                return Some(g);
            }
        }
        if let Some(g) = global_get(p) {
            return Some(g);
        }
    }
    None
}

/// How long a thief leaves a running P's `runnext` to its owner.
const RUNNEXT_GRACE_NS: u64 = 3_000;

/// Takes `victim`'s `runnext`, if any. When the victim is running, its G
/// has most likely just readied that G and is about to block (a channel
/// ping-pong, a join): its M switches to it within a microsecond, so wait
/// ~3 µs first and take it only if it is still there (Go's `runqgrab`
/// sleeps 3 µs for the same reason). Stealing it at once would move one
/// side of every hand-off to another M, turning a G-to-G switch into a
/// cross-thread wake-up.
///
/// A P whose G runs user code (`Lent`) counts as running: its G is as
/// likely to block in a moment. And it must be the *same* G after the
/// grace period (no put since): in a ping-pong `runnext` is full half the
/// time, but each G sits there only a few hundred nanoseconds; taking
/// whichever G is there then would split the pair at every look.
fn steal_runnext(victim: &P) -> Option<GRef> {
    if victim.runq.runnext_is_empty() {
        return None;
    }
    let mut since = None;
    if matches!(victim.status(), PStatus::Running | PStatus::Lent) {
        since = Some(victim.runq.runnext_puts());
        let until = nanotime() + RUNNEXT_GRACE_NS;
        while nanotime() < until {
            core::hint::spin_loop();
        }
    }
    let g = victim.runq.runnext_steal(since);
    // SAFETY: runnext holds null or GRef pointers.
    unsafe { GRef::from_ptr(g) }
}

/// Runs every due timer of every P, in deadline order across the Ps (an
/// M that comes late to two Ps' timers fires them merged, not P by P); the
/// Gs go to the current P.
fn run_due_timers() {
    let s = sched();
    if s.ps.iter().all(|p| p.timers.next_when() == NEVER) {
        return;
    }
    let now = nanotime();
    loop {
        // The P with the earliest timer, and the next deadline of any
        // other P: fire the first P's timers up to that one.
        let mut first: Option<(&P, u64)> = None;
        let mut second = NEVER;
        for p in s.ps {
            let w = p.timers.next_when();
            match first {
                Some((_, fw)) if w >= fw => second = second.min(w),
                Some((_, fw)) => {
                    second = fw;
                    first = Some((p, w));
                }
                None => first = Some((p, w)),
            }
        }
        let Some((p, w)) = first else { return };
        if w > now {
            return;
        }
        // Afterwards this P's next deadline is past the bound (entries
        // popped, stopped ones discarded), so the loop advances.
        p.timers.run_due(now.min(second), ready_in_order);
    }
}

/// Earliest timer deadline over all Ps.
pub(crate) fn earliest_timer() -> u64 {
    sched()
        .ps
        .iter()
        .map(|p| p.timers.next_when())
        .min()
        .unwrap_or(NEVER)
}

/// Takes this thread's reusable buffer for Gs a poll woke (allocation-free
/// once warm); give it back with [`put_buf`].
fn take_buf() -> Vec<GRef> {
    BUF.with(|b| b.take())
}

/// Returns the buffer of [`take_buf`], emptied.
fn put_buf(mut v: Vec<GRef>) {
    v.clear();
    BUF.with(|b| b.set(v));
}

std::thread_local! {
    /// Per M's `g0` (G code does not poll).
    static BUF: core::cell::Cell<Vec<GRef>> = const { core::cell::Cell::new(Vec::new()) };
}
