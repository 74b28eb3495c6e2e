//! An M's thread: its creation (at the thread limit, a fatal error or a
//! stall), the scheduler loop on its `g0`, and its exit.

use super::find::{find_runnable, reset_spinning};
use super::glife::resume_sp;
use super::handoff::{
    AtLimit, acquire_p, hand_off_p, release_p, start_locked_m, stop_locked_m, stop_m, take_idle_p,
    wakep_if_idle,
};
use super::hooks;
use super::switch::finish_switch;
use crate::clock::NEVER;
use crate::g::{G, GRef, GStatus};
use crate::m::{MRef, MStatus, m_hooks, set_current_m};
use crate::p::P;
use crate::state::sched;
use arch::context;
use core::sync::atomic::Ordering;

/// Body of every M's thread.
pub(super) fn mstart(m: MRef) {
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
pub(super) fn schedule(m: MRef) {
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
pub(super) fn execute(m: MRef, g: GRef) -> usize {
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

/// Size of the thread stack of an M (its `g0`). Gs run on their own stacks;
/// `g0` runs only the scheduler loop (and, later, signal-free runtime work).
const G0_STACK_SIZE: usize = 256 * 1024;

/// Creates an M with a new OS thread that starts holding `p`.
pub(super) fn new_m(p: &'static P, spinning: bool, at_limit: AtLimit) {
    let s = sched();
    let Ok(m) = crate::mlist::register_m(s.config.max_threads) else {
        if at_limit == AtLimit::Fatal {
            let msg = format!(
                "runtime: program exceeds the limit of {} threads gort creates (max_threads, set by {})\n",
                s.config.max_threads, s.config.max_threads_source
            );
            crate::fatal::write_stderr(&[msg.as_bytes()]);
            crate::throw!("new_m: thread exhaustion");
        }
        if spinning {
            // SeqCst: undoes `wakep`'s claim, in the one order of
            // `nmspinning`'s updates (see `wakep` in `handoff.rs`).
            s.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
        (hooks::get().thread_limit_stall)();
        // SAFETY: no M holds `p` (it was handed here to start one with), so
        // its queue is ours to empty.
        while let Some(g) = unsafe { p.runq.get() } {
            s.push_global(g);
        }
        let mut synced = s.synced.lock();
        s.pidle_put(&mut synced, p);
        return;
    };
    m.spinning.store(spinning, Ordering::Relaxed);
    m.nextp.store(p as *const P as *mut P, Ordering::Release);
    let spawned = std::thread::Builder::new()
        .name(format!("gort-m{}", m.id))
        .stack_size(G0_STACK_SIZE)
        .spawn(move || super::mloop::mstart(m));
    if spawned.is_err() {
        crate::fatal::write_stderr(&[b"runtime: failed to create new OS thread\n"]);
        crate::throw!("new_m: cannot create an OS thread");
    }
}

/// Bookkeeping when an M's thread exits.
pub(super) fn m_exited(m: MRef) {
    crate::mlist::unregister_m(m);
}

/// Runs `g`, locked to `m`, on `m`'s own thread until `done()` (a callback
/// on an extra M: the foreign thread's stack is the M's `g0`). `g` is
/// `Runnable` and on no queue. Takes an idle P, or queues `g` for an M that
/// will see it is locked here and hand over its P; then runs `g`, and each
/// time `g` parks (or loses its P in a syscall) waits for it to come back
/// with a P. Returns holding a P (see [`give_up_p`]).
pub(crate) fn run_locked_until(m: MRef, g: GRef, mut done: impl FnMut() -> bool) {
    g.on_enqueue();
    if !take_idle_p(m) {
        let s = sched();
        s.push_global(g);
        wakep_if_idle();
        stop_locked_m(m);
    }
    loop {
        execute(m, g);
        finish_switch(m);
        if done() {
            break;
        }
        // The G parked (or lost its P in a syscall): wait for it to be
        // handed back with a P.
        stop_locked_m(m);
    }
}

/// Gives `m`'s P, if it holds one, to an M that will run its work, or to
/// the idle list.
pub(crate) fn give_up_p(m: MRef) {
    if let Some(p) = release_p(m) {
        hand_off_p(p);
    }
}
