//! `Condvar`: Go's `sync.Cond`, shaped like std's, for our `Mutex` guard.
//!
//! A condition variable is a [`WaitQueue`] of its own. `wait` links the
//! caller into it *before* unlocking the mutex, while still holding the
//! queue's lock, and parks with that lock released by the switch: a notify
//! that follows the unlock always finds the waiter, so none is lost
//! (Go reaches the same end with tickets, `notifyListAdd` before the unlock
//! and `notifyListWait` after; linking first needs no ticket arithmetic and
//! lets a timed-out waiter just leave the list). The mutex is relocked after
//! waking, outside the queue's lock.
//!
//! Lock order: the condition variable's queue, then the mutex's semaphore
//! (unlocking the mutex may wake a waiter of it). Nothing takes them the
//! other way round.
//!
//! Wake-ups may be spurious in principle (a woken waiter relocks a mutex
//! another may have taken first and changed the state), so test the
//! condition in a loop — [`wait_while`](Condvar::wait_while) does.

use crate::sync::deadline_after;
use crate::sync::mutex::MutexGuard;
use scheduler::WaitReason;
use scheduler::sync_queue::{WaitOptions, WaitQueue, Woken};
use std::time::{Duration, Instant};

/// A condition variable whose waiters park (Gs) or block (threads).
///
/// ```
/// use std::sync::Arc;
/// use runtime::sync::{Condvar, Mutex};
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p2 = pair.clone();
/// runtime::go(move || {
///     *p2.0.lock() = true;
///     p2.1.notify_one();
/// });
/// let (lock, cv) = &*pair;
/// let ready = cv.wait_while(lock.lock(), |ready| !*ready);
/// assert!(*ready);
/// ```
#[derive(Debug, Default)]
pub struct Condvar {
    q: WaitQueue<()>,
}

/// Whether a timed wait returned because its time ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended by timeout rather than by a notify.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A condition variable nobody waits on.
    pub const fn new() -> Condvar {
        Condvar {
            q: WaitQueue::new(()),
        }
    }

    /// Unlocks the guard's mutex, waits for a notify, and relocks it.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_inner(guard, None).0
    }

    /// Waits until `condition` is false, re-testing it after every wake-up
    /// with the mutex held.
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// As [`wait`](Self::wait), giving up after `timeout` (on the
    /// scheduler's timers from a G: no thread per wait).
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        self.wait_inner(guard, Some(deadline_after(timeout)))
    }

    /// As [`wait_while`](Self::wait_while), giving up after `timeout`; the
    /// result says whether it timed out with the condition still true.
    pub fn wait_timeout_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let deadline = deadline_after(timeout);
        while condition(&mut *guard) {
            if Instant::now() >= deadline {
                return (guard, WaitTimeoutResult(true));
            }
            guard = self.wait_inner(guard, Some(deadline)).0;
        }
        (guard, WaitTimeoutResult(false))
    }

    /// As [`wait`](Self::wait), giving up at `deadline` (parking_lot's
    /// `wait_until`, in std's by-value guard shape).
    pub fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        self.wait_inner(guard, Some(deadline))
    }

    fn wait_inner<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let mutex = guard.mutex();
        let opts = WaitOptions {
            deadline,
            ..WaitOptions::new(WaitReason::CondWait)
        };
        // Linked first, then the mutex is unlocked: see the module docs.
        let woken = self.q.lock().wait_then(&opts, move || drop(guard));
        (mutex.lock(), WaitTimeoutResult(woken == Woken::TimedOut))
    }

    /// Wakes one waiter, the one that has waited longest. Returns whether
    /// there was one (as parking_lot's).
    pub fn notify_one(&self) -> bool {
        if !self.q.has_waiters() {
            return false;
        }
        let w = self.q.lock().pop_front(0);
        match w {
            Some(w) => {
                w.wake();
                true
            }
            None => false,
        }
    }

    /// Wakes every waiter. Returns how many were woken (as parking_lot's).
    pub fn notify_all(&self) -> usize {
        if !self.q.has_waiters() {
            return 0;
        }
        let all = self.q.lock().pop_all(0);
        let n = all.len();
        for w in all {
            w.wake();
        }
        n
    }
}
