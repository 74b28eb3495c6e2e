//! G-local storage: values that belong to a G, wherever it runs.
//!
//! A G may continue on another OS thread after any park, so a
//! `thread_local!` value is the M's, not the G's. A [`GLocal`] key names one
//! value per G instead: the first [`GLocal::with`] in a G makes it (with the
//! key's initialiser), later calls in the same G see the same value, on
//! whichever M they run, and the G's exit drops it, on the G itself. On a
//! plain thread (no G) the key falls back to one value per thread, dropped
//! when the thread exits, as `thread_local!`.
//!
//! # Storage
//!
//! Each G (and each plain thread) owns a [`Locals`]: a vector indexed by key
//! number whose entries own boxed values through raw pointers. Only the
//! running G touches its own `Locals` (see [`crate::g::G`]'s ownership
//! rules); the vector may grow while a reference handed out by `with` is
//! live (a nested `with` of a new key), which is why values live in boxes of
//! their own: a reference points into its box, never into the vector.
//!
//! Keys get their number on first use from a global counter, so a program
//! pays one vector slot per key it actually uses.

use crate::g::{Locals, Slot};
use core::cell::RefCell;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Drops the calling G's G-local values now (the G's exit does it too):
/// `runtime` calls this as a G's function returns, before the joiner is
/// released, so that a join sees every destructor's effect, as std's
/// thread join does. Does nothing on a plain thread.
///
/// # Panics
///
/// Inside [`GLocal::with`] (its reference would dangle).
pub fn drop_g_locals() {
    if let Some(g) = crate::m::current_g() {
        // SAFETY: the running G owns its locals; `clear` refuses while a
        // `with` is under way.
        unsafe { g.locals().clear() };
    }
}

std::thread_local! {
    /// G-local values of a plain thread (code that runs on no G).
    static THREAD_LOCALS: Locals = Locals::default();
}

/// Key numbers handed out so far.
static NEXT_KEY: AtomicUsize = AtomicUsize::new(0);

/// A key for G-local values: one `T` per G (one per plain thread outside
/// the runtime). Made by `runtime::g_local!`, used like std's `LocalKey`.
pub struct GLocal<T: Send + 'static> {
    init: fn() -> T,
    /// Key number + 1; 0 until the first use.
    key: AtomicUsize,
    _value: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> core::fmt::Debug for GLocal<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GLocal").finish_non_exhaustive()
    }
}

unsafe fn drop_box<T>(p: *mut ()) {
    // SAFETY: the caller passes a pointer from `Box::<T>::into_raw`, once.
    drop(unsafe { Box::from_raw(p.cast::<T>()) });
}

