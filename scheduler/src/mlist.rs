//! All Ms, counted, and the extra-M list: the data under one lock.
//!
//! Data layer: counters and a list, no scheduling logic. The engine counts
//! the Ms it starts and ends here (`register_m`, `unregister_m`);
//! `extram.rs` (a satellite) takes and gives back extra Ms for foreign
//! threads; the crash relay reads the counters.
//!
//! # The list
//!
//! A LIFO linked through `M::schedlink`, whose head word doubles as a spin
//! lock: `LOCKED` is a sentinel that no M address can equal. `lockextra`
//! swaps the head for the sentinel and returns the old head; `unlockextra`
//! stores the new head. No allocation, no parking_lot, no futex: a signal
//! handler (a fault on a foreign thread, see the crash-tracing layer) can take
//! an extra M, so every user blocks all signals around the critical section
//! and a handler on the same thread cannot find the lock held by itself.
//!
//! # Counters and their invariant
//!
//! | counter | meaning |
//! |---|---|
//! | [`mcount`] | Ms created minus Ms exited, **including** extra Ms |
//! | [`extra_m_count`] | Ms on the extra list: they have **no OS thread** |
//! | [`extra_m_in_use`] | extra Ms bound to a foreign thread |
//!
//! Each changes only while the list is locked, so a reader holding the lock
//! (the crash relay) sees a consistent pair, and
//!
//! > Ms that own an OS thread = `mcount − extra_m_count`
//!
//! holds at every unlock (checked in debug builds by walking `ALLMS`). The
//! crash relay waits for exactly that many Ms; counting the extra Ms on the
//! list made Go's `GOTRACEBACK=crash` wait 5 s for threads that did not exist
//! (fixed in Go by keeping `extraMCount` under this lock, which gort does from
//! the start).
//!
use crate::lock_rank::{self, Rank};
use crate::m::{ALLMS, M, MRef, MStatus};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Head value while the list is locked. M addresses are aligned, so 1 is
/// never one.
const LOCKED: usize = 1;

/// Head of the extra list: 0 (empty), [`LOCKED`], or an `&'static M`.
pub(crate) static EXTRA_HEAD: AtomicUsize = AtomicUsize::new(0);
pub(crate) static MCOUNT: AtomicUsize = AtomicUsize::new(0);
pub(crate) static EXTRA_M_COUNT: AtomicUsize = AtomicUsize::new(0);
pub(crate) static EXTRA_M_IN_USE: AtomicUsize = AtomicUsize::new(0);

/// Ms created minus Ms exited, extra Ms included.
pub fn mcount() -> usize {
    MCOUNT.load(Ordering::Acquire)
}

/// Extra Ms on the list (no OS thread).
pub fn extra_m_count() -> usize {
    EXTRA_M_COUNT.load(Ordering::Acquire)
}

/// Extra Ms bound to foreign threads.
pub fn extra_m_in_use() -> usize {
    EXTRA_M_IN_USE.load(Ordering::Acquire)
}

/// `(mcount, extra_m_count)` read together under the extra-list lock: their
/// difference is exactly the number of Ms that own an OS thread. For the
/// crash handler: async-signal-safe, the lock's rank not recorded.
pub fn counts_consistent() -> (usize, usize) {
    let _guard = ExtraLock::lock_in_handler();
    (
        MCOUNT.load(Ordering::Relaxed),
        EXTRA_M_COUNT.load(Ordering::Relaxed),
    )
}

/// The extra list, locked, with all signals blocked on this thread. Dropping
/// it stores `head` back and restores the signal mask.
pub(crate) struct ExtraLock {
    head: usize,
    old_mask: libc::sigset_t,
    /// Whether the lock's rank was recorded (see [`ExtraLock::lock_in_handler`]).
    ranked: bool,
}

impl ExtraLock {
    /// `lockextra`: blocks all signals, then spins until it owns the list.
    pub(crate) fn lock() -> ExtraLock {
        ExtraLock::lock_ranked(true)
    }

    /// [`ExtraLock::lock`] for a signal handler: its rank is not recorded.
    /// Every holder blocks signals, so a handler never interrupts its own
    /// thread's hold of this lock, and the handler holds no other lock; the
    /// ranks the interrupted code holds (a lock it sleeps on, a note) are
    /// not the handler's.
    pub(crate) fn lock_in_handler() -> ExtraLock {
        ExtraLock::lock_ranked(false)
    }

