//! Cells that hand out the data a lock guards, with the borrow checked.
//!
//! `runtime::sync::Mutex<T>` and `RwLock<T>` must give out `&mut T` from a
//! `&self`, which takes `unsafe` — and the runtime crate has none. The lock
//! protocols (Go's state words) live in the runtime, in safe code; the
//! data lives here, in a cell that is sound on its own whatever the
//! protocol around it does: a second exclusive borrow is impossible or a
//! fatal error (`cell: ... (lock protocol bug)`), never undefined
//! behaviour.
//!
//! - [`LockCell`] (for the mutex) owns the mutex's **state word** and bit 0
//!   of it, `LOCKED`. The protocol changes the word only through the cell:
//!   a transition that sets `LOCKED` returns the guard, a transition that
//!   would clear it is refused (a fatal error, before any change), and only
//!   the guard's drop clears it. So exactly one guard exists while `LOCKED`
//!   is set, and the check costs nothing: it is the protocol's own CAS.
//! - [`RwCell`] (for the reader-writer lock, whose protocol has no single
//!   bit that says "inside") counts its borrows in an atomic of its own:
//!   one extra atomic add per read lock, one exchange per write lock.
//!
//! Rejected: `lock_api`'s `unsafe trait RawMutex` implemented by the
//! runtime (needs `unsafe impl` in the runtime crate); moving the lock
//! protocols into this crate (the runtime's `sync` would be a shell, and the
//! protocols would sit far from their users and docs); a separate borrow
//! flag for the mutex too (measured: a third locked instruction per
//! lock/unlock pair, ~50% on the uncontended path).
//!
//! The guards release the borrow and *then* call the lock's unlock hook
//! ([`Unlocked`], [`Unlock`], [`UnlockShared`]), so the next owner never
//! finds the borrow still held.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// What a write guard of an [`RwCell`] calls after releasing its borrow.
pub trait Unlock {
    /// Releases the lock (exclusive side).
    fn unlock(&self);
}

/// What a shared guard calls after releasing its borrow.
pub trait UnlockShared {
    /// Releases one shared hold of the lock.
    fn unlock_shared(&self);
}

/// Exclusive borrow marker in [`RwCell`]'s counter.
const EXCLUSIVE: usize = 1 << (usize::BITS - 1);

/// Bit 0 of a [`LockCell`]'s word: the lock is held (by the one guard).
pub const LOCKED: i32 = 1;

/// What a [`LockGuard`] calls after clearing `LOCKED`: the lock's slow
/// unlock path, with the word's new value (called only if it is not 0).
pub trait Unlocked {
    /// The guard dropped and left the word at `new` (not 0).
    fn unlocked(&self, new: i32);
}

/// A mutex's state word and the data it guards. See the module docs.
pub struct LockCell<T: ?Sized> {
    state: AtomicI32,
    value: UnsafeCell<T>,
}

// SAFETY: `&mut T` exists only in the one guard that `LOCKED` stands for,
// so sharing the cell moves `T` between threads, like a mutex: `T: Send`.
unsafe impl<T: ?Sized + Send> Sync for LockCell<T> {}
// SAFETY: owning the cell owns the `T`.
unsafe impl<T: ?Sized + Send> Send for LockCell<T> {}