impl<T: Send + 'static> GLocal<T> {
    /// A key whose value starts as `init()` in each G.
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> GLocal<T> {
        GLocal {
            init,
            key: AtomicUsize::new(0),
            _value: PhantomData,
        }
    }

    fn index(&self) -> usize {
        match self.key.load(Ordering::Acquire) {
            0 => {
                let fresh = NEXT_KEY.fetch_add(1, Ordering::Relaxed) + 1;
                match self
                    .key
                    .compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => fresh - 1,
                    // Another thread numbered the key first: its number
                    // wins; ours stays unused.
                    Err(won) => won - 1,
                }
            }
            k => k - 1,
        }
    }

    /// Calls `f` with this G's value, making it first if this G has none.
    /// The reference stays valid across parks inside `f`: the value belongs
    /// to the G, not to the thread.
    ///
    /// # Panics
    ///
    /// If the initialiser itself uses this key (as std's `LocalKey`), or on
    /// a plain thread whose thread-locals are being destroyed.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let index = self.index();
        match crate::m::current_g() {
            Some(g) => {
                // SAFETY: the running G owns its locals.
                let value = unsafe { self.get_or_init(g.locals(), index) };
                Self::call(g.locals(), value, f)
            }
            None => THREAD_LOCALS.with(|locals| {
                // SAFETY: this thread owns its own locals.
                let value = unsafe { self.get_or_init(locals, index) };
                Self::call(locals, value, f)
            }),
        }
    }

    /// `f(value)`, counted in `locals.depth` (also when `f` unwinds).
    fn call<R>(locals: &Locals, value: &T, f: impl FnOnce(&T) -> R) -> R {
        struct Depth<'a>(&'a core::cell::Cell<usize>);
        impl Drop for Depth<'_> {
            fn drop(&mut self) {
                self.0.set(self.0.get() - 1);
            }
        }
        locals.depth.set(locals.depth.get() + 1);
        let _depth = Depth(&locals.depth);
        f(value)
    }

    /// # Safety
    ///
    /// The caller owns `locals` (the running G's, or this thread's), and
    /// the reference returned is used only while it does.
    unsafe fn get_or_init<'a>(&self, locals: &'a Locals, index: usize) -> &'a T {
        let slots = locals.slots.get();
        // SAFETY: the caller owns the storage; no reference into the vector
        // itself outlives this statement.
        let found = unsafe { (&*slots).get(index) }.and_then(|s| s.as_ref().map(|s| s.value));
        if let Some(value) = found {
            // SAFETY: the slot at our index holds a `Box<T>` made below; it
            // lives until the owner clears its locals.
            return unsafe { &*value.cast::<T>() };
        }
        // The initialiser may use other keys (growing the vector); we hold
        // no reference into it meanwhile.
        let value = Box::into_raw(Box::new((self.init)())).cast::<()>();
        // SAFETY: as above: the owner's storage, a short-lived borrow.
        let v = unsafe { &mut *slots };
        if v.len() <= index {
            v.resize_with(index + 1, || None);
        }
        if v[index].is_some() {
            // SAFETY: `value` is the box made above and not stored.
            unsafe { drop_box::<T>(value) };
            panic!("GLocal::with: the key's initialiser used the key itself");
        }
        v[index] = Some(Slot {
            value,
            drop: drop_box::<T>,
        });
        // SAFETY: stored above; the box lives until the owner clears.
        unsafe { &*value.cast::<T>() }
    }
}

impl<T: Send + 'static> GLocal<RefCell<T>> {
    /// Borrows this G's value immutably for `f`.
    ///
    /// # Panics
    ///
    /// If the value is borrowed mutably.
    pub fn with_borrow<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        self.with(|cell| f(&cell.borrow()))
    }

    /// Borrows this G's value mutably for `f`.
    ///
    /// # Panics
    ///
    /// If the value is borrowed.
    pub fn with_borrow_mut<R>(&'static self, f: impl FnOnce(&mut T) -> R) -> R {
        self.with(|cell| f(&mut cell.borrow_mut()))
    }

    /// Replaces this G's value.
    pub fn set(&'static self, value: T) {
        self.with(|cell| drop(cell.replace(value)));
    }

    /// Takes this G's value, leaving `T::default()`.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(|cell| cell.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    static COUNT: GLocal<Cell<u32>> = GLocal::new(|| Cell::new(7));
    static LIST: GLocal<RefCell<Vec<u32>>> = GLocal::new(|| RefCell::new(Vec::new()));

    /// Symptom: a plain thread sees another thread's value, or the
    /// initialiser runs again on every access.
    #[test]
    fn a_plain_thread_has_its_own_value() {
        COUNT.with(|c| c.set(c.get() + 1));
        assert_eq!(COUNT.with(Cell::get), 8);
        std::thread::spawn(|| assert_eq!(COUNT.with(Cell::get), 7))
            .join()
            .unwrap();
        assert_eq!(COUNT.with(Cell::get), 8);
    }

    /// Symptom: a nested access to a new key grows the vector and leaves
    /// the outer reference dangling.
    #[test]
    fn a_nested_key_does_not_move_the_outer_value() {
        LIST.with_borrow_mut(|v| {
            v.push(1);
            COUNT.with(|c| c.set(1));
            v.push(2);
        });
        assert_eq!(LIST.take(), vec![1, 2]);
        assert!(LIST.with_borrow(Vec::is_empty));
    }
}
