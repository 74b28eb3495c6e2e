//! Switching: how a G leaves its M (park, yield, exit) and how the context
//! that runs next finishes what the G left (the engine's essay, "Switching",
//! in `mod.rs`).

use super::glife::gfput;
use super::glife::resume_sp;
use super::handoff::wakep_if_idle;
use crate::clock::{NEVER, coarse_now, nanotime};
use crate::g::{GRef, GStatus, WaitReason};
use crate::m::{MRef, Pending, current_m};
use crate::p::P;
use crate::state::sched;
use arch::context;
use core::sync::atomic::Ordering;

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
    let lent = super::lend::enter(m);
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
        super::lend::leave_on(m);
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
    let lent = m.is_some_and(super::lend::enter);
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
        super::lend::leave_on(m);
    }
}

/// Like [`ready`], but the G goes to the back of the local queue rather
/// than to `runnext`: for timers, which ready Gs in batches in deadline
/// order — through `runnext` each would push the previous one back and the
/// batch would run in reverse.
pub(super) fn ready_in_order(g: GRef) {
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
    let (m, lent) = super::lend::enter_or_wait(m);
    let Some(g) = m.curg() else { return };
    crate::bound::check_park(g);
    let Some(p) = m.p() else { return };
    match yield_swap(m, g, p) {
        Some(m) if lent => super::lend::leave_on(m),
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
            super::lend::leave_on(m);
        }
        return;
    }
    // With local work, go behind it (the cheap path). Without, the work is
    // on the global queue: go behind that, or we would run again at once.
    m.set_pending(Pending::Yield(g, local_empty));
    let m = switch_from_g(m, g);
    if lent {
        super::lend::leave_on(m);
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
    // `m::Demotion`) stays for the G that locks itself to it, at low
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

/// The global queue goes first once every this many schedules on a P, so
/// Gs there cannot starve behind a busy local queue (Go uses 61 too: prime,
/// so it does not beat in step with other periodic patterns).
const GLOBAL_QUEUE_PERIOD: u32 = 61;

/// Whether the next schedule on `p` must look at the global queue first.
#[inline]
pub(super) fn global_turn(p: &P) -> bool {
    p.schedtick
        .get()
        .wrapping_add(1)
        .is_multiple_of(GLOBAL_QUEUE_PERIOD)
}

/// Whether any timer of `p` is due (reads the clock only if `p` has one).
#[inline]
pub(super) fn timers_due(p: &P) -> bool {
    let next = p.timers.next_when();
    next != NEVER && next <= nanotime()
}

/// Completes the work the previous context left on this M (see the module
/// docs). Runs on the new context's stack.
pub(super) fn finish_switch(m: MRef) {
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
