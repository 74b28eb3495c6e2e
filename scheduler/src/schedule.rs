//! The scheduler loop: running, parking, readying and stealing Gs.
//!
//! # Switching
//!
//! A G gives up its M by [`park`], [`yield_now`] or exit. The M first looks
//! at its P's local queue: if a G is there (and nothing forces the slow
//! path, see [`next_fast`]) it switches **straight to that G**. Otherwise it
//! switches to the M's `g0` context, which runs [`schedule`]: find work
//! (local queue, global queue, timers, stealing), or put the P and the M to
//! sleep.
//!
//! Whatever the switch did, the G that left is not yet visible to anyone: its
//! registers were being saved. The M records what to do with it in
//! `m.pending` (requeue, park + unlock, recycle), and the context that runs
//! next on the M completes it right after the switch ([`finish_switch`]).
//! That is the only place a G becomes visible to other Ms after leaving one.
//!
//! # Spinning and parking (no lost wake-ups)
//!
//! An M without work *spins* (steals from other Ps) before sleeping, and at
//! most about half the busy Ps have a spinning M. Work producers (spawn,
//! `ready`) push the G and then, after a StoreLoad barrier, wake an M only
//! if a P is idle and nobody spins. An M that stops spinning decrements
//! `nmspinning`; if it was the last spinner, it runs a StoreLoad barrier and
//! re-checks every queue before it sleeps (a producer that saw another
//! spinner relies on that one, which is last in its turn). Either the
//! producer sees `nmspinning == 0` and wakes someone, or the last spinner
//! sees the work: the two barriers forbid both missing each other
//! (the StoreLoad pattern Go uses in `findRunnable`/`wakep`). Producers are
//! the hot side and pay a compiler barrier; the M about to sleep pays
//! `membarrier` (`barrier.rs`). A spinning M that
//! finds work wakes another spinner in its place (`reset_spinning`), so
//! bursts spread across Ps.
//!
//! Rejected: waking an M on every push (thundering herd and ~1 µs per
//! spawn); a condition variable shared by all Ms (no per-P hand-off).

use crate::clock::{NEVER, coarse_now, nanotime, refresh_coarse_now};
use crate::g::{G, GRef, GStatus, WaitReason};
use crate::m::{MRef, MStatus, Pending, current_m, m_hooks, set_current_m};
use crate::p::{GFREE_MAX, P, PStatus};
use crate::sched::{AtLimit, m_exited, sched, start_m_or, wakep, wakep_if_idle};
use arch::context;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The global queue goes first once every this many schedules on a P, so
/// Gs there cannot starve behind a busy local queue (Go uses 61 too: prime,
/// so it does not beat in step with other periodic patterns).
const GLOBAL_QUEUE_PERIOD: u32 = 61;

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

// ---------------------------------------------------------------------------
// Entry points for Gs
// ---------------------------------------------------------------------------

/// Parks the running G: it becomes `Waiting` and stays off every run queue
/// until someone calls [`ready`] on it.
///
/// `unlock` runs after the G's context is saved, on the next context of the
/// same M: it is where the G publishes itself to its waker (releases the
/// lock of the wait list it joined, arms its timer...). If it returns false
/// the park is cancelled and the G is made runnable again. `unlock` must not
/// touch its captures after the action that lets another M ready the G: the
/// G may be running again by then.
///
/// # Panics
///
/// Not on a G: a fatal error (callers check [`crate::current_g`] first).
pub fn park<F: FnMut() -> bool>(reason: WaitReason, mut unlock: F) {
    if crate::fork::in_forked_child() {
        crate::fork::refuse_park();
    }
    let Some(m) = current_m() else {
        crate::throw!("park: not on an M")
    };
    if m.curg().is_none() {
        crate::throw!("park: not on a G")
    }
    let lent = crate::preempt::enter(m);
    let Some(g) = m.curg() else {
        crate::throw!("park: not on a G")
    };
    crate::bound::check_park(g);
    g.set_wait(reason, coarse_now());
    unsafe fn call<F: FnMut() -> bool>(data: *mut ()) -> bool {
        // SAFETY: data is the `&mut F` below, on the parked G's stack,
        // which stays valid until the G is readied, and that happens only
        // after this call's effect.
        unsafe { (*data.cast::<F>())() }
    }
    let data = (&mut unlock as *mut F).cast::<()>();
    m.set_pending(Pending::Park(g, Some((call::<F>, data))));
    let m = switch_from_g(m, g);
    if lent {
        crate::preempt::leave_on(m);
    }
}