impl<T> LockCell<T> {
    /// An unlocked cell (word 0) holding `value`.
    pub const fn new(value: T) -> LockCell<T> {
        LockCell {
            state: AtomicI32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> LockCell<T> {
    /// The state word.
    #[inline]
    pub fn load(&self, order: Ordering) -> i32 {
        self.state.load(order)
    }

    /// Compare-and-swap on the state word. On success returns the guard if
    /// the swap set `LOCKED` (the caller is the new owner; `lock` is the
    /// hook its drop calls). A swap that would clear `LOCKED` is a fatal
    /// error: only the guard unlocks.
    #[inline]
    pub fn compare_exchange<'a, L: Unlocked + ?Sized>(
        &'a self,
        old: i32,
        new: i32,
        success: Ordering,
        failure: Ordering,
        lock: &'a L,
    ) -> Result<Option<LockGuard<'a, T, L>>, i32> {
        if old & LOCKED != 0 && new & LOCKED == 0 {
            crate::throw!("cell: state change would unlock a held lock (lock protocol bug)");
        }
        self.state.compare_exchange(old, new, success, failure)?;
        // `then`, not `then_some`: a guard built and dropped would unlock.
        Ok((old & LOCKED == 0 && new & LOCKED != 0).then(|| self.guard(lock)))
    }

    /// Adds `delta` to a word whose `LOCKED` bit must be clear and become
    /// set — a lock handed over by adding (Go's starvation hand-off adds
    /// `LOCKED - waiter`) — and returns the guard. A clear `LOCKED` that the
    /// add would not set, or a set one, is a fatal error (nothing changed).
    pub fn add_acquire<'a, L: Unlocked + ?Sized>(
        &'a self,
        delta: i32,
        lock: &'a L,
    ) -> LockGuard<'a, T, L> {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            let new = old.wrapping_add(delta);
            if old & LOCKED != 0 || new & LOCKED == 0 {
                crate::throw!("cell: hand-off of a lock that is not free (lock protocol bug)");
            }
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return self.guard(lock),
                Err(cur) => old = cur,
            }
        }
    }

    /// The value, through exclusive access to the cell.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The guard of the one owner, who just set `LOCKED`.
    #[inline]
    fn guard<'a, L: Unlocked + ?Sized>(&'a self, lock: &'a L) -> LockGuard<'a, T, L> {
        LockGuard {
            state: &self.state,
            // SAFETY: `UnsafeCell::get` never returns null.
            value: unsafe { NonNull::new_unchecked(self.value.get()) },
            lock,
            _marker: PhantomData,
        }
    }
}

/// The one owner of a [`LockCell`]: derefs to the data (or, after
/// [`map`](LockGuard::map), a part of it); drop clears `LOCKED` (release)
/// and, if the word is not then 0, calls `lock.unlocked(new)`.
pub struct LockGuard<'a, T: ?Sized, L: Unlocked + ?Sized> {
    /// The cell's state word.
    state: &'a AtomicI32,
    /// The cell's value, or a part of it; valid and ours while `LOCKED`.
    value: NonNull<T>,
    lock: &'a L,
    /// Send/Sync as `&mut T`.
    _marker: PhantomData<&'a mut T>,
}

// SAFETY: the guard is a `&mut T` plus a shared `&L` (its drop may unlock
// from any thread: the locks here allow that), so it may move to another
// thread when `&mut T` and `&L` may.
unsafe impl<T: ?Sized + Send, L: Unlocked + Sync + ?Sized> Send for LockGuard<'_, T, L> {}
// SAFETY: through `&LockGuard` only `&T` and `&L` are reachable.
unsafe impl<T: ?Sized + Sync, L: Unlocked + Sync + ?Sized> Sync for LockGuard<'_, T, L> {}

