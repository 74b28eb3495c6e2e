//! `Semaphore`: a weighted, FIFO-fair counting semaphore (Go's
//! `golang.org/x/sync/semaphore.Weighted`, with a guard).
//!
//! The free permits and the waiters share one [`WaitQueue`] lock. Each
//! waiter's ticket is the number of permits it asks for. Permits go to
//! waiters strictly in arrival order: a release hands out as many as fit to
//! the waiters at the front and stops at the first that does not fit, so a
//! large request is not starved by a stream of small ones (and a small one
//! waits behind a large one, as in Go). `try_acquire` does not jump the
//! queue either: it fails while anyone waits.
//!
//! A waiter handed its permits is popped with value 1 and returns owning
//! them. A waiter whose deadline passes leaves the queue; since it may have
//! been the one blocking the front, it then hands out what now fits.
//!
//! # Permit accounting
//!
//! Every permit is in exactly one place: free (`Count::free`), held by a
//! live [`SemaphorePermit`], or *forgotten* (`Count::forgotten`: taken out
//! of a guard by [`SemaphorePermit::forget`], owed back by
//! [`Semaphore::release`]). So `free + held + forgotten == capacity`
//! always. A guard's drop returns what it holds, which is always room that
//! exists; `release(n)` may return only forgotten permits and panics
//! otherwise — also when the permits are still held by a guard, which
//! would return them a second time (Go's `Weighted.Release` panics on
//! "released more than held" the same way).
//!
//! Rejected: building it on Go's runtime semaphore (one permit per
//! acquire: a request for `n` would take them one by one and two large
//! requests could deadlock each holding half).

use crate::sync::deadline_after;
use scheduler::WaitReason;
use scheduler::sync_queue::{QueueGuard, WaitOptions, WaitQueue, Woken};
use std::time::{Duration, Instant};

/// A counting semaphore of `capacity` permits whose waiters park (Gs) or
/// block (threads), served in FIFO order.
///
/// ```
/// use runtime::sync::Semaphore;
/// let sem = Semaphore::new(3);
/// let a = sem.acquire(2);
/// assert!(sem.try_acquire(2).is_none());
/// let b = sem.try_acquire(1).unwrap();
/// drop((a, b));
/// assert_eq!(sem.available(), 3);
/// ```
#[derive(Debug)]
pub struct Semaphore {
    capacity: u64,
    q: WaitQueue<Count>,
}

/// The semaphore's state behind the queue's lock (module docs).
#[derive(Debug)]
struct Count {
    free: u64,
    /// Permits out of a guard by `forget`, not yet released.
    forgotten: u64,
}

/// Permits held from a [`Semaphore`]; released on drop.
#[derive(Debug)]
#[must_use = "the permits are released as soon as the guard is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    n: u64,
}

impl Semaphore {
    /// A semaphore with `capacity` free permits.
    pub const fn new(capacity: u64) -> Semaphore {
        Semaphore {
            capacity,
            q: WaitQueue::new(Count {
                free: capacity,
                forgotten: 0,
            }),
        }
    }

    /// Total permits.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Free permits right now.
    pub fn available(&self) -> u64 {
        self.q.lock().free
    }

    /// Takes `n` permits, waiting (in FIFO order) until they are free.
    ///
    /// # Panics
    ///
    /// In the caller, if `n` exceeds the capacity: such a request could
    /// never be served and would wait forever.
    #[track_caller]
    pub fn acquire(&self, n: u64) -> SemaphorePermit<'_> {
        match self.acquire_inner(n, None) {
            Some(p) => p,
            None => scheduler::throw!("Semaphore::acquire: woken without permits"),
        }
    }

    /// Takes `n` permits if they are free and nobody waits before us.
    pub fn try_acquire(&self, n: u64) -> Option<SemaphorePermit<'_>> {
        let mut q = self.q.lock();
        if n <= q.free && q.is_empty() {
            q.free -= n;
            return Some(SemaphorePermit { sem: self, n });
        }
        None
    }

    /// As [`acquire`](Self::acquire), giving up after `timeout` (on the
    /// scheduler's timers from a G: no thread per wait).
    ///
    /// # Panics
    ///
    /// As [`acquire`](Self::acquire).
    #[track_caller]
    pub fn acquire_timeout(&self, n: u64, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.acquire_inner(n, Some(deadline_after(timeout)))
    }

    #[track_caller]
    fn acquire_inner(&self, n: u64, deadline: Option<Instant>) -> Option<SemaphorePermit<'_>> {
        if n > self.capacity {
            panic!(
                "Semaphore::acquire: {n} permits asked of a semaphore of {}",
                self.capacity
            );
        }
        if n == 0 {
            return Some(SemaphorePermit { sem: self, n });
        }
        let mut q = self.q.lock();
        if n <= q.free && q.is_empty() {
            q.free -= n;
            return Some(SemaphorePermit { sem: self, n });
        }
        let opts = WaitOptions {
            ticket: n,
            deadline,
            ..WaitOptions::new(WaitReason::Semacquire)
        };
        match q.wait(&opts) {
            Woken::By(_) => Some(SemaphorePermit { sem: self, n }),
            Woken::TimedOut => {
                // We may have blocked the front: serve who fits now.
                grant(self.q.lock());
                None
            }
        }
    }

    /// Returns `n` permits that were taken out of their guard with
    /// [`SemaphorePermit::forget`].
    ///
    /// # Panics
    ///
    /// In the caller, leaving the semaphore unchanged, if fewer than `n`
    /// permits are forgotten and not yet released: releasing permits a
    /// live guard still holds would let its drop return them a second time.
    #[track_caller]
    pub fn release(&self, n: u64) {
        let mut q = self.q.lock();
        if n > q.forgotten {
            let forgotten = q.forgotten;
            drop(q);
            panic!(
                "Semaphore::release: released more permits than were acquired \
                 ({n} released, {forgotten} forgotten and not yet released)"
            );
        }
        q.forgotten -= n;
        q.free += n;
        grant(q);
    }
}

/// Hands free permits to the waiters at the front, in order, while they
/// fit; wakes them after unlocking.
fn grant(mut q: QueueGuard<'_, Count>) {
    let mut woken = Vec::new();
    loop {
        let free = q.free;
        match q.pop_front_if(|n| n <= free, 1) {
            Some((n, w)) => {
                q.free -= n;
                woken.push(w);
            }
            None => break,
        }
    }
    drop(q);
    for w in woken {
        w.wake();
    }
}

impl SemaphorePermit<'_> {
    /// Permits held.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Keeps the permits taken: they are not released on drop (give them
    /// back with [`Semaphore::release`]). Returns how many.
    pub fn forget(self) -> u64 {
        let n = self.n;
        self.sem.q.lock().forgotten += n;
        core::mem::forget(self);
        n
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.n != 0 {
            let mut q = self.sem.q.lock();
            q.free += self.n;
            grant(q);
        }
    }
}