/// Makes a `Waiting` G runnable. The caller must hold the right to wake it
/// (it took the G off the wait list it parked on, or fired its timer).
pub fn ready(g: GRef) {
    if g.status() != GStatus::Waiting {
        crate::throw!("ready: g is not waiting");
    }
    if crate::fork::in_forked_child() {
        crate::fork::refuse_park();
    }
    // Take our lent P back first (or go on without one).
    let m = current_m();
    let lent = m.is_some_and(crate::preempt::enter);
    g.set_wait(WaitReason::None, 0);
    g.set_status(GStatus::Runnable);
    g.on_enqueue();
    match m.and_then(|m| m.p()) {
        // SAFETY: the current M holds p.
        Some(p) => unsafe { p.runq.put(g, true) },
        None => sched().push_global(g),
    }
    wakep_if_idle();
    if lent && let Some(m) = m {
        crate::preempt::leave_on(m);
    }
}

/// Like [`ready`], but the G goes to the back of the local queue rather
/// than to `runnext`: for timers, which ready Gs in batches in deadline
/// order — through `runnext` each would push the previous one back and the
/// batch would run in reverse.
fn ready_in_order(g: GRef) {
    if g.status() != GStatus::Waiting {
        crate::throw!("ready_in_order: g is not waiting");
    }
    g.set_wait(WaitReason::None, 0);
    g.set_status(GStatus::Runnable);
    g.on_enqueue();
    match current_m().and_then(|m| m.p()) {
        // SAFETY: the current M holds p.
        Some(p) => unsafe { p.runq.put(g, false) },
        None => sched().push_global(g),
    }
    wakep_if_idle();
}

/// Lets other Gs run; the caller goes to the back of its P's queue. Returns
/// at once when nothing else is runnable.
pub fn yield_now() {
    let Some(m) = current_m() else {
        return std::thread::yield_now();
    };
    if m.curg().is_none() {
        return std::thread::yield_now();
    }
    if crate::fork::in_forked_child() {
        // No other G can run in a forked child (see `fork.rs`).
        return;
    }
    let (m, lent) = crate::preempt::enter_or_wait(m);
    let Some(g) = m.curg() else { return };
    crate::bound::check_park(g);
    let Some(p) = m.p() else { return };
    match yield_swap(m, g, p) {
        Some(m) if lent => crate::preempt::leave_on(m),
        Some(_) => {}
        None => yield_queued(m, g, p, lent),
    }
}

/// [`yield_now`] when [`yield_swap`] does not apply: behind the deque, or
/// behind the global queue, or not at all when nothing else is runnable.
#[inline(never)]
fn yield_queued(m: MRef, g: GRef, p: &'static P, lent: bool) {
    // SAFETY: m holds p.
    let local_empty = unsafe { p.runq.is_empty_owner() };
    if local_empty && sched().global.is_empty() && !timers_due(p) {
        if lent {
            crate::preempt::leave_on(m);
        }
        return;
    }
    // With local work, go behind it (the cheap path). Without, the work is
    // on the global queue: go behind that, or we would run again at once.
    m.set_pending(Pending::Yield(g, local_empty));
    let m = switch_from_g(m, g);
    if lent {
        crate::preempt::leave_on(m);
    }
}

/// The common yield: two Gs taking turns on one P. With nothing in the
/// deque, the other G sits in `runnext` (where [`RunQueue::put_back`](crate::runq::RunQueue::put_back) put
/// it), so `g` swaps places with it in one hand-shake and switches straight
/// to it; the hand-shake ends once `g` is saved ([`Pending::Swapped`]).
/// Returns the M `g` runs on afterwards, or `None` (nothing done) when
/// anything else applies: a deque to go behind, the global queue's or a
/// timer's turn, a locked G or M, an M about to exit.
#[inline]
fn yield_swap(m: MRef, g: GRef, p: &'static P) -> Option<MRef> {
    if !m.locked_g.load(Ordering::Relaxed).is_null()
        || m.exit_requested.load(Ordering::Relaxed)
        || (global_turn(p) && !sched().global.is_empty())
        || timers_due(p)
    {
        return None;
    }
    // SAFETY: m holds p.
    if !unsafe { p.runq.worker() }.is_empty() {
        return None;
    }
    // SAFETY: m holds p, and we switch away from g next.
    let next = unsafe { p.runq.swap_begin(g) }?;
    m.set_pending(Pending::Swapped(g));
    Some(switch_to(m, p, g, next))
}

