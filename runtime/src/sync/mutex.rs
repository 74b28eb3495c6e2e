//! `Mutex<T>`: Go's `sync.Mutex` with a std-shaped guard.
//!
//! The lock is one `i32` state word and a [`Sema`] to sleep on (Go's
//! `sync/mutex.go` design). The word and the data sit in a [`LockCell`],
//! which owns bit 0 (`LOCKED`): every change of the word goes through the
//! cell, which hands out the guard when a change sets `LOCKED` and refuses
//! any change but the guard's drop that clears it — so this file needs no
//! `unsafe`, and the check is the protocol's own CAS.
//!
//! # The state word
//!
//! | bits | name | meaning |
//! |---|---|---|
//! | 0 | `LOCKED` | someone owns the mutex |
//! | 1 | `WOKEN` | a waiter was woken (or a spinner will take over): unlock need not wake another |
//! | 2 | `STARVING` | starvation mode: unlock hands ownership to the first waiter |
//! | 3.. | waiters | waiters asleep on the semaphore or about to sleep on it |
//!
//! | state | what it means | who leaves it |
//! |---|---|---|
//! | `0` | free, nobody waits | `lock`: one CAS to `LOCKED` (the fast path) |
//! | `LOCKED` | held, nobody waits | `unlock`: one subtract back to `0` |
//! | `LOCKED + n<<3` | held, `n` waiters | `unlock` clears `LOCKED`, then takes `WOKEN` and releases one permit |
//! | `WOKEN + n<<3` | free; a woken waiter (or spinner) is on its way | that waiter: CAS to `LOCKED`, clearing `WOKEN`; a newcomer may barge in first |
//! | `STARVING + LOCKED + n<<3` | held in starvation mode | `unlock` releases a permit without touching the waiter count |
//! | `STARVING + n<<3` | handed off: the first waiter owns it | that waiter adds `LOCKED - 1<<3`, and clears `STARVING` if it is the last waiter or waited < 1 ms |
//!
//! # Normal and starvation mode (Go's words)
//!
//! In normal mode waiters queue FIFO on the semaphore, but a woken waiter
//! does not own the mutex: it competes with newcomers, which are already
//! running and usually win. That keeps throughput high (no hand-off, no
//! context switch per unlock) but can starve a waiter. A waiter that fails
//! to get the mutex for more than 1 ms switches it to starvation mode:
//! unlock then hands ownership straight to the waiter at the front,
//! newcomers queue at the back without trying, and no waiter waits behind
//! more than the waiters before it. The mode ends when the waiter that got
//! the mutex is the last one, or waited less than 1 ms.
//!
//! A waiter that is woken but loses the race queues again at the *front*
//! (`lifo`), so the oldest waiter is the next woken.
//!
//! Spinning: before sleeping, a locker spins a few rounds (Go's policy,
//! [`scheduler::sema::can_spin`]) if the mutex is held in normal mode, and
//! sets `WOKEN` so the unlocker does not wake a sleeper needlessly.
//!
//! # No poisoning
//!
//! As in Go, a panic while holding the lock just unlocks it (the guard's
//! drop runs during unwinding); the next `lock` returns the data as left.
//! std's `Mutex` poisons instead, which makes every `lock()` return a
//! `Result`; Go code, which this runtime models, has no such notion, and a
//! G whose panic matters is observed through its `JoinHandle`.

use crate::sync::deadline_after;
use scheduler::WaitReason;
use scheduler::cell::{LOCKED, LockCell, LockGuard, Unlocked};
use scheduler::clock::nanotime;
use scheduler::sema::{Sema, can_spin, do_spin};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const WOKEN: i32 = 2;
const STARVING: i32 = 4;
const WAITER_SHIFT: u32 = 3;
const WAITER: i32 = 1 << WAITER_SHIFT;
/// Go's `starvationThresholdNs`.
const STARVATION_NS: u64 = 1_000_000;

/// A mutual-exclusion lock whose waiters park (Gs) or block (plain
/// threads), modelled on Go's `sync.Mutex`: one CAS when uncontended, a
/// brief spin, then a FIFO queue; a waiter kept out for over 1 ms switches
/// the mutex to starvation mode, where ownership is handed to waiters in
/// order (see the module docs for the state word).
///
/// Not poisoned by a panic (see the module docs).
///
/// ```
/// use std::sync::Arc;
/// use runtime::sync::Mutex;
/// let m = Arc::new(Mutex::new(0u64));
/// let hs: Vec<_> = (0..10)
///     .map(|_| {
///         let m = m.clone();
///         runtime::go(move || *m.lock() += 1)
///     })
///     .collect();
/// for h in hs {
///     h.join().unwrap();
/// }
/// assert_eq!(*m.lock(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    sema: Sema,
    /// The state word (bit 0, `LOCKED`, owned by the cell) and the data.
    cell: LockCell<T>,
}

