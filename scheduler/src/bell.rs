//! sysmon's doorbell: the flags an M reads on its hot paths to know
//! whether sysmon sleeps, and the condition variable that wakes it.
//!
//! Data layer: the engine and the satellites ring it (`note_syscall`,
//! `note_busy`, `note_work_waits`) without calling into sysmon, which
//! sleeps on it (`sysmon.rs` says when and for how long).

use crate::lock_rank::{Rank, RankedMutex};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use parking_lot::Condvar;

/// Whether sysmon sleeps until the next syscall.
pub(crate) static PARKED: AtomicBool = AtomicBool::new(false);
/// Whether sysmon sleeps in a long wait a nudge may cut short.
pub(crate) static NUDGEABLE: AtomicBool = AtomicBool::new(false);
pub(crate) static WAKE: RankedMutex<bool> = RankedMutex::new(Rank::SysmonWake, false);
pub(crate) static WAKE_CV: Condvar = Condvar::new();

/// Called on every syscall entry: wakes sysmon if it sleeps deeply. One
/// relaxed load on the fast path.
#[inline]
pub(crate) fn note_syscall() {
    if PARKED.load(Ordering::Relaxed) {
        wake();
    }
}

/// Called when a P leaves the idle list (after `npidle` was decremented,
/// `SeqCst`): wakes sysmon if it sleeps deeply, so a G that then blocks its
/// M without a runtime call is noticed. Pairs with the `SeqCst` store of
/// `PARKED` and re-check of `npidle` before sysmon sleeps.
#[inline]
pub(crate) fn note_busy() {
    // SeqCst: the load of the Dekker pair in the doc comment above:
    // `pidle_get`'s decrement of `npidle`, then this, against `run`'s store of
    // `PARKED`, then its load of `npidle`.
    if PARKED.load(Ordering::SeqCst) {
        wake();
    }
}

/// Called when work was queued while every P is held: if sysmon has slept
/// long enough (see the module docs), wake it to look at the Ps' threads.
/// One relaxed load on the fast path.
#[inline]
pub(crate) fn note_work_waits() {
    if NUDGEABLE.load(Ordering::Relaxed) {
        nudge();
    }
}

/// When the last nudge was sent (runtime clock).
pub(crate) static NUDGED_AT: AtomicU64 = AtomicU64::new(0);

#[cold]
fn nudge() {
    if NUDGEABLE.swap(false, Ordering::AcqRel) {
        NUDGED_AT.store(crate::clock::nanotime(), Ordering::Relaxed);
        *WAKE.lock() = true;
        WAKE_CV.notify_one();
    }
}

#[cold]
fn wake() {
    if PARKED.swap(false, Ordering::AcqRel) {
        *WAKE.lock() = true;
        WAKE_CV.notify_one();
    }
}
