//! Running a callback from a foreign thread as a G.
//!
//! The foreign thread's own stack plays the M's `g0`: `run_on_extra`
//! switches to the extra M's callback G (which has a gort stack of its own),
//! the G runs the callback, and returns to the foreign stack when done. If the
//! callback blocks (join, sleep, a wait group), the G parks like any G locked
//! to its thread: the foreign thread hands its P to another M and sleeps
//! until the G is ready again and a P is handed back (Go's `stoplockedm` /
//! `startlockedm`). So a callback can do anything a G can.

use crate::engine::{give_up_p, run_locked_until};
use crate::extram::{NeedmError, cb_g, needm};
use crate::g::{GRef, GStatus};
use crate::m::{MRef, current_m};
use crate::state::sched;
use crate::syscall::{enter_syscall, exit_syscall};
use core::sync::atomic::{AtomicBool, Ordering};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Set once the process has started to exit: callbacks are refused.
static EXITING: AtomicBool = AtomicBool::new(false);

extern "C" fn at_exit() {
    // Relaxed: `exiting` loads it Relaxed and reads nothing published with
    // it; a callback that starts after the flag is seen is refused, one
    // that raced with it runs as before.
    EXITING.store(true, Ordering::Relaxed);
}

/// Registers the exit hook (once, at runtime start).
pub(crate) fn register_exit_hook() {
    // SAFETY: at_exit has the C signature atexit expects.
    unsafe { libc::atexit(at_exit) };
}

/// Whether the process is exiting.
pub fn exiting() -> bool {
    EXITING.load(Ordering::Relaxed)
}

/// Why a callback did not run (or did not finish).
#[derive(Debug)]
#[non_exhaustive]
pub enum CallbackError {
    /// The thread could not get an M.
    Needm(NeedmError),
    /// The process is exiting.
    Exiting,
    /// Called on a runtime thread outside any G (the scheduler's own
    /// context): there is no G to run it as.
    OnSchedulerStack,
    /// Called from a signal handler that interrupted a G: running the
    /// callback inline would park (or finish) the interrupted G from inside
    /// the handler. Plain threads may call back from a handler.
    InSignalHandler,
    /// The callback panicked; the payload.
    Panicked(Box<dyn Any + Send>),
    /// Called in a child of `fork` (see `fork.rs`): exec after fork.
    ForkedChild,
}

impl core::fmt::Display for CallbackError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CallbackError::Needm(e) => write!(f, "callback: {e}"),
            CallbackError::Exiting => f.write_str("callback: the process is exiting"),
            CallbackError::OnSchedulerStack => {
                f.write_str("callback: called from the scheduler, not from a G or a foreign thread")
            }
            CallbackError::InSignalHandler => {
                f.write_str("callback: called from a signal handler that interrupted a G")
            }
            CallbackError::Panicked(_) => f.write_str("callback: the callback panicked"),
            CallbackError::ForkedChild => f.write_str(
                "callback: refused in a forked child (the runtime's threads stayed in the parent); \
                 call exec or _exit after fork",
            ),
        }
    }
}

impl std::error::Error for CallbackError {}

/// Whether the calling code runs on its thread's alternate signal stack,
/// that is, in a signal handler installed with `SA_ONSTACK` (gort's own and
/// every handler it accepts on its threads: see `signals::install::check_onstack`).
/// One `sigaltstack` query; for the rare paths that may not park a G
/// interrupted by a handler.
pub fn on_signal_stack() -> bool {
    // SAFETY: stack_t is plain data, valid when all zero.
    let mut cur: libc::stack_t = unsafe { core::mem::zeroed() };
    // SAFETY: a query only (no new stack); `cur` is a valid out-pointer.
    let rc = unsafe { libc::sigaltstack(core::ptr::null(), &mut cur) };
    rc == 0 && cur.ss_flags & libc::SS_ONSTACK != 0
}

/// What the callback G needs, on the foreign thread's stack.
struct Frame<'a> {
    run: &'a mut dyn FnMut(),
    /// Set by the G when the callback returned; read by the waiting foreign
    /// thread between the G's runs. Atomic, so the waiting side's loads are
    /// never folded into one across the switches that it cannot see into.
    done: AtomicBool,
    panic: Option<Box<dyn Any + Send>>,
}

