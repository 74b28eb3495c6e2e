//! `WaitGroup`: Go's `sync.WaitGroup`.
//!
//! The count and the waiters share one [`WaitQueue`] lock: `add` that
//! brings the count to zero takes every waiter off under that lock and wakes
//! them after it, so a `wait` that saw a non-zero count is always woken, and
//! a group can be reused at once (Go forbids reuse before `Wait` returns;
//! here there is no window to forbid). Rejected: Go's packed
//! counter-and-waiters word with a semaphore — faster for `add` under
//! contention, but it needs the reuse rule and its misuse checks, and
//! `wait_timeout` would have to undo a waiter count.

use crate::sync::deadline_after;
use scheduler::WaitReason;
use scheduler::sync_queue::{WaitOptions, WaitQueue, Woken};
use std::time::Duration;

/// Waits for a collection of Gs to finish, as Go's `sync.WaitGroup`:
/// [`add`](WaitGroup::add) the number of tasks, each calls
/// [`done`](WaitGroup::done), and [`wait`](WaitGroup::wait) returns when the
/// count reaches zero.
///
/// ```
/// use std::sync::Arc;
/// let wg = Arc::new(runtime::sync::WaitGroup::new());
/// for _ in 0..10 {
///     wg.add(1);
///     let wg = wg.clone();
///     runtime::go(move || wg.done());
/// }
/// wg.wait();
/// ```
#[derive(Debug, Default)]
pub struct WaitGroup {
    q: WaitQueue<i64>,
}

impl WaitGroup {
    /// A group with count zero.
    pub const fn new() -> WaitGroup {
        WaitGroup {
            q: WaitQueue::new(0),
        }
    }

    /// Adds `delta` (which may be negative) to the count. When it reaches
    /// zero every waiter is released.
    ///
    /// # Panics
    ///
    /// In the caller, leaving the count unchanged, if it would go negative
    /// (`sync: negative WaitGroup counter`, as in Go) or overflow.
    #[track_caller]
    pub fn add(&self, delta: i64) {
        let mut q = self.q.lock();
        let new = match q.checked_add(delta) {
            Some(n) if n >= 0 => n,
            Some(_) => {
                drop(q);
                panic!("sync: negative WaitGroup counter");
            }
            None => {
                drop(q);
                panic!("sync: WaitGroup counter overflow");
            }
        };
        *q = new;
        if new != 0 {
            return;
        }
        let waiters = q.pop_all(0);
        drop(q);
        for w in waiters {
            w.wake();
        }
    }

    /// Subtracts one from the count.
    ///
    /// # Panics
    ///
    /// As [`add`](WaitGroup::add), if the count is already zero.
    #[track_caller]
    pub fn done(&self) {
        self.add(-1);
    }

    /// The current count.
    pub fn count(&self) -> i64 {
        *self.q.lock()
    }

    /// Waits until the count is zero.
    pub fn wait(&self) {
        let q = self.q.lock();
        if *q == 0 {
            return;
        }
        q.wait(&WaitOptions::new(WaitReason::WaitGroup));
    }

    /// Waits until the count is zero or `timeout` passes; true if it
    /// reached zero.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let q = self.q.lock();
        if *q == 0 {
            return true;
        }
        let opts = WaitOptions {
            deadline: Some(deadline_after(timeout)),
            ..WaitOptions::new(WaitReason::WaitGroup)
        };
        q.wait(&opts) != Woken::TimedOut
    }
}
