//! Extra Ms: how threads the runtime did not create call into it.
//!
//! A C library may call back on a thread of its own (an audio callback, a
//! database driver's worker). Code in the callback must be able to spawn Gs,
//! join and sleep like any G, so the thread needs an M. As in Go, gort keeps
//! a pool of **extra Ms** for this: `needm` takes one off the list and binds
//! it to the calling thread, `dropm` puts it back.
//!
//! The list and the counters of all Ms live in the data layer
//! (`mlist.rs`); this module is the satellite that uses them for foreign
//! threads.
//!
//! # Always a spare
//!
//! The first extra M is made when the runtime starts. A `needm` that takes
//! the last one makes the next one right after binding (outside the critical
//! section, allocating freely) — unless it runs in a signal handler, where it
//! only sets [`NEED_EXTRA_M`] and the next ordinary `needm`/`callback` makes
//! it. A `needm` that finds the list empty outside a signal handler makes an
//! M itself; inside one, it fails and the handler falls back.
//!
//! # Binding
//!
//! A foreign thread keeps its M across callbacks (Go 1.21's design: no
//! `needm`/`dropm` per call). A pthread key destructor gives the M back when
//! the thread exits; `dropm` gives it back at once.

use crate::g::{GRef, GStatus};
use crate::m::{ALLMS, M, MRef, MStatus, current_m, m_hooks, set_current_m};
use crate::mlist::{EXTRA_HEAD, EXTRA_M_COUNT, EXTRA_M_IN_USE, ExtraLock, MCOUNT};
use core::sync::atomic::{AtomicBool, Ordering};

pub use crate::mlist::{counts_consistent, created_threads, extra_m_count, extra_m_in_use, mcount};

/// Set when a `needm` inside a signal handler took the last extra M and
/// could not make a new one.
pub static NEED_EXTRA_M: AtomicBool = AtomicBool::new(false);

/// Makes one extra M (with its callback G and stack) and puts it on the
/// list (Go's `oneNewExtraM`). Allocates: never call from a signal handler.
pub fn one_new_extra_m() -> Result<(), crate::stack::StackError> {
    let s = crate::state::sched();
    // Not counted by `max_stacks`, which bounds the Gs a program spawns.
    let stack = s.stacks.alloc_outside_limit(s.config.stack_size)?;
    let g = crate::engine::gfget(None);
    // SAFETY: g came off a free list and is ours; the stack too.
    unsafe { g.attach_stack(stack) };
    g.set_status(GStatus::Idle);
    let mut list = ExtraLock::lock();
    let m = ALLMS.push_with(|id| M::new_kind(id, true));
    m.cb_g.store(g.as_ptr(), Ordering::Relaxed);
    m.set_status(MStatus::Extra);
    list.push(m);
    MCOUNT.fetch_add(1, Ordering::Release);
    EXTRA_M_COUNT.fetch_add(1, Ordering::Release);
    Ok(())
}

/// Ensures the list is not empty (the "always a spare" rule), making an M
/// if it is or if a signal handler asked for one.
pub fn ensure_spare() {
    let empty = EXTRA_HEAD.load(Ordering::Acquire) == 0;
    if (empty || NEED_EXTRA_M.swap(false, Ordering::AcqRel)) && one_new_extra_m().is_err() {
        // No memory for a stack: the next needm reports it.
        NEED_EXTRA_M.store(true, Ordering::Release);
    }
}

/// Makes the spare a signal handler asked for, if it did. Cheap when not.
pub(crate) fn ensure_spare_if_needed() {
    if NEED_EXTRA_M.load(Ordering::Relaxed) {
        ensure_spare();
    }
}

/// Why a foreign thread could not get an M.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeedmError {
    /// The list is empty and we are in a signal handler (no allocation).
    NoSpareInSignal,
    /// No extra M could be made (no memory for its stack).
    OutOfMemory,
    /// The calling thread already has an M.
    AlreadyBound,
}

impl core::fmt::Display for NeedmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            NeedmError::NoSpareInSignal => {
                "no spare extra M and cannot allocate in a signal handler"
            }
            NeedmError::OutOfMemory => "cannot make an extra M: out of memory for its stack",
            NeedmError::AlreadyBound => "this thread already has an M",
        })
    }
}

impl std::error::Error for NeedmError {}

