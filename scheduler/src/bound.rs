//! Debug check for thread-bound values held across a park.
//!
//! A G may continue on another OS thread after any park, so a value tied to
//! the thread it was made on (a `thread_local!` borrow, a std `MutexGuard`,
//! a `tracing` span entered on this thread, `rand::thread_rng()`) must not
//! live across one. The compiler cannot see a park, and gort cannot see
//! std's guards, so code that holds such a value marks it with a
//! [`ThreadBound`] for as long as it lives. In debug builds a G that parks
//! or yields while a marker is live and it is not locked to its thread
//! (`lock_os_thread`) stops the process with a fatal error naming where the
//! marker was made: the mistake shows up at the first park in a test run,
//! not at the rare run where the G happens to move. Release builds check
//! nothing (the marker still counts, one relaxed add).

use crate::m::current_g;
use core::marker::PhantomData;
use core::sync::atomic::Ordering;

/// Marks the caller's G as holding a value tied to its OS thread until this
/// is dropped. Not `Send`: it belongs to the thread it was made on. On a
/// plain thread it does nothing.
#[derive(Debug)]
#[must_use = "the mark lasts as long as the value lives"]
pub struct ThreadBound {
    g: Option<crate::g::GRef>,
    _not_send: PhantomData<*const ()>,
}

impl ThreadBound {
    /// Marks the current G (see the module docs).
    #[track_caller]
    pub fn new() -> ThreadBound {
        let g = current_g();
        if let Some(g) = g {
            g.thread_bound.fetch_add(1, Ordering::Relaxed);
            g.thread_bound_site.store(
                core::panic::Location::caller() as *const _ as *mut _,
                Ordering::Relaxed,
            );
        }
        ThreadBound {
            g,
            _not_send: PhantomData,
        }
    }
}

impl Default for ThreadBound {
    #[track_caller]
    fn default() -> ThreadBound {
        ThreadBound::new()
    }
}

impl Drop for ThreadBound {
    fn drop(&mut self) {
        if let Some(g) = self.g {
            g.thread_bound.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Debug builds: stops the process if the running G `g` is about to park
/// or yield with a [`ThreadBound`] live and no locked thread.
#[inline]
pub(crate) fn check_park(g: crate::g::GRef) {
    #[cfg(debug_assertions)]
    if g.thread_bound.load(Ordering::Relaxed) != 0 && g.locked_m_ptr().is_null() {
        thread_bound_parked(g);
    }
    #[cfg(not(debug_assertions))]
    let _ = g;
}

#[cfg(debug_assertions)]
#[cold]
#[inline(never)]
fn thread_bound_parked(g: crate::g::GRef) -> ! {
    let site = g.thread_bound_site.load(Ordering::Relaxed);
    // SAFETY: only `ThreadBound::new` stores here, a `&'static Location`.
    let site = unsafe { site.as_ref() }.map_or_else(|| "<unknown>".to_owned(), |l| l.to_string());
    crate::fatal::write_stderr(&[
        b"goroutine ",
        g.goid().to_string().as_bytes(),
        b" parks while a thread-bound value marked at ",
        site.as_bytes(),
        b" is live: it may resume on another thread (use g_local!, \
          lock_os_thread, or end the value before the call)\n",
    ]);
    crate::throw!("park: a thread-bound value is live across a park")
}
