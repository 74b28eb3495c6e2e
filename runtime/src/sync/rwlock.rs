//! `RwLock<T>`: Go's `sync.RWMutex`, writer-preferring, with std-shaped
//! guards.
//!
//! Any number of readers or one writer. A writer that asks for the lock
//! blocks new readers at once, then waits for the readers already inside to
//! leave: a stream of readers cannot starve a writer. Writers exclude each
//! other with a [`Mutex`] (so they inherit its fairness, starvation mode
//! included).
//!
//! # Counters (Go's `rwmutex.go` design)
//!
//! | field | meaning |
//! |---|---|
//! | `reader_count` | readers inside or waiting; minus `MAX_READERS` while a writer is pending or inside |
//! | `reader_wait` | readers a pending writer still waits for to leave |
//! | `writer_sem` | the pending writer sleeps here until the last of those readers leaves |
//! | `reader_sem` | readers that came after a writer sleep here until it unlocks |
//!
//! - `read`: `reader_count += 1`; a negative result means a writer is
//!   pending, so sleep on `reader_sem`.
//! - `read` unlock: `reader_count -= 1`; if negative, a writer waits for us:
//!   `reader_wait -= 1`, and the last one releases `writer_sem`.
//! - `write`: take the writer mutex; `reader_count -= MAX_READERS`, which
//!   turns new readers away and tells us how many `r` are inside; if
//!   `r != 0`, `reader_wait += r`, and sleep on `writer_sem` unless they all
//!   left already.
//! - `write` unlock: `reader_count += MAX_READERS`, which tells how many
//!   readers queued meanwhile; release `reader_sem` that many times; unlock
//!   the writer mutex.
//!
//! The data sits in an [`RwCell`], which checks the borrows itself (no
//! `unsafe` here). Not poisoned by a panic, as [`Mutex`](crate::sync::Mutex).

use crate::sync::mutex::{Mutex, MutexGuard};
use scheduler::WaitReason;
use scheduler::cell::{RwCell, RwCellMut, RwCellRef, Unlock, UnlockShared};
use scheduler::sema::Sema;
use std::sync::atomic::{AtomicI32, Ordering};

/// Most readers at once (Go's `rwmutexMaxReaders`).
const MAX_READERS: i32 = 1 << 30;

/// The lock without the data.
#[derive(Debug)]
struct RawRwLock {
    w: Mutex<()>,
    writer_sem: Sema,
    reader_sem: Sema,
    reader_count: AtomicI32,
    reader_wait: AtomicI32,
}

impl RawRwLock {
    const fn new() -> RawRwLock {
        RawRwLock {
            w: Mutex::new(()),
            writer_sem: Sema::new(0),
            reader_sem: Sema::new(0),
            reader_count: AtomicI32::new(0),
            reader_wait: AtomicI32::new(0),
        }
    }

    #[inline]
    fn read(&self) {
        let r = self.reader_count.fetch_add(1, Ordering::Acquire) + 1;
        if r >= MAX_READERS {
            scheduler::throw!("sync: too many readers of an RwLock");
        }
        if r < 0 {
            // A writer is pending: wait for its unlock, which counted us.
            self.reader_sem.acquire(WaitReason::RwLockRead, false, None);
        }
    }

    #[inline]
    fn try_read(&self) -> bool {
        let mut c = self.reader_count.load(Ordering::Relaxed);
        loop {
            if c < 0 || c + 1 >= MAX_READERS {
                return false;
            }
            match self
                .reader_count
                .compare_exchange(c, c + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(cur) => c = cur,
            }
        }
    }

    #[inline]
    fn read_unlock(&self) {
        let r = self.reader_count.fetch_sub(1, Ordering::Release) - 1;
        if r < 0 {
            self.read_unlock_slow(r);
        }
    }

    #[cold]
    fn read_unlock_slow(&self, r: i32) {
        if r + 1 == 0 || r + 1 == -MAX_READERS {
            scheduler::throw!("sync: read unlock of unlocked RwLock");
        }
        // A writer is pending; the last reader it waits for wakes it.
        if self.reader_wait.fetch_sub(1, Ordering::AcqRel) - 1 == 0 {
            self.writer_sem.release(1);
        }
    }