/// Binds an extra M to the calling foreign thread (Go's `needm`). With
/// `in_signal`, allocates nothing and takes no lock but the extra list's.
pub fn needm(in_signal: bool) -> Result<MRef, NeedmError> {
    if current_m().is_some() {
        return Err(NeedmError::AlreadyBound);
    }
    let m = loop {
        let mut list = if in_signal {
            ExtraLock::lock_in_handler()
        } else {
            ExtraLock::lock()
        };
        if let Some(m) = list.pop() {
            EXTRA_M_COUNT.fetch_sub(1, Ordering::Release);
            EXTRA_M_IN_USE.fetch_add(1, Ordering::Release);
            // The M owns this thread from now on: counted as such before
            // the unlock re-checks the invariant.
            m.set_status(MStatus::Running);
            let now_empty = list.is_empty();
            drop(list);
            if now_empty {
                NEED_EXTRA_M.store(true, Ordering::Release);
            }
            break m;
        }
        drop(list);
        if in_signal {
            return Err(NeedmError::NoSpareInSignal);
        }
        one_new_extra_m().map_err(|_| NeedmError::OutOfMemory)?;
    };
    set_current_m(Some(m));
    m.set_tid();
    if !in_signal {
        bind_thread_exit(m);
        if let Some(h) = m_hooks() {
            (h.start)(m);
        }
        ensure_spare();
    }
    Ok(m)
}

/// Why `dropm` refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropmError {
    /// The thread has no M.
    NoM,
    /// The thread's M is a runtime M, not an extra M.
    NotExtra,
    /// A callback is running on this thread (dropm from inside a callback).
    InCallback,
}

impl core::fmt::Display for DropmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DropmError::NoM => "this thread has no M",
            DropmError::NotExtra => "this thread is a runtime thread, not a foreign one",
            DropmError::InCallback => "dropm called from inside a callback",
        })
    }
}

impl std::error::Error for DropmError {}

/// Gives the calling foreign thread's extra M back to the list (Go's
/// `dropm`).
pub fn dropm() -> Result<(), DropmError> {
    let Some(m) = current_m() else {
        return Err(DropmError::NoM);
    };
    if !m.extra {
        return Err(DropmError::NotExtra);
    }
    if m.curg().is_some() || !m.locked_g.load(Ordering::Relaxed).is_null() {
        return Err(DropmError::InCallback);
    }
    unbind_thread_exit();
    drop_m(m);
    Ok(())
}

fn drop_m(m: MRef) {
    if let Some(h) = m_hooks() {
        (h.exit)(m);
    }
    set_current_m(None);
    m.clear_tid();
    let mut list = ExtraLock::lock();
    m.set_status(MStatus::Extra);
    list.push(m);
    EXTRA_M_COUNT.fetch_add(1, Ordering::Release);
    EXTRA_M_IN_USE.fetch_sub(1, Ordering::Release);
}

/// The callback G of an extra M.
pub(crate) fn cb_g(m: MRef) -> Option<GRef> {
    // SAFETY: cb_g holds null or a G pointer set by one_new_extra_m.
    unsafe { GRef::from_ptr(m.cb_g.load(Ordering::Relaxed)) }
}

// ---------------------------------------------------------------------------
// Giving the M back at thread exit
// ---------------------------------------------------------------------------

static KEY: std::sync::OnceLock<libc::pthread_key_t> = std::sync::OnceLock::new();

/// Runs at the exit of a foreign thread that still holds an M.
unsafe extern "C" fn thread_exit_destructor(value: *mut libc::c_void) {
    let m = value.cast::<M>().cast_const();
    // SAFETY: the key only ever holds an &'static M set by bind_thread_exit.
    let Some(m) = (unsafe { m.as_ref() }) else {
        return;
    };
    // Thread-locals of this thread may already be torn down: make sure the
    // current-M slot says this M before dropping it.
    set_current_m(Some(m));
    drop_m(m);
}

fn key() -> libc::pthread_key_t {
    *KEY.get_or_init(|| {
        let mut k: libc::pthread_key_t = 0;
        // SAFETY: k is a valid out-pointer; the destructor has the right
        // signature.
        let rc = unsafe { libc::pthread_key_create(&mut k, Some(thread_exit_destructor)) };
        if rc != 0 {
            crate::throw!("needm: pthread_key_create failed");
        }
        k
    })
}

fn bind_thread_exit(m: MRef) {
    // SAFETY: the key is valid; the value is an &'static M.
    unsafe { libc::pthread_setspecific(key(), m as *const M as *const libc::c_void) };
}

fn unbind_thread_exit() {
    // SAFETY: the key is valid.
    unsafe { libc::pthread_setspecific(key(), core::ptr::null()) };
}

#[cfg(test)]
mod tests;