/// Holds a [`Mutex`] locked; derefs to the data; unlocks on drop.
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    inner: LockGuard<'a, T, Mutex<T>>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            sema: Sema::new(0),
            cell: LockCell::new(value),
        }
    }

    /// The data, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.cell.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the calling G (or blocking the calling thread) until
    /// the mutex is free. Locking a mutex the caller already holds waits
    /// forever (the deadlock detector reports it if nothing else can run).
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if let Ok(Some(inner)) = self.cas(0, LOCKED) {
            return MutexGuard { inner };
        }
        match self.lock_slow(None) {
            Some(g) => g,
            None => scheduler::throw!("sync: mutex wait without deadline gave up"),
        }
    }

    /// Locks if the mutex is free right now (and not being handed to a
    /// waiter).
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let old = self.cell.load(Ordering::Relaxed);
        if old & (LOCKED | STARVING) != 0 {
            return None;
        }
        match self.cas(old, old | LOCKED) {
            Ok(Some(inner)) => Some(MutexGuard { inner }),
            _ => None,
        }
    }

    /// Locks, waiting at most `timeout` (on the scheduler's timers from a
    /// G, no thread per wait). `None` if it timed out.
    pub fn try_lock_for(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        self.try_lock_until(deadline_after(timeout))
    }

    /// Locks, waiting until `deadline` at most.
    pub fn try_lock_until(&self, deadline: Instant) -> Option<MutexGuard<'_, T>> {
        if let Ok(Some(inner)) = self.cas(0, LOCKED) {
            return Some(MutexGuard { inner });
        }
        self.lock_slow(Some(deadline))
    }

    /// The data, through exclusive access (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.cell.get_mut()
    }

    /// A CAS on the state word; `Ok(Some(guard))` if it took the lock.
    #[inline]
    #[allow(clippy::type_complexity)] // the cell's own result type
    fn cas(&self, old: i32, new: i32) -> Result<Option<LockGuard<'_, T, Mutex<T>>>, i32> {
        self.cell
            .compare_exchange(old, new, Ordering::Acquire, Ordering::Relaxed, self)
    }

    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>) -> Option<MutexGuard<'_, T>> {
        let mut wait_start = 0u64;
        let mut starving = false;
        let mut awoke = false;
        let mut iter = 0u32;
        let mut old = self.cell.load(Ordering::Relaxed);
        loop {
            // Spin only in normal mode while held: in starvation mode the
            // mutex goes to a waiter, not to us.
            if old & (LOCKED | STARVING) == LOCKED && can_spin(iter) {
                // Tell unlock not to wake a sleeper: we are awake already.
                if !awoke
                    && old & WOKEN == 0
                    && old >> WAITER_SHIFT != 0
                    && self.cas(old, old | WOKEN).is_ok()
                {
                    awoke = true;
                }
                do_spin();
                iter += 1;
                old = self.cell.load(Ordering::Relaxed);
                continue;
            }
            let mut new = old;
            // Newcomers do not take a starving mutex: they queue.
            if old & STARVING == 0 {
                new |= LOCKED;
            }
            if old & (LOCKED | STARVING) != 0 {
                new += WAITER;
            }
            // Switch to starvation mode, but only while held: unlock
            // expects a starving mutex to have waiters.
            if starving && old & LOCKED != 0 {
                new |= STARVING;
            }
            if awoke {
                if new & WOKEN == 0 {
                    scheduler::throw!("sync: inconsistent mutex state");
                }
                new &= !WOKEN;
            }
            match self.cas(old, new) {
                Err(cur) => {
                    old = cur;
                    continue;
                }
                // Free and not starving: the CAS took it.
                Ok(Some(inner)) => return Some(MutexGuard { inner }),
                // We are counted as a waiter: sleep.
                Ok(None) => {}
            }
            // A waiter that already waited goes to the front.
            let lifo = wait_start != 0;
            if wait_start == 0 {
                wait_start = nanotime();
            }
            if !self.sema.acquire(WaitReason::MutexLock, lifo, deadline) {
                if self.give_up() {
                    return None;
                }
                // Our wait timed out but a permit is on its way to us (see
                // `give_up`): take it and carry on as a woken waiter.
                self.sema.acquire(WaitReason::MutexLock, true, None);
            }
            starving = starving || nanotime().saturating_sub(wait_start) > STARVATION_NS;
            old = self.cell.load(Ordering::Relaxed);
            if old & STARVING != 0 {
                // Handed off to us: LOCKED is clear and we still count as a
                // waiter. Fix both.
                if old & (LOCKED | WOKEN) != 0 || old >> WAITER_SHIFT == 0 {
                    scheduler::throw!("sync: inconsistent mutex state");
                }
                let mut delta = LOCKED - WAITER;
                if !starving || old >> WAITER_SHIFT == 1 {
                    // Leave starvation mode: it is slow enough that two Gs
                    // could otherwise hand the mutex back and forth forever.
                    delta -= STARVING;
                }
                let inner = self.cell.add_acquire(delta, self);
                return Some(MutexGuard { inner });
            }
            awoke = true;
            iter = 0;
        }
    }

    /// A waiter's deadline passed before it got a permit: leave the waiter
    /// count if no permit is in flight with our name on it. Returns false
    /// when one is: the caller must take it and go on as a woken waiter.
    ///
    /// Why that can happen: normal-mode unlock decrements the waiter count
    /// *before* releasing its permit, and a starving unlock releases a
    /// permit for a waiter still counted. A permit in flight for which
    /// nobody is left to queue would wedge the protocol (a later waiter
    /// would take it as a hand-off). We may leave when, without us, waiters
    /// remain for every permit in flight: in normal mode the count `W >= 1`
    /// (we are counted, so nobody took our slot); while a starving hand-off
    /// is pending (`STARVING`, not `LOCKED`) `W >= 2`.
    fn give_up(&self) -> bool {
        let mut old = self.cell.load(Ordering::Relaxed);
        loop {
            let waiters = old >> WAITER_SHIFT;
            let handoff_pending = old & (STARVING | LOCKED) == STARVING;
            if waiters == 0 || (handoff_pending && waiters == 1) {
                return false;
            }
            match self.cas(old, old - WAITER) {
                Ok(_) => return true,
                Err(cur) => old = cur,
            }
        }
    }

    /// The unlock slow path: `new` is the word after clearing `LOCKED`.
    #[cold]
    fn unlock_slow(&self, new: i32) {
        if (new + LOCKED) & LOCKED == 0 {
            scheduler::throw!("sync: unlock of unlocked mutex");
        }
        if new & STARVING != 0 {
            // Hand ownership to the first waiter; LOCKED stays clear until
            // it sets it, but STARVING keeps newcomers out meanwhile.
            self.sema.release(1);
            return;
        }
        let mut old = new;
        loop {
            // Nobody to wake, or a woken waiter / spinner / new owner will
            // see to it; or starvation began: not our hand-off to make.
            if old >> WAITER_SHIFT == 0 || old & (LOCKED | WOKEN | STARVING) != 0 {
                return;
            }
            // Take the right to wake one.
            match self.cas(old, (old - WAITER) | WOKEN) {
                Ok(_) => {
                    self.sema.release(1);
                    return;
                }
                Err(cur) => old = cur,
            }
        }
    }
}

