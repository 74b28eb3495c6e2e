//! Who waits: a G (parked) or a plain thread (blocked).
//!
//! Primitives that work both inside and outside the runtime (join, wait
//! groups, later channels) keep a list of [`Waiter`]s and wake them with
//! [`Waiter::wake`]: a G is made runnable, a thread is unparked.

use crate::engine::ready;
use crate::g::GRef;
use crate::m::current_g;

/// Plain threads registered as waiters in some wait list and not yet woken:
/// only a G can wake them. Deadlock detection counts them. A thread counts
/// from the moment it registers (`Waiter::current`) until its waker takes it
/// off the list (`Waiter::wake`) — not until it runs again, so a thread that
/// was just woken is never mistaken for a blocked one.
static BLOCKED_THREADS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

pub(crate) fn blocked_threads() -> usize {
    // SeqCst: the load of a Dekker pair with `ThreadWaiter::new`: the last P
    // going idle (`pidle_put`'s increment of `npidle`), then `check_dead` loads
    // this, against a thread counting itself here, then loading `npidle`.
    BLOCKED_THREADS.load(core::sync::atomic::Ordering::SeqCst)
}

/// A registered plain-thread waiter: counted in [`BLOCKED_THREADS`] while
/// it exists, unless it waits with a deadline (then it wakes itself, so it
/// is not "blocked on a G" as far as deadlock detection goes).
#[derive(Debug)]
pub struct ThreadWaiter {
    thread: std::thread::Thread,
    counted: bool,
}

impl ThreadWaiter {
    fn new(counted: bool) -> ThreadWaiter {
        if counted {
            // SeqCst: the store of the pair in `blocked_threads`.
            BLOCKED_THREADS.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
            // A thread that starts waiting on a G after the last M went to
            // sleep may complete a deadlock that no M will look at: have
            // sysmon look (`deadlock::check_dead`).
            if let Some(s) = crate::state::try_sched()
                && s.npidle() == s.procs()
            {
                crate::bell::note_syscall();
            }
        }
        ThreadWaiter {
            thread: std::thread::current(),
            counted,
        }
    }
}

impl Drop for ThreadWaiter {
    fn drop(&mut self) {
        if self.counted {
            // SeqCst: one order with the increment (see `blocked_threads`).
            BLOCKED_THREADS.fetch_sub(1, core::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A party waiting for an event.
#[derive(Debug)]
pub enum Waiter {
    /// A parked G.
    G(GRef),
    /// A blocked OS thread that does not run a G.
    Thread(ThreadWaiter),
}

impl Waiter {
    /// The caller as a waiter.
    pub fn current() -> Waiter {
        match current_g() {
            Some(g) => Waiter::G(g),
            None => Waiter::Thread(ThreadWaiter::new(true)),
        }
    }

    /// The calling thread as a waiter with a deadline: not counted as
    /// blocked by deadlock detection, since it ends its own wait.
    pub(crate) fn current_thread_timed() -> Waiter {
        Waiter::Thread(ThreadWaiter::new(false))
    }

    /// The calling thread as a waiter without a deadline (counted).
    pub(crate) fn current_thread() -> Waiter {
        Waiter::Thread(ThreadWaiter::new(true))
    }

    /// Wakes the waiter. For a G, the caller must own the right to ready it
    /// (it took it off the list it waited on).
    pub fn wake(self) {
        match self {
            Waiter::G(g) => ready(g),
            Waiter::Thread(t) => {
                let thread = t.thread.clone();
                // No longer blocked as far as deadlock detection goes.
                drop(t);
                thread.unpark();
            }
        }
    }
}

/// Parks the calling G and releases `guard`'s mutex once the G is off its M,
/// so that whoever takes the mutex next and finds the G in a wait list can
/// `ready` it. The G must have stored itself where the waker looks while
/// holding the guard.
///
/// # Panics
///
/// A fatal error if not called on a G.
pub fn park_unlock<T: ?Sized>(reason: crate::g::WaitReason, guard: parking_lot::MutexGuard<'_, T>) {
    let mutex = parking_lot::MutexGuard::mutex(&guard);
    core::mem::forget(guard);
    crate::engine::park(reason, move || {
        // SAFETY: the guard for this mutex was forgotten above, so the mutex
        // is locked and this releases that lock exactly once. `mutex` lives
        // in data the parked G keeps alive; this is the last use of it.
        unsafe { mutex.force_unlock() };
        true
    });
}
