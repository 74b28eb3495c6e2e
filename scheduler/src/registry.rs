//! An append-only, lock-free-readable array: the registry of all Gs and all
//! Ms.
//!
//! A signal handler must be able to walk every G and every M without taking a
//! lock or allocating, while other threads keep adding entries. So entries are
//! never moved or freed: they live in segments whose sizes double (segment
//! `k` holds `BASE << k` entries), published through atomic pointers. Writers
//! append under a mutex (appends are rare: a G struct is reused through free
//! lists once created); readers load `len` with `Acquire` and then index.
//!
//! | field | written by | read by |
//! |---|---|---|
//! | `segments[k]` | the appender, once, before `len` covers it (`Release`) | anyone, after loading `len` (`Acquire`) |
//! | `len` | the appender, after the entry is initialised (`Release`) | anyone |

use crate::lock_rank::{Rank, RankedMutex};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Entries in segment 0; segment `k` holds `BASE << k`.
const BASE: usize = 64;
/// Enough segments for more entries than any address space can hold.
const SEGMENTS: usize = usize::BITS as usize - 6;

/// Append-only registry of `T` with `'static` entries. See the module docs.
pub struct Registry<T: 'static> {
    segments: [AtomicPtr<T>; SEGMENTS],
    len: AtomicUsize,
    append_lock: RankedMutex<()>,
}

impl<T: 'static> core::fmt::Debug for Registry<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Registry")
            .field("len", &self.len())
            .finish()
    }
}

/// Segment and index inside it of entry `i`.
fn locate(i: usize) -> (usize, usize) {
    // Segment k starts at BASE * (2^k - 1).
    let k = (usize::BITS - 1 - (i / BASE + 1).leading_zeros()) as usize;
    let start = BASE * ((1usize << k) - 1);
    (k, i - start)
}

impl<T: 'static> Registry<T> {
    /// An empty registry (usable in a `static`).
    pub const fn new() -> Self {
        Registry {
            segments: [const { AtomicPtr::new(core::ptr::null_mut()) }; SEGMENTS],
            len: AtomicUsize::new(0),
            append_lock: RankedMutex::new(Rank::Registry, ()),
        }
    }

    /// Number of entries; every index below it is valid.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether nothing was ever appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the value `make(index)` returns and gives back a `'static`
    /// reference to it.
    pub fn push_with(&self, make: impl FnOnce(usize) -> T) -> &'static T {
        let _guard = self.append_lock.lock();
        let i = self.len.load(Ordering::Relaxed);
        let (k, j) = locate(i);
        let mut seg = self.segments[k].load(Ordering::Relaxed);
        if seg.is_null() {
            let cap = BASE << k;
            let mut v: Vec<core::mem::MaybeUninit<T>> = Vec::with_capacity(cap);
            // SAFETY: MaybeUninit needs no initialisation; capacity is cap.
            unsafe { v.set_len(cap) };
            seg = Box::leak(v.into_boxed_slice()).as_mut_ptr().cast::<T>();
            self.segments[k].store(seg, Ordering::Release);
        }
        // SAFETY: j < BASE << k, so the slot is inside segment k, which is
        // never freed; no reader looks at it until `len` covers it below.
        let slot = unsafe { seg.add(j) };
        // SAFETY: the slot is uninitialised and ours alone (append lock).
        unsafe { slot.write(make(i)) };
        self.len.store(i + 1, Ordering::Release);
        // SAFETY: the entry is initialised and lives forever.
        unsafe { &*slot }
    }

    /// Entry `i`, if `i < len()`. Lock-free and allocation-free: usable from
    /// a signal handler.
    pub fn get(&self, i: usize) -> Option<&'static T> {
        if i >= self.len() {
            return None;
        }
        let (k, j) = locate(i);
        let seg = self.segments[k].load(Ordering::Acquire);
        // SAFETY: i < len, so segment k was published before len (Release /
        // Acquire) and slot j is initialised; entries are never freed.
        Some(unsafe { &*seg.add(j) })
    }

    /// Iterates over the entries present when each step runs.
    pub fn iter(&self) -> impl Iterator<Item = &'static T> + '_ {
        (0..).map_while(move |i| self.get(i))
    }
}

impl<T: 'static> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_is_contiguous() {
        let mut expect = (0, 0);
        for i in 0..100_000 {
            assert_eq!(locate(i), expect, "index {i}");
            expect.1 += 1;
            if expect.1 == BASE << expect.0 {
                expect = (expect.0 + 1, 0);
            }
        }
    }

    #[test]
    fn entries_stay_put_while_others_append() {
        static R: Registry<(usize, usize)> = Registry::new();
        let first = R.push_with(|i| (i, 7));
        std::thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for n in 0..10_000 {
                        let e = R.push_with(|i| (i, t * 100_000 + n));
                        assert_eq!(R.get(e.0).unwrap() as *const _, e as *const _);
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..50 {
                    let n = R.iter().count();
                    assert!(n >= 1);
                }
            });
        });
        assert_eq!(R.len(), 40_001);
        assert_eq!(*first, (0, 7));
        assert!(R.iter().enumerate().all(|(i, e)| e.0 == i));
    }
}
