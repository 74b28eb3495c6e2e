//! Synchronisation that parks Gs, not threads.
//!
//! Every primitive works from a G (the G parks; its M runs other Gs) and
//! from a plain thread (the thread blocks), and both kinds of waiter can
//! wait on the same primitive at once. The designs are Go's; the API
//! shapes are std's (guards that unlock on drop).
//!
//! | type | Go | waits as (in a dump) |
//! |---|---|---|
//! | [`Mutex`] | `sync.Mutex` (spinning, starvation mode) | `sync.Mutex.Lock` |
//! | [`RwLock`] | `sync.RWMutex` (writer-preferring) | `sync.RWMutex.RLock` / `sync.RWMutex.Lock` |
//! | [`Condvar`] | `sync.Cond` | `sync.Cond.Wait` |
//! | [`WaitGroup`] | `sync.WaitGroup` | `sync.WaitGroup.Wait` |
//! | [`Once`] | `sync.Once` | `sync.Mutex.Lock` |
//! | [`Semaphore`] | `x/sync/semaphore.Weighted` | `semacquire` |
//! | [`Barrier`] | std's `Barrier` (Go: a `sync.Cond` over a count) | `sync.Cond.Wait` |
//! | [`OnceLock`], [`LazyLock`] | std's (Go: `sync.OnceValue`) | `sync.Mutex.Lock` |
//!
//! Timed waits ([`Mutex::try_lock_for`], [`Condvar::wait_timeout`],
//! [`Semaphore::acquire_timeout`], [`WaitGroup::wait_timeout`]) use the
//! scheduler's per-P timers from a G and `park_timeout` from a thread: no
//! thread per timer. A G in a timed wait is never reported as deadlocked
//! (its timer will run it).
//!
//! Files, one primitive each: [`mutex`](Mutex), `rwlock`, `condvar`,
//! `waitgroup`, `once`, `once_lock`, `semaphore`, `barrier`. The unsafe building blocks are in the
//! scheduler crate: `scheduler::sync_queue` (wait queues: park or block, with
//! deadlines), `scheduler::sema` (Go's runtime semaphore),
//! `scheduler::cell` (the data a lock guards, borrow-checked).
//!
//! Guards can be narrowed to a part of the data, holding the lock
//! ([`MutexGuard::map`], [`RwLockReadGuard::map`], [`RwLockWriteGuard::map`],
//! as parking_lot's), and a write guard can become a read guard without
//! letting a writer in ([`RwLockWriteGuard::downgrade`]).
//!
//! None of the locks is poisoned by a panic (Go has no poisoning); see
//! [`Mutex`].

mod barrier;
mod condvar;
mod mutex;
mod once;
mod once_lock;
mod rwlock;
mod semaphore;
mod waitgroup;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{MappedMutexGuard, Mutex, MutexGuard};
pub use once::{Once, OnceState};
pub use once_lock::{LazyLock, OnceLock};
pub use rwlock::{
    MappedRwLockReadGuard, MappedRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use waitgroup::WaitGroup;

use std::time::{Duration, Instant};

/// `now + timeout`, saturating far in the future for huge timeouts.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