impl<T: ?Sized> Unlocked for Mutex<T> {
    #[inline]
    fn unlocked(&self, new: i32) {
        self.unlock_slow(new);
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard holds (for `Condvar`, which unlocks and
    /// relocks it).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.inner.lock()
    }
}

impl<'a, T> MutexGuard<'a, T> {
    /// A guard of the part of the data `f` returns, holding the mutex
    /// until it drops (parking_lot's `MutexGuard::map`; std's is unstable).
    /// If `f` panics, the mutex is unlocked as the panic unwinds.
    ///
    /// ```
    /// use runtime::sync::{Mutex, MutexGuard};
    /// let m = Mutex::new((1, String::from("a")));
    /// let mut s = MutexGuard::map(m.lock(), |pair| &mut pair.1);
    /// s.push('b');
    /// assert!(m.try_lock().is_none(), "still held");
    /// drop(s);
    /// assert_eq!(m.lock().1, "ab");
    /// ```
    pub fn map<U: ?Sized>(this: Self, f: impl FnOnce(&mut T) -> &mut U) -> MappedMutexGuard<'a, U> {
        MappedMutexGuard {
            inner: LockGuard::erase(LockGuard::map(this.inner, f)),
        }
    }

    /// As [`map`](Self::map) if `f` returns a part; otherwise gives the
    /// guard back.
    pub fn try_map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<MappedMutexGuard<'a, U>, Self> {
        match LockGuard::try_map(this.inner, f) {
            Ok(g) => Ok(MappedMutexGuard {
                inner: LockGuard::erase(g),
            }),
            Err(inner) => Err(MutexGuard { inner }),
        }
    }
}

/// A [`MutexGuard`] narrowed by [`MutexGuard::map`] to a part of the data;
/// unlocks the mutex on drop. It cannot be used with a [`Condvar`]
/// (as std's and parking_lot's).
///
/// [`Condvar`]: crate::sync::Condvar
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct MappedMutexGuard<'a, T: ?Sized> {
    inner: LockGuard<'a, T, dyn Unlocked + 'a>,
}

impl<'a, T: ?Sized> MappedMutexGuard<'a, T> {
    /// Narrows further (see [`MutexGuard::map`]).
    pub fn map<U: ?Sized>(this: Self, f: impl FnOnce(&mut T) -> &mut U) -> MappedMutexGuard<'a, U> {
        MappedMutexGuard {
            inner: LockGuard::map(this.inner, f),
        }
    }
}

impl<T: ?Sized> core::ops::Deref for MappedMutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> core::ops::DerefMut for MappedMutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized + core::fmt::Debug> core::fmt::Debug for MappedMutexGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized> core::ops::Deref for MutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> core::ops::DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized + core::fmt::Debug> core::fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + core::fmt::Debug> core::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("state", &self.cell.load(Ordering::Relaxed)),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}
