//! Deadlock detection (Go's `checkdead`): when every G is parked on
//! something only another G could end, and no thread that could wake one is
//! left, report it instead of hanging.
//!
//! A satellite: the engine calls `check_dead` through its hooks when an
//! M is about to sleep with no timer pending; sysmon calls it during its
//! quiet rounds.

use crate::clock::NEVER;
use crate::engine::{earliest_timer, work_anywhere};
use crate::g::GStatus;
use crate::state::sched;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Go's `checkdead`: called when an M is about to sleep with no timer
/// pending. If every G is parked on something only another G could end and
/// the only other threads are the runtime's own and plain threads blocked in
/// runtime waits, nothing can ever run again: report the deadlock (a fatal
/// error with the dump, exit 2).
///
/// Not a deadlock: a G in a syscall, a timer, a G waiting for I/O (the
/// peer may send), a foreign thread holding an extra M (it may call back), or any other thread of the process (it may
/// wake a G) — counted through `/proc/self/task`.
///
/// Sysmon also calls it during its quiet rounds on an idle runtime (about
/// 0.4 s). A check that finds no blocked thread, or more threads than it can
/// account for, wakes sysmon for those rounds, and so does a plain thread
/// that starts waiting on a G while every P is idle: otherwise a thread
/// that was still exiting (gort's own symbol-table thread, right after
/// start-up), or the main thread reaching its `join` after the last M went
/// to sleep, would leave a deadlock that nothing looks at again. A check
/// that found more threads than it can account for also leaves
/// [`dead_unsure`] set: sysmon, asleep on an idle runtime, then looks again
/// now and then (`check_dead(false)`), so a thread that exits long after
/// without waking anyone still ends in the report.
///
/// `wake_sysmon`: ask sysmon for its quiet rounds where the check may be
/// racing with a thread that is about to block or exit (false for sysmon's
/// own looks while it sleeps).
pub(crate) fn check_dead(wake_sysmon: bool) {
    let unsure = check_dead_unsure(wake_sysmon);
    DEAD_UNSURE.store(unsure, Ordering::Relaxed);
}

/// Whether the last deadlock check found every G parked but a thread it
/// could not account for (which may still wake one).
pub(crate) fn dead_unsure() -> bool {
    DEAD_UNSURE.load(Ordering::Relaxed)
}

/// See [`dead_unsure`].
static DEAD_UNSURE: AtomicBool = AtomicBool::new(false);

/// Threads the runtime's crates keep for themselves that never wake a G
/// (the crash dump's symbolizer thread): the deadlock check counts them as
/// accounted for.
static HELPER_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Declares one more thread of the runtime's own that never wakes a G and
/// lives until the process ends (see `check_dead`).
pub fn add_helper_thread() {
    HELPER_THREADS.fetch_add(1, Ordering::Relaxed);
}

/// [`check_dead`]'s check; returns whether only threads it could not
/// account for were in the way.
fn check_dead_unsure(wake_sysmon: bool) -> bool {
    let s = sched();
    // SeqCst: these two loads sit in the one order of the counters' SeqCst
    // updates (`pidle_get`, `pidle_put`, the spinning hand-offs), so "every P
    // idle, no M spinning" is never pieced together from an old `npidle` and a
    // newer `nmspinning`.
    if s.npidle.load(Ordering::SeqCst) != s.procs()
        || s.nmspinning.load(Ordering::SeqCst) != 0
        || crate::mlist::extra_m_in_use() != 0
        || earliest_timer() != NEVER
        || crate::netpoll::waiting() != 0
    {
        return false;
    }
    let blocked = crate::waiter::blocked_threads();
    if blocked == 0 {
        // No thread waits on a G: whoever runs next is outside the runtime.
        // One may be about to (racing with this check): sysmon looks again.
        if wake_sysmon {
            crate::bell::note_syscall();
        }
        return false;
    }
    let mut waiting = 0usize;
    for g in crate::g::ALLGS.iter() {
        match g.status() {
            GStatus::Waiting => waiting += 1,
            GStatus::Runnable | GStatus::Running | GStatus::Syscall => return false,
            GStatus::Idle | GStatus::Dead => {}
        }
    }
    if waiting == 0 || !s.global.is_empty() || work_anywhere() {
        return false;
    }
    // Threads that cannot wake anyone: Ms with a thread (this one included),
    // sysmon, the blocked plain threads and the runtime's helper threads.
    let known = crate::mlist::mcount() - crate::mlist::extra_m_count()
        + 1
        + blocked
        + HELPER_THREADS.load(Ordering::Relaxed);
    let tasks = std::fs::read_dir("/proc/self/task").map_or(usize::MAX, |d| d.count());
    if tasks > known {
        // Some other thread may still wake a G, or may be exiting: have
        // sysmon (woken as for a syscall) look again during its quiet rounds.
        if wake_sysmon {
            crate::bell::note_syscall();
        }
        return true;
    }
    crate::throw!("all goroutines are asleep - deadlock!");
}