impl<'a, T: ?Sized, L: Unlocked + ?Sized> LockGuard<'a, T, L> {
    /// The hook this guard calls on drop (the lock it holds).
    #[inline]
    pub fn lock(&self) -> &'a L {
        self.lock
    }

    /// The guard narrowed to the part of the data `f` returns; the lock is
    /// still held, and released when the new guard drops. If `f` panics,
    /// this guard is dropped (unlocking) as the panic unwinds.
    pub fn map<U: ?Sized>(mut this: Self, f: impl FnOnce(&mut T) -> &mut U) -> LockGuard<'a, U, L> {
        let value = NonNull::from(f(&mut *this));
        let this = core::mem::ManuallyDrop::new(this);
        LockGuard {
            state: this.state,
            value,
            lock: this.lock,
            _marker: PhantomData,
        }
    }

    /// As [`map`](Self::map) if `f` returns a part; otherwise gives the
    /// guard back unchanged.
    pub fn try_map<U: ?Sized>(
        mut this: Self,
        f: impl FnOnce(&mut T) -> Option<&mut U>,
    ) -> Result<LockGuard<'a, U, L>, Self> {
        match f(&mut *this).map(NonNull::from) {
            Some(value) => {
                let this = core::mem::ManuallyDrop::new(this);
                Ok(LockGuard {
                    state: this.state,
                    value,
                    lock: this.lock,
                    _marker: PhantomData,
                })
            }
            None => Err(this),
        }
    }

    /// The same guard with its lock type erased, so that guards of locks
    /// of different data types have one type (a mapped guard's).
    pub fn erase(this: Self) -> LockGuard<'a, T, dyn Unlocked + 'a>
    where
        L: Sized,
    {
        let this = core::mem::ManuallyDrop::new(this);
        LockGuard {
            state: this.state,
            value: this.value,
            lock: this.lock,
            _marker: PhantomData,
        }
    }
}

impl<T: ?Sized, L: Unlocked + ?Sized> core::ops::Deref for LockGuard<'_, T, L> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard exists only while `LOCKED` is set, and it is
        // the only one (see `compare_exchange`, `add_acquire`, `drop`);
        // `value` points into the cell, which outlives `'a`.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized, L: Unlocked + ?Sized> core::ops::DerefMut for LockGuard<'_, T, L> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only use.
        unsafe { self.value.as_mut() }
    }
}

impl<T: ?Sized, L: Unlocked + ?Sized> Drop for LockGuard<'_, T, L> {
    #[inline]
    fn drop(&mut self) {
        let new = self.state.fetch_sub(LOCKED, Ordering::Release) - LOCKED;
        if new != 0 {
            self.lock.unlocked(new);
        }
    }
}

/// Data behind a reader-writer lock: many shared borrows or one exclusive.
pub struct RwCell<T: ?Sized> {
    borrowed: AtomicUsize,
    value: UnsafeCell<T>,
}

// SAFETY: shared borrows give `&T` to many threads at once (`T: Sync`), an
// exclusive one moves `T`'s ownership between threads (`T: Send`); both
// checked by `borrowed`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwCell<T> {}
// SAFETY: owning the cell owns the `T`.
unsafe impl<T: ?Sized + Send> Send for RwCell<T> {}

