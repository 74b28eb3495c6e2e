//! Cells that hand out the data a lock guards, with the borrow checked.
//!
//! `runtime::sync::Mutex<T>` and `RwLock<T>` must give out `&mut T` from a
//! `&self`, which takes `unsafe` — and the runtime crate has none. The lock
//! protocols (Go's state words) live in the runtime, in safe code; the
//! data lives here, in a [`MutexCell`] or an [`RwCell`], whose borrows are
//! counted in an atomic word of their own. A second exclusive borrow, or a
//! shared borrow during an exclusive one, is a fatal error
//! (`cell: ... (lock protocol bug)`), never undefined behaviour: the cell
//! is sound on its own, whatever the protocol around it does.
//!
//! The cost is one atomic exchange (or add) per lock and one store (or
//! subtract) per unlock, on a cache line the lock owner already holds.
//! Rejected: `lock_api`'s `unsafe trait RawMutex` implemented by the
//! runtime (needs `unsafe impl` in the runtime crate); moving the lock
//! protocols into this crate (the runtime's `sync` would be a shell around
//! them, and the protocol code would sit far from its users and docs).
//!
//! The guards release the borrow and *then* call the lock's unlock hook
//! ([`Unlock`], [`UnlockShared`]), so the next owner never finds the borrow
//! still held.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicUsize, Ordering};

/// What a guard calls after releasing its borrow: the lock's unlock.
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

/// Data behind a mutex: one exclusive borrow at a time.
pub struct MutexCell<T: ?Sized> {
    borrowed: AtomicUsize,
    value: UnsafeCell<T>,
}

// SAFETY: the cell hands out `&mut T` to one borrower at a time (checked by
// `borrowed`), so sharing the cell moves `T` between threads, like a mutex:
// `T: Send` suffices.
unsafe impl<T: ?Sized + Send> Sync for MutexCell<T> {}
// SAFETY: owning the cell owns the `T`.
unsafe impl<T: ?Sized + Send> Send for MutexCell<T> {}

impl<T> MutexCell<T> {
    /// A cell holding `value`.
    pub const fn new(value: T) -> MutexCell<T> {
        MutexCell {
            borrowed: AtomicUsize::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> MutexCell<T> {
    /// Borrows the value exclusively until the guard drops, which then calls
    /// `lock.unlock()`. The caller holds `lock`; a second borrow at the same
    /// time is a fatal error.
    #[inline]
    pub fn borrow_mut<'a, L: Unlock + ?Sized>(&'a self, lock: &'a L) -> CellMut<'a, T, L> {
        if self.borrowed.swap(1, Ordering::Acquire) != 0 {
            crate::throw!("cell: locked data borrowed twice (lock protocol bug)");
        }
        CellMut {
            cell: self,
            lock,
            _marker: PhantomData,
        }
    }

    /// The value, through exclusive access to the cell.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

/// An exclusive borrow of a [`MutexCell`].
pub struct CellMut<'a, T: ?Sized, L: Unlock + ?Sized> {
    cell: &'a MutexCell<T>,
    lock: &'a L,
    /// Send/Sync as `&mut T`.
    _marker: PhantomData<&'a mut T>,
}

impl<T: ?Sized, L: Unlock + ?Sized> core::ops::Deref for CellMut<'_, T, L> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the cell's only borrow (checked at
        // creation, released at drop).
        unsafe { &*self.cell.value.get() }
    }
}

impl<T: ?Sized, L: Unlock + ?Sized> core::ops::DerefMut for CellMut<'_, T, L> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only use.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T: ?Sized, L: Unlock + ?Sized> Drop for CellMut<'_, T, L> {
    #[inline]
    fn drop(&mut self) {
        self.cell.borrowed.store(0, Ordering::Release);
        self.lock.unlock();
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
    /// Borrows the value exclusively (see [`MutexCell::borrow_mut`]).
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
            cell: self,
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
            cell: self,
            lock,
            _marker: PhantomData,
        }
    }

    /// The value, through exclusive access to the cell.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

/// An exclusive borrow of an [`RwCell`].
pub struct RwCellMut<'a, T: ?Sized, L: Unlock + ?Sized> {
    cell: &'a RwCell<T>,
    lock: &'a L,
    _marker: PhantomData<&'a mut T>,
}

impl<T: ?Sized, L: Unlock + ?Sized> core::ops::Deref for RwCellMut<'_, T, L> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the cell's exclusive borrow.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T: ?Sized, L: Unlock + ?Sized> core::ops::DerefMut for RwCellMut<'_, T, L> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only use.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T: ?Sized, L: Unlock + ?Sized> Drop for RwCellMut<'_, T, L> {
    #[inline]
    fn drop(&mut self) {
        self.cell.borrowed.store(0, Ordering::Release);
        self.lock.unlock();
    }
}

/// A shared borrow of an [`RwCell`].
pub struct RwCellRef<'a, T: ?Sized, L: UnlockShared + ?Sized> {
    cell: &'a RwCell<T>,
    lock: &'a L,
    /// Send/Sync as `&T`.
    _marker: PhantomData<&'a T>,
}

impl<T: ?Sized, L: UnlockShared + ?Sized> core::ops::Deref for RwCellRef<'_, T, L> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds a shared borrow: no exclusive one exists.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T: ?Sized, L: UnlockShared + ?Sized> Drop for RwCellRef<'_, T, L> {
    #[inline]
    fn drop(&mut self) {
        self.cell.borrowed.fetch_sub(1, Ordering::Release);
        self.lock.unlock_shared();
    }
}

impl<T: ?Sized + core::fmt::Debug, L: Unlock + ?Sized> core::fmt::Debug for CellMut<'_, T, L> {
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

impl<T: ?Sized> core::fmt::Debug for MutexCell<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MutexCell").finish_non_exhaustive()
    }
}

impl<T: ?Sized> core::fmt::Debug for RwCell<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RwCell").finish_non_exhaustive()
    }
}
