//! Extra Ms: how threads the runtime did not create call into it.
//!
//! A C library may call back on a thread of its own (an audio callback, a
//! database driver's worker). Code in the callback must be able to spawn Gs,
//! join and sleep like any G, so the thread needs an M. As in Go, gort keeps
//! a pool of **extra Ms** for this: `needm` takes one off the list and binds
//! it to the calling thread, `dropm` puts it back.
//!
//! # The list
//!
//! A LIFO linked through `M::schedlink`, whose head word doubles as a spin
//! lock: [`LOCKED`] is a sentinel that no M address can equal. `lockextra`
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
use crate::lock_rank::{self, Rank};
use crate::m::{ALLMS, M, MRef, MStatus, current_m, m_hooks, set_current_m};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Head value while the list is locked. M addresses are aligned, so 1 is
/// never one.
const LOCKED: usize = 1;

/// Head of the extra list: 0 (empty), [`LOCKED`], or an `&'static M`.
static EXTRA_HEAD: AtomicUsize = AtomicUsize::new(0);
static MCOUNT: AtomicUsize = AtomicUsize::new(0);
static EXTRA_M_COUNT: AtomicUsize = AtomicUsize::new(0);
static EXTRA_M_IN_USE: AtomicUsize = AtomicUsize::new(0);

/// Set when a `needm` inside a signal handler took the last extra M and
/// could not make a new one.
pub static NEED_EXTRA_M: AtomicBool = AtomicBool::new(false);

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
struct ExtraLock {
    head: usize,
    old_mask: libc::sigset_t,
    /// Whether the lock's rank was recorded (see [`ExtraLock::lock_in_handler`]).
    ranked: bool,
}

impl ExtraLock {
    /// `lockextra`: blocks all signals, then spins until it owns the list.
    fn lock() -> ExtraLock {
        ExtraLock::lock_ranked(true)
    }

    /// [`ExtraLock::lock`] for a signal handler: its rank is not recorded.
    /// Every holder blocks signals, so a handler never interrupts its own
    /// thread's hold of this lock, and the handler holds no other lock; the
    /// ranks the interrupted code holds (a lock it sleeps on, a note) are
    /// not the handler's.
    fn lock_in_handler() -> ExtraLock {
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

    fn pop(&mut self) -> Option<MRef> {
        // SAFETY: the head is 0 or an &'static M pushed by `push`.
        let m = unsafe { (self.head as *const M).as_ref() }?;
        self.head = m.schedlink.load(Ordering::Relaxed) as usize;
        m.schedlink.store(core::ptr::null_mut(), Ordering::Relaxed);
        Some(m)
    }

    fn push(&mut self, m: MRef) {
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

/// Makes one extra M (with its callback G and stack) and puts it on the
/// list (Go's `oneNewExtraM`). Allocates: never call from a signal handler.
pub fn one_new_extra_m() -> Result<(), crate::stack::StackError> {
    let s = crate::sched::sched();
    // Not counted by `max_stacks`, which bounds the Gs a program spawns.
    let stack = s.stacks.alloc_outside_limit(s.config.stack_size)?;
    let g = crate::schedule::gfget(None);
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
            let now_empty = list.head == 0;
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