/// Switches from the running `g` (its pending work set) straight to `next`,
/// which the caller took off `p`'s queue, and returns the M `g` runs on
/// once it is resumed.
#[inline]
fn switch_to(m: MRef, p: &'static P, g: GRef, next: GRef) -> MRef {
    next.on_dequeue();
    p.schedtick.set(p.schedtick.get().wrapping_add(1));
    next.set_status(GStatus::Running);
    m.curg.store(next.as_ptr(), Ordering::Release);
    // SAFETY: `g` is running on this stack, so its `sp` slot is ours to
    // write; `next` was Runnable and the caller took it off the queue, so
    // its saved sp is valid and nobody else resumes it.
    unsafe { context::switch(g.sp.as_ptr(), resume_sp(next, Some(p)), 0) };
    resumed()
}

/// Locks the running G to its M's thread until [`unlock_os_thread`] (calls
/// nest). While locked, the G runs only on this thread and the thread runs
/// no other G. A G that exits while locked takes its thread with it.
/// Outside a G: no effect (the caller already owns its thread).
pub fn lock_os_thread() {
    let Some(m) = current_m() else { return };
    let Some(g) = m.curg() else { return };
    // A thread about to retire (it could not go back from nice 19, see
    // `preempt::Demotion`) stays for the G that locks itself to it, at low
    // priority: the lock is the G's to keep. (The other setter of
    // `exit_requested` is a locked G's exit, which cannot get here.)
    m.exit_requested.store(false, Ordering::Relaxed);
    g.lock_depth.fetch_add(1, Ordering::Relaxed);
    g.locked_m.store(m as *const _ as *mut _, Ordering::Relaxed);
    m.locked_g.store(g.as_ptr(), Ordering::Relaxed);
}

/// Undoes one [`lock_os_thread`].
pub fn unlock_os_thread() {
    let Some(m) = current_m() else { return };
    let Some(g) = m.curg() else { return };
    let depth = g.lock_depth.load(Ordering::Relaxed);
    if depth == 0 {
        return;
    }
    g.lock_depth.store(depth - 1, Ordering::Relaxed);
    if depth == 1 {
        g.locked_m.store(core::ptr::null_mut(), Ordering::Relaxed);
        m.locked_g.store(core::ptr::null_mut(), Ordering::Relaxed);
    }
}

/// Leaves the running G `g` on M `m` (whose pending work is set) and
/// returns when `g` runs again — possibly on another M: after the switch,
/// nothing read before it (`m`, its P) may be used. Returns the M that `g`
/// runs on now.
#[inline(never)]
pub(crate) fn switch_from_g(m: MRef, g: GRef) -> MRef {
    if crate::fork::in_forked_child() {
        crate::fork::refuse_park();
    }
    let mut to_g0_arg = 0usize;
    // A locked M runs no other G; an M whose locked G exited must reach g0
    // to end its thread before running anything else.
    if m.locked_g.load(Ordering::Relaxed).is_null()
        && !m.exit_requested.load(Ordering::Relaxed)
        && let Some(p) = m.p()
        && let Some(next) = next_fast(p)
    {
        if next.locked_m.load(Ordering::Relaxed).is_null() {
            return switch_to(m, p, g, next);
        }
        // A G locked to another M: g0 hands our P over.
        to_g0_arg = next.as_ptr() as usize;
    }
    m.curg.store(core::ptr::null_mut(), Ordering::Release);
    // SAFETY: g runs on this stack; g0_sp was saved when g0 switched to a G
    // of this M, and g0 is parked in `execute` waiting for exactly this.
    unsafe { context::switch(g.sp.as_ptr(), m.g0_sp.load(Ordering::Relaxed), to_g0_arg) };
    resumed()
}

/// Runs on a G right after it is switched back in, possibly on another M;
/// returns that M.
#[inline(never)]
pub(crate) fn resumed() -> MRef {
    let Some(m) = current_m() else {
        crate::throw!("resumed: no M")
    };
    // The common case of a yield, inline: no call into the whole of
    // `finish_switch`.
    match m.take_swapped() {
        Some(g) => finish_swap(m, g),
        None => finish_switch(m),
    }
    m
}