impl<T> RwCell<T> {
    /// A cell holding `value`.
    pub const fn new(value: T) -> RwCell<T> {
        RwCell {
            borrowed: AtomicUsize::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> RwCell<T> {
    /// Borrows the value exclusively (a second borrow at the same time is a fatal error).
    #[inline]
    pub fn borrow_mut<'a, L: Unlock + ?Sized>(&'a self, lock: &'a L) -> RwCellMut<'a, T, L> {
        if self
            .borrowed
            .compare_exchange(0, EXCLUSIVE, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            crate::throw!("cell: locked data borrowed while in use (lock protocol bug)");
        }
        RwCellMut {
            borrowed: &self.borrowed,
            // SAFETY: `UnsafeCell::get` never returns null.
            value: unsafe { NonNull::new_unchecked(self.value.get()) },
            lock,
            _marker: PhantomData,
        }
    }

    /// Borrows the value shared until the guard drops, which then calls
    /// `lock.unlock_shared()`.
    #[inline]
    pub fn borrow<'a, L: UnlockShared + ?Sized>(&'a self, lock: &'a L) -> RwCellRef<'a, T, L> {
        let old = self.borrowed.fetch_add(1, Ordering::Acquire);
        if old & EXCLUSIVE != 0 || old == EXCLUSIVE - 1 {
            crate::throw!("cell: locked data read while written (lock protocol bug)");
        }
        RwCellRef {
            borrowed: &self.borrowed,
            // SAFETY: `UnsafeCell::get` never returns null.
            value: unsafe { NonNull::new_unchecked(self.value.get()) },
            lock,
            _marker: PhantomData,
        }
    }

    /// The value, through exclusive access to the cell.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

/// An exclusive borrow of an [`RwCell`] (or, after
/// [`map`](RwCellMut::map), of a part of its value).
pub struct RwCellMut<'a, T: ?Sized, L: Unlock + ?Sized> {
    borrowed: &'a AtomicUsize,
    /// The cell's value or a part of it; ours while the borrow lives.
    value: NonNull<T>,
    lock: &'a L,
    _marker: PhantomData<&'a mut T>,
}

// SAFETY: as for `LockGuard`: a `&mut T` and a `&L`.
unsafe impl<T: ?Sized + Send, L: Unlock + Sync + ?Sized> Send for RwCellMut<'_, T, L> {}
// SAFETY: through `&RwCellMut` only `&T` and `&L` are reachable.
unsafe impl<T: ?Sized + Sync, L: Unlock + Sync + ?Sized> Sync for RwCellMut<'_, T, L> {}

impl<'a, T: ?Sized, L: Unlock + ?Sized> RwCellMut<'a, T, L> {
    /// The lock this borrow's drop unlocks.
    pub fn lock(&self) -> &'a L {
        self.lock
    }

    /// Turns the exclusive borrow into a shared one, without calling the
    /// lock's `unlock` (the caller converts the lock's own state: its
    /// `downgrade`). The shared borrow's drop calls `unlock_shared`.
    pub fn downgrade(self) -> RwCellRef<'a, T, L>
    where
        L: UnlockShared,
    {
        let this = core::mem::ManuallyDrop::new(self);
        // One shared borrow, ours; release: our writes happen before any
        // later reader's acquire of the count.
        this.borrowed.store(1, Ordering::Release);
        RwCellRef {
            borrowed: this.borrowed,
            value: this.value,
            lock: this.lock,
            _marker: PhantomData,
        }
    }

    /// The borrow narrowed to the part of the value `f` returns (the lock
    /// is still held). If `f` panics, this borrow is dropped (unlocking).
    pub fn map<U: ?Sized>(mut self, f: impl FnOnce(&mut T) -> &mut U) -> RwCellMut<'a, U, L> {
        let value = NonNull::from(f(&mut *self));
        let this = core::mem::ManuallyDrop::new(self);
        RwCellMut {
            borrowed: this.borrowed,
            value,
            lock: this.lock,
            _marker: PhantomData,
        }
    }
}

impl<T: ?Sized, L: Unlock + ?Sized> core::ops::Deref for RwCellMut<'_, T, L> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the cell's exclusive borrow; the cell
        // outlives `'a`.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized, L: Unlock + ?Sized> core::ops::DerefMut for RwCellMut<'_, T, L> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only use.
        unsafe { self.value.as_mut() }
    }
}

impl<T: ?Sized, L: Unlock + ?Sized> Drop for RwCellMut<'_, T, L> {
    #[inline]
    fn drop(&mut self) {
        self.borrowed.store(0, Ordering::Release);
        self.lock.unlock();
    }
}

/// A shared borrow of an [`RwCell`].
///
/// Covariant in `T`, like `&T` (and std's `RwLockReadGuard`): it keeps the
/// value as a `NonNull<T>` rather than a reference to the cell, whose
/// `UnsafeCell` would make it invariant.
pub struct RwCellRef<'a, T: ?Sized, L: UnlockShared + ?Sized> {
    borrowed: &'a AtomicUsize,
    /// The cell's value; valid for `'a`, shared while this borrow lives.
    value: NonNull<T>,
    lock: &'a L,
    /// Send/Sync as `&T`.
    _marker: PhantomData<&'a T>,
}