    /// Takes the writer mutex (returned: the write guard keeps it) and
    /// waits for the readers inside.
    fn write(&self) -> MutexGuard<'_, ()> {
        let w = self.w.lock();
        // Announce the writer to readers.
        let r = self.reader_count.fetch_sub(MAX_READERS, Ordering::Acquire);
        // Wait for the readers inside to leave.
        if r != 0 && self.reader_wait.fetch_add(r, Ordering::AcqRel) + r != 0 {
            self.writer_sem
                .acquire(WaitReason::RwLockWrite, false, None);
        }
        w
    }

    fn try_write(&self) -> Option<MutexGuard<'_, ()>> {
        let w = self.w.try_lock()?;
        self.reader_count
            .compare_exchange(0, -MAX_READERS, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| w)
    }

    /// Turns the writer's hold into a reader's: counts the writer as a
    /// reader and lets in the readers that queued meanwhile, in one add
    /// (no writer can come in between: the caller still holds the writer
    /// mutex, and unlocks it right after).
    fn downgrade(&self) {
        let r = self
            .reader_count
            .fetch_add(MAX_READERS + 1, Ordering::Release)
            + MAX_READERS;
        if r >= MAX_READERS {
            scheduler::throw!("sync: downgrade of unlocked RwLock");
        }
        // `r` readers queued behind us; we are the `+ 1`.
        if r > 0 {
            self.reader_sem.release(r as u32);
        }
    }

    /// Lets readers in again; the writer mutex is unlocked right after by
    /// the write guard's second field.
    fn write_unlock(&self) {
        // Announce to readers there is no active writer.
        let r = self.reader_count.fetch_add(MAX_READERS, Ordering::Release) + MAX_READERS;
        if r >= MAX_READERS {
            scheduler::throw!("sync: unlock of unlocked RwLock");
        }
        // Let in the readers that queued while we held it.
        if r > 0 {
            self.reader_sem.release(r as u32);
        }
    }
}

impl Unlock for RawRwLock {
    #[inline]
    fn unlock(&self) {
        self.write_unlock();
    }
}

impl UnlockShared for RawRwLock {
    #[inline]
    fn unlock_shared(&self) {
        self.read_unlock();
    }
}

/// A reader-writer lock whose waiters park (Gs) or block (threads),
/// modelled on Go's `sync.RWMutex`: writer-preferring — once a writer
/// waits, new readers wait behind it.
///
/// A reader must not take the read lock again while a writer may be
/// waiting (the second `read` waits for the writer, which waits for the
/// first): the same rule as Go's, and a deadlock the detector reports.
///
/// ```
/// use runtime::sync::RwLock;
/// let lock = RwLock::new(vec![1, 2]);
/// {
///     let a = lock.read();
///     let b = lock.read();
///     assert_eq!(a.len() + b.len(), 4);
/// }
/// lock.write().push(3);
/// assert_eq!(*lock.read(), [1, 2, 3]);
/// ```
pub struct RwLock<T: ?Sized> {
    raw: RawRwLock,
    data: RwCell<T>,
}

/// A shared hold of an [`RwLock`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized>(RwCellRef<'a, T, RawRwLock>);

/// The exclusive hold of an [`RwLock`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    /// Dropped first: releases the data, then lets readers in.
    data: RwCellMut<'a, T, RawRwLock>,
    /// Dropped second: the writer mutex, as Go's `Unlock` ends.
    _w: MutexGuard<'a, ()>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            raw: RawRwLock::new(),
            data: RwCell::new(value),
        }
    }

    /// The data, consuming the lock.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Takes a shared hold, waiting while a writer holds or waits for the
    /// lock.
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.raw.read();
        RwLockReadGuard(self.data.borrow(&self.raw))
    }

    /// Takes a shared hold if no writer holds or waits for the lock.
    #[inline]
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.raw
            .try_read()
            .then(|| RwLockReadGuard(self.data.borrow(&self.raw)))
    }

    /// Takes the exclusive hold, waiting for other writers and for the
    /// readers inside.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        let _w = self.raw.write();
        RwLockWriteGuard {
            data: self.data.borrow_mut(&self.raw),
            _w,
        }
    }

    /// Takes the exclusive hold if nobody holds the lock.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let _w = self.raw.try_write()?;
        Some(RwLockWriteGuard {
            data: self.data.borrow_mut(&self.raw),
            _w,
        })
    }

    /// The data, through exclusive access (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    /// A guard of the part of the data `f` returns, holding the read lock
    /// until it drops (parking_lot's `map`). If `f` panics, the lock is
    /// released as the panic unwinds.
    pub fn map<U: ?Sized>(this: Self, f: impl FnOnce(&T) -> &U) -> MappedRwLockReadGuard<'a, U> {
        MappedRwLockReadGuard(this.0.map(f))
    }
}

