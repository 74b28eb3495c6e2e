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
//! forever by every caller.

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
    m: Mutex<()>,
}

impl Once {
    /// A `Once` that has not run.
    pub const fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
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

    #[cold]
    fn call_slow(&self, f: impl FnOnce()) {
        let _g = self.m.lock();
        if self.done.load(Ordering::Relaxed) {
            return;
        }
        /// Sets `done` when `f` returns or unwinds.
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let _done = Done(&self.done);
        f();
    }

    /// Whether a call has completed (or panicked).
    pub fn is_completed(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}