// SAFETY: the guard hands out only `&T` (as `&'a T` would): sharing or
// sending it shares the `T`.
unsafe impl<T: ?Sized + Sync, L: UnlockShared + Sync + ?Sized> Sync for RwCellRef<'_, T, L> {}
// SAFETY: as above; dropping it on another thread only releases a count
// (the lock types here allow unlocking from any thread).
unsafe impl<T: ?Sized + Sync, L: UnlockShared + Sync + ?Sized> Send for RwCellRef<'_, T, L> {}

impl<'a, T: ?Sized, L: UnlockShared + ?Sized> RwCellRef<'a, T, L> {
    /// The borrow narrowed to the part of the value `f` returns (the lock
    /// is still held). If `f` panics, this borrow is dropped (unlocking).
    pub fn map<U: ?Sized>(self, f: impl FnOnce(&T) -> &U) -> RwCellRef<'a, U, L> {
        let value = NonNull::from(f(&*self));
        let this = core::mem::ManuallyDrop::new(self);
        RwCellRef {
            borrowed: this.borrowed,
            value,
            lock: this.lock,
            _marker: PhantomData,
        }
    }
}

impl<T: ?Sized, L: UnlockShared + ?Sized> core::ops::Deref for RwCellRef<'_, T, L> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds a shared borrow: no exclusive one exists,
        // and the cell outlives `'a`.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized, L: UnlockShared + ?Sized> Drop for RwCellRef<'_, T, L> {
    #[inline]
    fn drop(&mut self) {
        self.borrowed.fetch_sub(1, Ordering::Release);
        self.lock.unlock_shared();
    }
}

impl<T: ?Sized + core::fmt::Debug, L: Unlocked + ?Sized> core::fmt::Debug for LockGuard<'_, T, L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + core::fmt::Debug, L: Unlock + ?Sized> core::fmt::Debug for RwCellMut<'_, T, L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + core::fmt::Debug, L: UnlockShared + ?Sized> core::fmt::Debug
    for RwCellRef<'_, T, L>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized> core::fmt::Debug for LockCell<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LockCell")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> core::fmt::Debug for RwCell<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RwCell").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Hook(AtomicI32);
    impl Unlocked for Hook {
        fn unlocked(&self, new: i32) {
            self.0.store(new, Ordering::Relaxed);
        }
    }

    #[test]
    fn only_a_change_that_sets_locked_hands_out_a_guard() {
        let c = LockCell::new(5u32);
        let h = Hook(AtomicI32::new(-1));
        let r = |old, new| c.compare_exchange(old, new, Ordering::Acquire, Ordering::Relaxed, &h);
        // Changes that leave LOCKED clear: no guard, and nothing unlocks.
        assert!(r(0, 8).unwrap().is_none());
        assert_eq!(c.load(Ordering::Relaxed), 8);
        let mut g = r(8, 8 | LOCKED).unwrap().expect("set LOCKED: the guard");
        *g += 1;
        // While held: changes of other bits give no guard, a stale CAS fails.
        assert!(r(8 | LOCKED, 16 | LOCKED).unwrap().is_none());
        assert_eq!(r(8 | LOCKED, 24 | LOCKED).err(), Some(16 | LOCKED));
        assert_eq!(c.load(Ordering::Relaxed), 16 | LOCKED);
        drop(g);
        assert_eq!(c.load(Ordering::Relaxed), 16);
        assert_eq!(
            h.0.load(Ordering::Relaxed),
            16,
            "the hook sees the word after unlock"
        );
        let g = c.add_acquire(LOCKED - 8, &h);
        assert_eq!(*g, 6);
        drop(g);
        assert_eq!(c.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn rw_cell_counts_readers() {
        struct H;
        impl Unlock for H {
            fn unlock(&self) {}
        }
        impl UnlockShared for H {
            fn unlock_shared(&self) {}
        }
        let c = RwCell::new(1);
        let (a, b) = (c.borrow(&H), c.borrow(&H));
        assert_eq!(*a + *b, 2);
        drop((a, b));
        *c.borrow_mut(&H) = 3;
        assert_eq!(*c.borrow(&H), 3);
    }
}