impl<'a, T: ?Sized> MappedRwLockReadGuard<'a, T> {
    /// Narrows further (see [`RwLockReadGuard::map`]).
    pub fn map<U: ?Sized>(this: Self, f: impl FnOnce(&T) -> &U) -> MappedRwLockReadGuard<'a, U> {
        MappedRwLockReadGuard(this.0.map(f))
    }
}

impl<'a, T: ?Sized> MappedRwLockWriteGuard<'a, T> {
    /// Narrows further (see [`RwLockWriteGuard::map`]).
    pub fn map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&mut T) -> &mut U,
    ) -> MappedRwLockWriteGuard<'a, U> {
        let MappedRwLockWriteGuard { data, _w } = this;
        MappedRwLockWriteGuard {
            data: data.map(f),
            _w,
        }
    }
}

/// A shared hold of an [`RwLock`], narrowed by [`RwLockReadGuard::map`]
/// to a part of the data.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MappedRwLockReadGuard<'a, T: ?Sized>(RwCellRef<'a, T, RawRwLock>);

/// The exclusive hold of an [`RwLock`], narrowed by
/// [`RwLockWriteGuard::map`] to a part of the data. It cannot be
/// downgraded.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MappedRwLockWriteGuard<'a, T: ?Sized> {
    /// Dropped first, as in [`RwLockWriteGuard`].
    data: RwCellMut<'a, T, RawRwLock>,
    _w: MutexGuard<'a, ()>,
}

impl<T: ?Sized> core::ops::Deref for MappedRwLockReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized> core::ops::Deref for MappedRwLockWriteGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: ?Sized> core::ops::DerefMut for MappedRwLockWriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

impl<T: ?Sized + core::fmt::Debug> core::fmt::Debug for MappedRwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + core::fmt::Debug> core::fmt::Debug for MappedRwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// A guard of the part of the data `f` returns, holding the write lock
    /// until it drops (parking_lot's `map`). If `f` panics, the lock is
    /// released as the panic unwinds.
    ///
    /// ```
    /// use runtime::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
    /// let lock = RwLock::new(vec![String::from("a"), String::from("b")]);
    /// RwLockWriteGuard::map(lock.write(), |v| &mut v[1]).push('!');
    /// let first = RwLockReadGuard::map(lock.read(), |v| v[0].as_str());
    /// assert_eq!(&*first, "a");
    /// drop(first);
    /// assert_eq!(lock.read()[1], "b!");
    /// ```
    pub fn map<U: ?Sized>(
        this: Self,
        f: impl FnOnce(&mut T) -> &mut U,
    ) -> MappedRwLockWriteGuard<'a, U> {
        let RwLockWriteGuard { data, _w } = this;
        MappedRwLockWriteGuard {
            data: data.map(f),
            _w,
        }
    }

    /// Turns the exclusive hold into a shared one without letting a writer
    /// in between (parking_lot's `downgrade`; Go's `RWMutex` has none):
    /// readers that waited behind this writer come in at once, and a writer
    /// waiting now waits for this reader too.
    pub fn downgrade(this: RwLockWriteGuard<'a, T>) -> RwLockReadGuard<'a, T> {
        let RwLockWriteGuard { data, _w } = this;
        let raw = data.lock();
        let shared = data.downgrade();
        raw.downgrade();
        drop(_w);
        RwLockReadGuard(shared)
    }
}

impl<T: ?Sized> core::ops::Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized> core::ops::Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.data
    }
}

impl<T: ?Sized> core::ops::DerefMut for RwLockWriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.data
    }
}

impl<T: ?Sized + core::fmt::Debug> core::fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + core::fmt::Debug> core::fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + core::fmt::Debug> core::fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}
