//! The channel lock: a test-and-test-and-set spin lock with back-off.
//!
//! A channel's critical sections are a few dozen instructions (move a value
//! or a sudog pointer) and never contain a park or a sleep, so waiting for
//! the lock means waiting for a few dozen instructions: spinning, then
//! yielding the thread (`crossbeam_utils::Backoff::snooze`) in case the
//! holder's thread was preempted, is enough. Unlock is a plain release
//! store — no atomic read-modify-write — which is what makes it cheaper
//! than `parking_lot::RawMutex` on the ping-pong path (two unlocks per
//! operation pair saved a locked instruction each). crossbeam-channel's
//! own channels use the same kind of lock for the same reason.
//!
//! The release store is also the *last* access a parked waiter's commit
//! makes to the lock (see `sudog::unlock_all`): nothing is read after it.
//!
//! Rejected: `parking_lot::RawMutex` (its unlock is a compare-and-swap, and
//! its parking slow path is never needed for sections this short); a
//! ticket lock (fair, but every waiter spins on the same line and a
//! preempted waiter stalls everyone behind it).

use crate::lock_rank::{self, Rank};
use core::sync::atomic::{AtomicBool, Ordering};
use crossbeam_utils::Backoff;

/// A spin lock for a channel's state.
#[derive(Debug, Default)]
pub(crate) struct ChanLock {
    locked: AtomicBool,
}

impl ChanLock {
    pub(crate) const fn new() -> ChanLock {
        ChanLock {
            locked: AtomicBool::new(false),
        }
    }

    /// Takes the lock (rank `Chan`, several in increasing address order;
    /// see [`crate::lock_rank`]).
    #[inline]
    pub(crate) fn lock(&self) {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        lock_rank::acquired(Rank::Chan, self as *const ChanLock as usize);
    }

    #[cold]
    fn lock_contended(&self) {
        let backoff = Backoff::new();
        loop {
            while self.locked.load(Ordering::Relaxed) {
                backoff.snooze();
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The caller holds the lock (took it with [`ChanLock::lock`], directly
    /// or on behalf of the wait it commits).
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        lock_rank::released(self as *const ChanLock as usize);
        self.locked.store(false, Ordering::Release);
    }
}
