//! `Once`: Go's `sync.Once`.
//!
//! A `done` flag read with one acquire load on the fast path, and a
//! [`Mutex`] for the slow path: the first caller runs the function holding
//! the mutex, concurrent callers park on it (`sync.Mutex.Lock` in a dump,
//! as in Go) and find `done` set when they get it.
//!
//! A panic in the function: as in Go, the `Once` counts as done (Go's
//! `defer o.done.Store(1)`), the panic goes on in the caller that ran it,
//! and the others return without running anything. std's `Once` poisons
//! instead; Go's choice means a panicking initialiser is not retried
//! forever by every caller. The one way to retry is std's:
//! [`Once::call_once_force`] runs its function when the last one panicked.

use crate::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Runs a function exactly once, however many Gs and threads call it.
///
/// ```
/// use runtime::sync::Once;
/// static INIT: Once = Once::new();
/// let mut n = 0;
/// INIT.call_once(|| n += 1);
/// INIT.call_once(|| n += 1);
/// assert_eq!(n, 1);
/// ```
#[derive(Debug, Default)]
pub struct Once {
    done: AtomicBool,
    /// The function that ran panicked (so `call_once_force` runs again).
    panicked: AtomicBool,
    m: Mutex<()>,
}

/// What [`Once::call_once_force`] tells its function.
#[derive(Debug)]
pub struct OnceState {
    poisoned: bool,
}

impl OnceState {
    /// Whether an earlier call's function panicked (std's word: the
    /// `Once` is poisoned).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

// As std's: a panic in the function leaves the `Once` in a defined state
// (done, and marked panicked), so it may be used across `catch_unwind`.
impl std::panic::UnwindSafe for Once {}
impl std::panic::RefUnwindSafe for Once {}

impl Once {
    /// A `Once` that has not run.
    pub const fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            m: Mutex::new(()),
        }
    }

    /// Runs `f` if no call has run yet; otherwise waits until the first
    /// call has finished (parking a G, blocking a thread) and returns.
    /// Calling `call_once` on the same `Once` from inside `f` waits
    /// forever, as in Go.
    #[inline]
    pub fn call_once(&self, f: impl FnOnce()) {
        if !self.done.load(Ordering::Acquire) {
            self.call_slow(f);
        }
    }

    /// As [`call_once`](Self::call_once), but also runs `f` if the
    /// function of an earlier call panicked (std's `call_once_force` on a
    /// poisoned `Once`); `f` learns that from its [`OnceState`]. Once a
    /// function has returned normally, nothing runs again.
    pub fn call_once_force(&self, f: impl FnOnce(&OnceState)) {
        if self.done.load(Ordering::Acquire) && !self.panicked.load(Ordering::Acquire) {
            return;
        }
        let _g = self.m.lock();
        let poisoned = self.panicked.load(Ordering::Relaxed);
        if self.done.load(Ordering::Relaxed) && !poisoned {
            return;
        }
        self.run(|| f(&OnceState { poisoned }));
    }

    #[cold]
    fn call_slow(&self, f: impl FnOnce()) {
        let _g = self.m.lock();
        if self.done.load(Ordering::Relaxed) {
            return;
        }
        self.run(f);
    }

    /// Runs `f` with the mutex held; marks the `Once` done however `f`
    /// ends, and remembers whether it panicked.
    fn run(&self, f: impl FnOnce()) {
        /// Sets `done`, and `panicked` unless `f` returned, as `f` ends.
        struct Done<'a> {
            once: &'a Once,
            returned: bool,
        }
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.once.panicked.store(!self.returned, Ordering::Release);
                self.once.done.store(true, Ordering::Release);
            }
        }
        let mut done = Done {
            once: self,
            returned: false,
        };
        f();
        done.returned = true;
    }

    /// Whether a call has completed (or panicked).
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}
