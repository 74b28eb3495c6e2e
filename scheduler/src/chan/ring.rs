//! A channel's buffer: a ring of slots that values are copied into and out
//! of through pointers, so a value crosses the buffer without a copy on
//! anyone's stack (Go's `chanbuf` + `typedmemmove`).
//!
//! `VecDeque::push_back(v)` takes the value by value: each frame between
//! the caller's value and the heap slot holds a copy of it in a debug
//! build, and some of them in a release build — a 48 KiB value overflowed
//! a 256 KiB G stack. Here [`Ring::push_from`] copies from the sender's
//! slot straight into the heap, and [`Ring::pop_into`] from the heap
//! straight into the receiver's slot.
//!
//! Slots are allocated lazily, doubling up to what the channel needs (a
//! `bounded(1 << 40)` channel costs nothing until it fills up).

use core::mem::MaybeUninit;
use core::ptr;

/// A FIFO of `T`s. `slots[(head + i) % slots.len()]` for `i < len` hold
/// values; the rest are uninitialised. `slots.len()` is 0 or a power of
/// two, so the modulo is a mask.
pub(crate) struct Ring<T> {
    slots: Box<[MaybeUninit<T>]>,
    head: usize,
    len: usize,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring::with_capacity(0)
    }
}

impl<T> Ring<T> {
    /// An empty ring with room for at least `n` values before it grows.
    pub(crate) fn with_capacity(n: usize) -> Ring<T> {
        let n = if n == 0 { 0 } else { n.next_power_of_two() };
        Ring {
            slots: Box::new_uninit_slice(n),
            head: 0,
            len: 0,
        }
    }

    /// Values held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Index of the `i`th slot after the head (`slots` not empty).
    #[inline]
    fn wrap(&self, i: usize) -> usize {
        (self.head + i) & (self.slots.len() - 1)
    }

    /// The slot at index `i` (below `slots.len()`).
    #[inline]
    fn slot(&mut self, i: usize) -> *mut T {
        debug_assert!(i < self.slots.len());
        // SAFETY: `i` is in bounds (callers pass `wrap`'s results).
        unsafe { self.slots.as_mut_ptr().add(i).cast() }
    }

    /// Moves the value at `src` to the back.
    ///
    /// # Safety
    ///
    /// `src` points to an initialised `T` that the caller gives up: it
    /// must not use or drop it afterwards.
    #[inline]
    pub(crate) unsafe fn push_from(&mut self, src: *const T) {
        if self.len == self.slots.len() {
            self.grow();
        }
        let i = self.wrap(self.len);
        // SAFETY: slot `i` is free (index `len` after the head); `src` is
        // valid per the contract and cannot overlap our heap slot.
        unsafe { ptr::copy_nonoverlapping(src, self.slot(i), 1) };
        self.len += 1;
    }

    /// Moves the front value to `dst`, if there is one.
    ///
    /// # Safety
    ///
    /// `dst` is valid for a write of a `T` and holds no value the caller
    /// still needs dropped (it is overwritten).
    #[inline]
    pub(crate) unsafe fn pop_into(&mut self, dst: *mut T) -> bool {
        if self.len == 0 {
            return false;
        }
        let i = self.head;
        self.head = self.wrap(1);
        self.len -= 1;
        // SAFETY: slot `i` held the front value, now ours to move out.
        unsafe { ptr::copy_nonoverlapping(self.slot(i), dst, 1) };
        true
    }

    /// Doubles the slots (at least 4, so a power of two), keeping the
    /// order.
    #[cold]
    fn grow(&mut self) {
        let old = self.slots.len();
        let new = old
            .checked_mul(2)
            .unwrap_or_else(|| crate::throw!("chan: buffer size overflow"))
            .max(4);
        let mut slots: Box<[MaybeUninit<T>]> = Box::new_uninit_slice(new);
        // The values in order: [head, old) then [0, head).
        let first = (old - self.head).min(self.len);
        // SAFETY: both ranges hold values; the new box is distinct and has
        // room for all `len` of them.
        unsafe {
            ptr::copy_nonoverlapping(self.slots[self.head..].as_ptr(), slots.as_mut_ptr(), first);
            ptr::copy_nonoverlapping(
                self.slots.as_ptr(),
                slots[first..].as_mut_ptr(),
                self.len - first,
            );
        }
        // The old box holds MaybeUninit only: freeing it drops nothing.
        self.slots = slots;
        self.head = 0;
    }
}

impl<T> Drop for Ring<T> {
    /// Drops the values front to back. If one's `Drop` panics, the guard
    /// drops the rest while unwinding (a second panic aborts, as for a
    /// slice).
    fn drop(&mut self) {
        struct Rest<'a, T>(&'a mut Ring<T>);
        impl<T> Drop for Rest<'_, T> {
            fn drop(&mut self) {
                drop_values(self.0);
            }
        }
        fn drop_values<T>(r: &mut Ring<T>) {
            while r.len > 0 {
                let i = r.head;
                r.head = r.wrap(1);
                r.len -= 1;
                let rest = Rest(r);
                // SAFETY: slot `i` held the front value, taken off the ring
                // above, so it is dropped exactly once.
                unsafe { ptr::drop_in_place(rest.0.slot(i)) };
                core::mem::forget(rest);
            }
        }
        drop_values(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn push<T>(r: &mut Ring<T>, v: T) {
        let v = core::mem::ManuallyDrop::new(v);
        // SAFETY: we give `v` up.
        unsafe { r.push_from(&*v) };
    }

    fn pop<T>(r: &mut Ring<T>) -> Option<T> {
        let mut out = MaybeUninit::uninit();
        // SAFETY: `out` is ours; read only if written.
        unsafe { r.pop_into(out.as_mut_ptr()).then(|| out.assume_init()) }
    }

    #[test]
    fn fifo_across_growth_and_wrap() {
        let mut r = Ring::with_capacity(3);
        let mut next = 0;
        let mut expect = 0;
        for round in 0..50 {
            for _ in 0..(round % 7 + 1) {
                push(&mut r, next.to_string());
                next += 1;
            }
            for _ in 0..(round % 5) {
                match pop(&mut r) {
                    Some(v) => {
                        assert_eq!(v, expect.to_string());
                        expect += 1;
                    }
                    None => break,
                }
            }
            assert_eq!(r.len(), next - expect);
        }
        while let Some(v) = pop(&mut r) {
            assert_eq!(v, expect.to_string());
            expect += 1;
        }
        assert_eq!(expect, next);
    }

    #[test]
    fn drop_drops_every_value_once() {
        let v = Arc::new(());
        let mut r = Ring::with_capacity(0);
        for _ in 0..10 {
            push(&mut r, v.clone());
        }
        drop(pop(&mut r));
        assert_eq!(Arc::strong_count(&v), 10);
        drop(r);
        assert_eq!(Arc::strong_count(&v), 1);
        let mut z = Ring::<()>::with_capacity(0);
        push(&mut z, ());
        assert_eq!(pop(&mut z), Some(()));
        assert_eq!(pop(&mut z), None);
    }
}
