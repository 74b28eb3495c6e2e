//! A G's life: its first frame (and the warm stack it trades its cold one
//! for), its entry and exit, and the free lists its struct returns to.

use super::switch::{resumed, switch_from_g};
use crate::g::{G, GRef, GStatus};
use crate::m::{Pending, current_m};
use crate::p::{GFREE_MAX, P};
use crate::state::sched;
use arch::context;
use core::sync::atomic::Ordering;

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
pub(super) fn resume_sp(g: GRef, p: Option<&'static P>) -> usize {
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
pub(super) unsafe extern "C" fn g_entry(data: usize, _arg: usize) -> ! {
    // SAFETY: spawn passes the G's own address, and Gs live forever.
    let g = GRef(unsafe { &*(data as *const G) });
    let m = resumed();
    // The G's own code runs with the P lent (see `lend.rs`).
    super::lend::leave_on(m);
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
    super::lend::enter(m);
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