    fn lock_ranked(ranked: bool) -> ExtraLock {
        // SAFETY: sigset_t is plain data; sigfillset and pthread_sigmask
        // only write the sets we pass.
        let old_mask = unsafe {
            let mut all: libc::sigset_t = core::mem::zeroed();
            let mut old: libc::sigset_t = core::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            old
        };
        let mut spins = 0u32;
        loop {
            let old = EXTRA_HEAD.load(Ordering::Relaxed);
            if old != LOCKED
                && EXTRA_HEAD
                    .compare_exchange_weak(old, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                if ranked {
                    lock_rank::acquired(Rank::ExtraM, &EXTRA_HEAD as *const _ as usize);
                }
                return ExtraLock {
                    head: old,
                    old_mask,
                    ranked,
                };
            }
            spins += 1;
            if spins < 64 {
                core::hint::spin_loop();
            } else {
                // SAFETY: sched_yield is async-signal-safe and has no
                // preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }

    pub(crate) fn pop(&mut self) -> Option<MRef> {
        // SAFETY: the head is 0 or an &'static M pushed by `push`.
        let m = unsafe { (self.head as *const M).as_ref() }?;
        self.head = m.schedlink.load(Ordering::Relaxed) as usize;
        m.schedlink.store(core::ptr::null_mut(), Ordering::Relaxed);
        Some(m)
    }

    /// Whether the list is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.head == 0
    }

    pub(crate) fn push(&mut self, m: MRef) {
        m.schedlink.store(self.head as *mut M, Ordering::Relaxed);
        self.head = m as *const M as usize;
    }
}

impl Drop for ExtraLock {
    /// `unlockextra`.
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        check_invariant();
        if self.ranked {
            lock_rank::released(&EXTRA_HEAD as *const _ as usize);
        }
        EXTRA_HEAD.store(self.head, Ordering::Release);
        // SAFETY: restores the mask saved by `lock` on this thread.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, core::ptr::null_mut()) };
    }
}

/// Debug builds: Ms with a thread (or about to get one) must number exactly
/// `mcount − extra_m_count`. Called with the list locked, so no counter or
/// M status can change under us. Allocation-free.
#[cfg(debug_assertions)]
fn check_invariant() {
    let with_thread = ALLMS
        .iter()
        .filter(|m| !matches!(m.status(), MStatus::Dead | MStatus::Extra))
        .count();
    let (mc, extra) = (
        MCOUNT.load(Ordering::Relaxed),
        EXTRA_M_COUNT.load(Ordering::Relaxed),
    );
    if mc < extra || with_thread != mc - extra {
        crate::throw!("extram: Ms with a thread != mcount - extra_m_count");
    }
    let on_list = ALLMS
        .iter()
        .filter(|m| m.status() == MStatus::Extra)
        .count();
    if on_list != extra {
        crate::throw!("extram: extra_m_count disagrees with the list");
    }
}

/// Threads gort created that are alive now: the number `max_threads`
/// (`GORT_MAX_THREADS`) limits. Ms with an OS thread, minus extra Ms bound
/// to foreign threads: a C thread that called in once keeps its M until it
/// exits, but gort did not create that thread (Go's `checkmcount` leaves
/// extra Ms out the same way). Read under the extra-list lock, so the three
/// counters agree.
pub fn created_threads() -> usize {
    let _guard = ExtraLock::lock();
    created_threads_locked()
}

/// [`created_threads`] with the list already locked by the caller.
fn created_threads_locked() -> usize {
    let n = MCOUNT.load(Ordering::Relaxed);
    n - EXTRA_M_COUNT.load(Ordering::Relaxed) - EXTRA_M_IN_USE.load(Ordering::Relaxed)
}

/// Whether one more runtime M fits under `limit` now (sysmon asks before
/// a hand-off that would need a thread).
pub(crate) fn thread_room(limit: usize) -> bool {
    created_threads() < limit
}

/// Registers a new runtime M (status `New`) and counts it, under the lock.
/// Fails with the number of threads gort created if one more would exceed
/// `limit` (see [`created_threads`]).
pub(crate) fn register_m(limit: usize) -> Result<MRef, usize> {
    let _guard = ExtraLock::lock();
    let n = MCOUNT.load(Ordering::Relaxed);
    let threads = created_threads_locked();
    if threads >= limit {
        return Err(threads);
    }
    let m = ALLMS.push_with(M::new);
    MCOUNT.store(n + 1, Ordering::Release);
    Ok(m)
}

/// Counts an M whose thread has exited, under the lock.
pub(crate) fn unregister_m(m: MRef) {
    let _guard = ExtraLock::lock();
    m.set_status(MStatus::Dead);
    MCOUNT.fetch_sub(1, Ordering::Release);
}