/// Completes [`Pending::Swapped`].
#[inline]
fn finish_swap(m: MRef, g: GRef) {
    g.set_status(GStatus::Runnable);
    g.on_enqueue();
    let Some(p) = m.p() else {
        crate::throw!("finish_swap: swapped without a p")
    };
    p.runq.swap_done();
}

/// The next local G, if the fast G-to-G switch may take it: not when the
/// global queue is due for a look, and not when a timer is due (both handled
/// on g0 by `find_runnable`).
#[inline]
fn next_fast(p: &'static P) -> Option<GRef> {
    if global_turn(p) || timers_due(p) {
        return None;
    }
    // SAFETY: the caller's M holds p.
    unsafe { p.runq.get() }
}

/// Whether the next schedule on `p` must look at the global queue first.
#[inline]
fn global_turn(p: &P) -> bool {
    p.schedtick
        .get()
        .wrapping_add(1)
        .is_multiple_of(GLOBAL_QUEUE_PERIOD)
}

/// Whether any timer of `p` is due (reads the clock only if `p` has one).
#[inline]
fn timers_due(p: &P) -> bool {
    let next = p.timers.next_when();
    next != NEVER && next <= nanotime()
}

/// Completes the work the previous context left on this M (see the module
/// docs). Runs on the new context's stack.
pub(crate) fn finish_switch(m: MRef) {
    match m.take_pending() {
        Pending::None => {}
        Pending::Yield(g, global) => {
            g.set_status(GStatus::Runnable);
            g.on_enqueue();
            if global {
                sched().push_global(g);
            } else {
                let Some(p) = m.p() else {
                    crate::throw!("finish_switch: yield without a p")
                };
                // SAFETY: this M holds p.
                unsafe { p.runq.put_back(g) };
            }
        }
        Pending::Swapped(g) => finish_swap(m, g),
        Pending::Park(g, unlock) => {
            g.set_status(GStatus::Waiting);
            if let Some((f, data)) = unlock {
                // SAFETY: (f, data) were built together in `park`, and the
                // parked G's stack holding data is intact until it is readied.
                if !unsafe { f(data) } {
                    g.set_wait(WaitReason::None, 0);
                    g.set_status(GStatus::Runnable);
                    g.on_enqueue();
                    match m.p() {
                        // SAFETY: this M holds p.
                        Some(p) => unsafe { p.runq.put(g, true) },
                        // The G lost its P to sysmon before it parked.
                        None => {
                            sched().push_global(g);
                            wakep_if_idle();
                        }
                    }
                }
            }
        }
        Pending::SyscallNoP(g) => {
            g.set_status(GStatus::Runnable);
            g.on_enqueue();
            sched().push_global(g);
            wakep_if_idle();
        }
        Pending::Exit(g) => {
            g.set_status(GStatus::Dead);
            // SAFETY: the G is dead and its stack no longer in use: we are on
            // another context.
            let stack = unsafe { g.take_stack() };
            match m.p() {
                Some(p) => {
                    if let Some(stack) = stack {
                        // SAFETY: this M holds p, so it owns p's stack cache.
                        unsafe { (*p.stacks.get()).free(&sched().stacks, stack) };
                    }
                    gfput(p, g);
                }
                None => {
                    if let Some(stack) = stack {
                        sched().stacks.free(stack);
                    }
                    g.set_status(GStatus::Idle);
                    sched().gfree.lock().push(g);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// G lifecycle
// ---------------------------------------------------------------------------

/// How many Gs in a row (up to [`NO_WARM_RUN`]) started without a warm
/// stack to trade for: their M's P had none cached, because Gs are parking
/// rather than exiting. Read by `spawn`, which then takes the first-touch
/// page faults of a long queue itself. A run, not the last start alone: a
/// burst of exiting Gs also starts with a cold cache or two. Racy counts
/// are fine (a hint); written only when it changes, so the line stays
/// shared while it is saturated.
static NO_WARM_STACKS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Starts without a warm stack after which `spawn` helps.
const NO_WARM_RUN: u32 = 64;

fn set_no_warm_stacks(none: bool) {
    let n = NO_WARM_STACKS.load(Ordering::Relaxed);
    let next = if none { (n + 1).min(NO_WARM_RUN) } else { 0 };
    if next != n {
        NO_WARM_STACKS.store(next, Ordering::Relaxed);
    }
}

/// See [`NO_WARM_STACKS`].
pub(crate) fn no_warm_stacks() -> bool {
    NO_WARM_STACKS.load(Ordering::Relaxed) >= NO_WARM_RUN
}

/// The stack pointer to switch to for `g`, which the caller has just taken
/// off a run queue (so it owns the G and its stack).
///
/// A G that has never run has a saved sp of 0: [`spawn`](crate::spawn)
/// leaves its stack untouched, and the M that first runs it writes the
/// initial frame here. The first write to a fresh stack page costs a page
/// fault (zeroing, accounting: microseconds on a VM), so this puts that cost
/// on the M that runs the G — in a burst, the Ms that steal the new Gs —
/// instead of serialising every fault on the spawning G. Rejected: writing
/// the frame in `spawn` (what Go does, but Go's stacks come from already
/// faulted heap spans). `p` is the P of the M that runs the G, whose cache
/// it trades stacks with ([`first_frame`]).
#[inline]
fn resume_sp(g: GRef, p: Option<&'static P>) -> usize {
    let sp = g.sp.load(Ordering::Relaxed);
    if sp != 0 { sp } else { first_frame(g, p) }
}

/// Writes the first frame of `g`, which has never run, and returns its sp
/// (see [`resume_sp`]). With `p`, the G first trades its untouched stack
/// for the warmest one of `p`'s cache. Also called by `spawn` (with no P:
/// no trade) when the spawner writes a G's first frame itself.
#[cold]
pub(crate) fn first_frame(g: GRef, p: Option<&'static P>) -> usize {
    if let Some(p) = p {
        // SAFETY: our M holds `p`, so it owns `p`'s stack cache.
        let cache = unsafe { &mut *p.stacks.get() };
        set_no_warm_stacks(cache.is_empty());
        // SAFETY: the caller owns `g`, which has not run.
        unsafe { g.trade_stack(|st| cache.trade_for_warm(&sched().stacks, st)) };
    }
    let top = g.stack_top();
    // SAFETY: the caller owns `g` (Runnable, off the queues) and so its
    // stack, which `spawn` gave it and which is much larger than the initial
    // frame; nothing else uses the stack until the G runs.
    let sp = unsafe { context::init_stack(top, g_entry, g.0 as *const G as usize) };
    // Published for tracebacks before the G runs (it then writes its own).
    g.sp.store(sp, Ordering::Release);
    sp
}

/// First code of every G, called by the arch trampoline with `data` = the G.
pub(crate) unsafe extern "C" fn g_entry(data: usize, _arg: usize) -> ! {
    // SAFETY: spawn passes the G's own address, and Gs live forever.
    let g = GRef(unsafe { &*(data as *const G) });
    let m = resumed();
    // The G's own code runs with the P lent (see `preempt.rs`).
    crate::preempt::leave_on(m);
    // SAFETY: first and only call, by the G itself.
    if let Some(entry) = unsafe { g.take_entry() } {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            entry.run();
            drop(entry);
            // SAFETY: the G itself, after its function returned: no
            // reference from `GLocal::with` is live.
            unsafe { g.locals().clear() };
        }));
        if outcome.is_err() {
            crate::throw!("g_entry: a panic escaped a G's entry");
        }
    }
    g_exit(g)
}

/// Ends the running G: recycles it once we have left its stack.
fn g_exit(g: GRef) -> ! {
    if crate::fork::in_forked_child() {
        crate::fork::refuse_park();
    }
    let Some(m) = current_m() else {
        crate::throw!("g_exit: no M")
    };
    crate::preempt::enter(m);
    if core::ptr::eq(m.locked_g.load(Ordering::Relaxed), g.as_ptr()) {
        // Go's rule: a G that exits while locked to its thread may have left
        // the thread in a special state, so the thread goes with it.
        m.locked_g.store(core::ptr::null_mut(), Ordering::Relaxed);
        g.locked_m.store(core::ptr::null_mut(), Ordering::Relaxed);
        m.exit_requested.store(true, Ordering::Relaxed);
    }
    m.set_pending(Pending::Exit(g));
    switch_from_g(m, g);
    crate::throw!("g_exit: a dead G was resumed")
}

/// Takes a free G struct: the P's list, then the global list, then a new
/// one in the registry.
pub(crate) fn gfget(p: Option<&'static P>) -> GRef {
    if let Some(p) = p {
        // SAFETY: the caller's M holds p.
        let list = unsafe { &mut *p.gfree.get() };
        if list.is_empty() {
            let mut global = sched().gfree.lock();
            let n = global.len().min(GFREE_MAX / 2);
            let at = global.len() - n;
            list.extend(global.drain(at..));
        }
        if let Some(g) = list.pop() {
            return g;
        }
    } else if let Some(g) = sched().gfree.lock().pop() {
        return g;
    }
    GRef(crate::g::ALLGS.push_with(G::new))
}

/// Returns a dead G's struct to the P's free list.
pub(crate) fn gfput(p: &'static P, g: GRef) {
    g.set_status(GStatus::Idle);
    // SAFETY: the caller's M holds p.
    let list = unsafe { &mut *p.gfree.get() };
    list.push(g);
    if list.len() > GFREE_MAX {
        let half = list.len() / 2;
        sched().gfree.lock().extend(list.drain(half..));
    }
}

// ---------------------------------------------------------------------------
// The M side
// ---------------------------------------------------------------------------

/// Body of every M's thread.
pub(crate) fn mstart(m: MRef) {
    set_current_m(Some(m));
    m.set_tid();
    m.set_status(MStatus::Running);
    if let Some(h) = m_hooks() {
        (h.start)(m);
    }
    let p = m.nextp.swap(core::ptr::null_mut(), Ordering::Acquire);
    // SAFETY: start_m stored a 'static P before starting the thread.
    let Some(p) = (unsafe { p.as_ref() }) else {
        crate::throw!("mstart: m has no p")
    };
    acquire_p(m, p);
    schedule(m);
    if let Some(h) = m_hooks() {
        (h.exit)(m);
    }
    set_current_m(None);
    m_exited(m);
}

/// The scheduler loop on `g0`. Returns only when the M must exit.
fn schedule(m: MRef) {
    let mut handed: Option<GRef> = None;
    loop {
        finish_switch(m);
        if m.exit_requested.load(Ordering::Relaxed) {
            if let Some(p) = release_p(m) {
                hand_off_p(p);
            }
            return;
        }
        if let Some(lg) = m.locked_g() {
            // Our locked G parked or yielded: nobody else may use this
            // thread, so hand the P on and wait for the G to come back.
            stop_locked_m(m);
            execute_and_take(m, lg, &mut handed);
            continue;
        }
        if m.p().is_none() {
            // Our G came back from a syscall to find its P gone and none
            // idle: it is queued; this M sleeps until given a P.
            stop_m(m, NEVER);
        }
        let g = match handed.take() {
            Some(g) => g,
            None => find_runnable(m),
        };
        if m.spinning.load(Ordering::Relaxed) {
            reset_spinning(m);
        }
        let target = g.locked_m.load(Ordering::Relaxed);
        if !target.is_null() && !core::ptr::eq(target, m) {
            start_locked_m(m, g, target);
            stop_m(m, NEVER);
            continue;
        }
        execute_and_take(m, g, &mut handed);
    }
}

fn execute_and_take(m: MRef, g: GRef, handed: &mut Option<GRef>) {
    let arg = execute(m, g);
    // SAFETY: switch_from_g passes 0 or a G pointer.
    *handed = unsafe { GRef::from_ptr(arg as *mut G) };
}

/// Runs `g` (Runnable, ours) on this M until control comes back to `g0`.
/// Returns the value the G passed to `g0` (a G to hand over, or 0).
pub(crate) fn execute(m: MRef, g: GRef) -> usize {
    if let Some(p) = m.p() {
        p.schedtick.set(p.schedtick.get().wrapping_add(1));
    }
    g.on_dequeue();
    g.set_status(GStatus::Running);
    m.curg.store(g.as_ptr(), Ordering::Release);
    // SAFETY: we are on g0 of this M; g is Runnable and owned by us, so its
    // saved sp is valid and nobody else resumes it.
    unsafe { context::switch(m.g0_sp.as_ptr(), resume_sp(g, m.p()), 0) }
}

/// Our M stops being a spinner because it found work; if it was the last
/// one, another M starts spinning to pick up any remaining work.
fn reset_spinning(m: MRef) {
    m.spinning.store(false, Ordering::Relaxed);
    // SeqCst: a spinner that found work stops being one, then `wakep` below
    // loads `npidle`; one order with the other updates of `nmspinning` (see
    // `sched::wakep`).
    let prev = sched().nmspinning.fetch_sub(1, Ordering::SeqCst);
    if prev == 0 {
        crate::throw!("reset_spinning: negative nmspinning");
    }
    wakep();
}

/// Finds a runnable G for M `m` (which holds a P), sleeping as long as there
/// is none. Returns holding a P.
fn find_runnable(m: MRef) -> GRef {
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
            check_dead(true);
        }
        // Gs wait for I/O and no M blocks in netpoll: this M does, instead
        // of sleeping on its note (netpoll.rs). It holds no P and is not on
        // the idle list; `start_m` interrupts it when it needs an M.
        let mut woken = crate::netpoll::take_buf();
        if crate::netpoll::try_block(next, &mut woken) {
            // Queue them before looking for a P: an M that releases its P
            // looks at the global queue under the same lock (no lost G).
            let n = woken.len();
            for &g in &woken {
                s.push_global(g);
            }
            crate::netpoll::put_buf(woken);
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
        crate::netpoll::put_buf(woken);
        stop_m(m, next);
    }
}

/// Gs whose sockets are ready (non-blocking poll): one to run, the rest on
/// `p`'s queue.
fn netpoll_get(p: &'static P) -> Option<GRef> {
    if !crate::netpoll::inited() || crate::netpoll::waiting() == 0 {
        return None;
    }
    let mut woken = crate::netpoll::take_buf();
    crate::netpoll::poll_ready(&mut woken);
    let first = woken.pop();
    if !woken.is_empty() {
        for &g in &woken {
            // SAFETY: the caller's M holds p.
            unsafe { p.runq.put(g, false) };
        }
        wakep_if_idle();
    }
    crate::netpoll::put_buf(woken);
    first
}

/// Go's `checkdead`: called when an M is about to sleep with no timer
/// pending. If every G is parked on something only another G could end and
/// the only other threads are the runtime's own and plain threads blocked in
/// runtime waits, nothing can ever run again: report the deadlock (a fatal
/// error with the dump, exit 2).
///
/// Not a deadlock: a G in a syscall, a timer, a G waiting for I/O (the
/// peer may send), a foreign thread holding an extra M (it may call back), or any other thread of the process (it may
/// wake a G) — counted through `/proc/self/task`.
///
/// Sysmon also calls it during its quiet rounds on an idle runtime (about
/// 0.4 s). A check that finds no blocked thread, or more threads than it can
/// account for, wakes sysmon for those rounds, and so does a plain thread
/// that starts waiting on a G while every P is idle: otherwise a thread
/// that was still exiting (gort's own symbol-table thread, right after
/// start-up), or the main thread reaching its `join` after the last M went
/// to sleep, would leave a deadlock that nothing looks at again. A check
/// that found more threads than it can account for also leaves
/// [`dead_unsure`] set: sysmon, asleep on an idle runtime, then looks again
/// now and then (`check_dead(false)`), so a thread that exits long after
/// without waking anyone still ends in the report.
///
/// `wake_sysmon`: ask sysmon for its quiet rounds where the check may be
/// racing with a thread that is about to block or exit (false for sysmon's
/// own looks while it sleeps).
pub(crate) fn check_dead(wake_sysmon: bool) {
    let unsure = check_dead_unsure(wake_sysmon);
    DEAD_UNSURE.store(unsure, Ordering::Relaxed);
}

/// Whether the last deadlock check found every G parked but a thread it
/// could not account for (which may still wake one).
pub(crate) fn dead_unsure() -> bool {
    DEAD_UNSURE.load(Ordering::Relaxed)
}

/// See [`dead_unsure`].
static DEAD_UNSURE: AtomicBool = AtomicBool::new(false);

/// Threads the runtime's crates keep for themselves that never wake a G
/// (the crash dump's symbolizer thread): the deadlock check counts them as
/// accounted for.
static HELPER_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Declares one more thread of the runtime's own that never wakes a G and
/// lives until the process ends (see [`check_dead`]).
pub fn add_helper_thread() {
    HELPER_THREADS.fetch_add(1, Ordering::Relaxed);
}

/// [`check_dead`]'s check; returns whether only threads it could not
/// account for were in the way.
fn check_dead_unsure(wake_sysmon: bool) -> bool {
    let s = sched();
    // SeqCst: these two loads sit in the one order of the counters' SeqCst
    // updates (`pidle_get`, `pidle_put`, the spinning hand-offs), so "every P
    // idle, no M spinning" is never pieced together from an old `npidle` and a
    // newer `nmspinning`.
    if s.npidle.load(Ordering::SeqCst) != s.procs()
        || s.nmspinning.load(Ordering::SeqCst) != 0
        || crate::extram::extra_m_in_use() != 0
        || earliest_timer() != NEVER
        || crate::netpoll::waiting() != 0
    {
        return false;
    }
    let blocked = crate::waiter::blocked_threads();
    if blocked == 0 {
        // No thread waits on a G: whoever runs next is outside the runtime.
        // One may be about to (racing with this check): sysmon looks again.
        if wake_sysmon {
            crate::sysmon::note_syscall();
        }
        return false;
    }
    let mut waiting = 0usize;
    for g in crate::g::ALLGS.iter() {
        match g.status() {
            GStatus::Waiting => waiting += 1,
            GStatus::Runnable | GStatus::Running | GStatus::Syscall => return false,
            GStatus::Idle | GStatus::Dead => {}
        }
    }
    if waiting == 0 || !s.global.is_empty() || work_anywhere() {
        return false;
    }
    // Threads that cannot wake anyone: Ms with a thread (this one included),
    // sysmon, the blocked plain threads and the runtime's helper threads.
    let known = crate::extram::mcount() - crate::extram::extra_m_count()
        + 1
        + blocked
        + HELPER_THREADS.load(Ordering::Relaxed);
    let tasks = std::fs::read_dir("/proc/self/task").map_or(usize::MAX, |d| d.count());
    if tasks > known {
        // Some other thread may still wake a G, or may be exiting: have
        // sysmon (woken as for a syscall) look again during its quiet rounds.
        if wake_sysmon {
            crate::sysmon::note_syscall();
        }
        return true;
    }
    crate::throw!("all goroutines are asleep - deadlock!");
}

/// Whether any run queue holds a G (racy; used only for re-checks).
fn work_anywhere() -> bool {
    let s = sched();
    !s.global.is_empty() || s.ps.iter().any(|p| !p.runq.is_empty())
}

/// Takes an idle P for `m`, if any.
pub(crate) fn take_idle_p(m: MRef) -> bool {
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

/// Takes a batch from the global queue into `p`'s queue and returns one G.
fn global_get(p: &'static P) -> Option<GRef> {
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
fn earliest_timer() -> u64 {
    sched()
        .ps
        .iter()
        .map(|p| p.timers.next_when())
        .min()
        .unwrap_or(NEVER)
}

/// Binds `p` to `m`.
fn acquire_p(m: MRef, p: &'static P) {
    if !m.p.load(Ordering::Relaxed).is_null() {
        crate::throw!("acquire_p: m already has a p");
    }
    refresh_coarse_now();
    p.m.store(m as *const _ as *mut _, Ordering::Relaxed);
    p.set_status(PStatus::Running);
    m.p.store(p as *const P as *mut P, Ordering::Release);
}

/// Unbinds `m`'s P and returns it.
pub(crate) fn release_p(m: MRef) -> Option<&'static P> {
    let p = m.p()?;
    p.m.store(core::ptr::null_mut(), Ordering::Relaxed);
    m.p.store(core::ptr::null_mut(), Ordering::Release);
    Some(p)
}

/// Passes a P its M no longer uses to an M that will run its work, or puts
/// it on the idle list if it has none (Go's `handoffp`).
pub(crate) fn hand_off_p(p: &'static P) {
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
fn recheck_after_idle() -> bool {
    // SeqCst: pairs with `push_global`'s fence (see above): either the producer
    // sees this P idle, or this look sees its G.
    core::sync::atomic::fence(Ordering::SeqCst);
    !sched().global.is_empty()
}

/// Puts `m` (which has released its P) to sleep until another M hands it a
/// P, or until `deadline` (runtime clock) for the earliest timer.
pub(crate) fn stop_m(m: MRef, deadline: u64) {
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
pub(crate) fn stop_locked_m(m: MRef) {
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
fn start_locked_m(m: MRef, g: GRef, target: *mut crate::m::M) {
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