/// Runs `f` as a G on the calling thread, whatever the thread:
///
/// - on a G (a G called C, C calls back): inline, on that G, taking its P
///   back first if it was in a syscall;
/// - on a foreign thread: as the callback G of the thread's extra M, taken
///   from the pool on the first call and kept until the thread exits or
///   calls `dropm`.
pub fn callback<R>(f: impl FnOnce() -> R) -> Result<R, CallbackError> {
    if exiting() {
        return Err(CallbackError::Exiting);
    }
    if crate::fork::in_forked_child() {
        return Err(CallbackError::ForkedChild);
    }
    let m = match current_m() {
        Some(m) => m,
        None => {
            sched();
            needm(false).map_err(CallbackError::Needm)?
        }
    };
    if let Some(g) = m.curg() {
        // Nested: we are on a G of this thread already, unless a signal
        // handler interrupted that G (then the G is not ours to run).
        if on_signal_stack() {
            return Err(CallbackError::InSignalHandler);
        }
        let in_syscall = g.status() == GStatus::Syscall;
        if in_syscall {
            exit_syscall();
        }
        let r = catch_unwind(AssertUnwindSafe(f));
        if in_syscall {
            enter_syscall();
        }
        return r.map_err(CallbackError::Panicked);
    }
    if !m.extra {
        return Err(CallbackError::OnSchedulerStack);
    }
    let mut f = Some(f);
    let mut out = None;
    let mut run = || {
        if let Some(f) = f.take() {
            out = Some(f());
        }
    };
    let mut frame = Frame {
        run: &mut run,
        done: AtomicBool::new(false),
        panic: None,
    };
    run_on_extra(m, &mut frame);
    match frame.panic.take() {
        Some(p) => Err(CallbackError::Panicked(p)),
        None => match out {
            Some(r) => Ok(r),
            None => crate::throw!("callback: finished without a result"),
        },
    }
}

fn run_on_extra(m: MRef, frame: &mut Frame<'_>) {
    let s = sched();
    crate::extram::ensure_spare_if_needed();
    let Some(g) = cb_g(m) else {
        crate::throw!("run_on_extra: extra m without a callback g")
    };
    // One raw pointer for both sides: the G reaches the frame through it,
    // and so does the check below.
    let frame: *mut Frame<'_> = frame;
    // SAFETY: the callback G is idle and its stack is ours; the frame
    // outlives the G's run (we wait for `done` below).
    let sp = unsafe { arch::context::init_stack(g.stack_top(), cb_entry, frame as usize) };
    g.reset_for_callback(s.goid_one(), sp);
    g.lock_depth.store(1, Ordering::Relaxed);
    g.locked_m.store(m as *const _ as *mut _, Ordering::Relaxed);
    m.locked_g.store(g.as_ptr(), Ordering::Relaxed);
    // SAFETY: the frame outlives this call (the caller's local); the G
    // writes only its atomic `done` and, before that, its other fields.
    run_locked_until(m, g, || unsafe { (*frame).done.load(Ordering::Acquire) });
    g.set_status(GStatus::Idle);
    g.lock_depth.store(0, Ordering::Relaxed);
    g.locked_m.store(core::ptr::null_mut(), Ordering::Relaxed);
    m.locked_g.store(core::ptr::null_mut(), Ordering::Relaxed);
    give_up_p(m);
}

/// First code of a callback G.
unsafe extern "C" fn cb_entry(data: usize, _arg: usize) -> ! {
    // The callback's own code runs with the P lent, as any G's (see
    // `engine/lend.rs`): if it blocks in plain code, sysmon moves the P on.
    let m = crate::engine::resumed();
    crate::engine::leave_on(m);
    // SAFETY: run_on_extra passed a live &mut Frame and waits for `done`.
    let frame = unsafe { &mut *(data as *mut Frame<'_>) };
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| (frame.run)())) {
        frame.panic = Some(p);
    }
    // A callback's G-local values last for the callback.
    if let Some(g) = crate::m::current_g()
        && let Err(p) = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the G itself, after the callback returned: no
            // reference from `GLocal::with` is live.
            unsafe { g.locals().clear() }
        }))
    {
        frame.panic.get_or_insert(p);
    }
    frame.done.store(true, Ordering::Release);
    let Some(m) = current_m() else {
        crate::throw!("cb_entry: no m")
    };
    // Take the lent P back (or learn that sysmon moved it on) before the
    // foreign thread's stack releases it.
    crate::engine::enter(m);
    let Some(g) = m.curg() else {
        crate::throw!("cb_entry: no g")
    };
    leave_for_good(m, g)
}

fn leave_for_good(m: MRef, g: GRef) -> ! {
    crate::engine::switch_from_g(m, g);
    crate::throw!("cb_entry: a finished callback G was resumed")
}
