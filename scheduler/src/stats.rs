//! A snapshot of the scheduler for tests and dashboards.

use crate::g::{ALLGS, GStatus};
use crate::m::{ALLMS, MStatus};
use crate::stack::GuardKind;
use crate::state::sched;
use core::sync::atomic::{AtomicU64, Ordering};

/// Ps that `sysmon` took from an M blocked in the kernel in plain code.
pub(crate) static RETAKES_KERNEL: AtomicU64 = AtomicU64::new(0);
/// Ps taken from a G that ran its own code a whole slice.
pub(crate) static RETAKES_SLICE: AtomicU64 = AtomicU64::new(0);
/// Ps taken from an M inside `runtime::syscall`.
pub(crate) static RETAKES_SYSCALL: AtomicU64 = AtomicU64::new(0);
/// Times a P stayed with a blocked M because another thread would have
/// exceeded `GORT_MAX_THREADS`.
pub(crate) static THREAD_LIMIT_STALLS: AtomicU64 = AtomicU64::new(0);

/// Counts one event of a statistics counter.
#[inline]
pub(crate) fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Counts taken from the scheduler at one moment. Each figure is read
/// atomically, the set as a whole is not: a G moving between states while
/// the snapshot is taken may be counted in either.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Ps (`GORT_MAXPROCS`).
    pub procs: usize,
    /// Ps no M holds.
    pub idle_procs: usize,
    /// Ms created minus Ms exited, extra Ms included.
    pub mcount: usize,
    /// Extra Ms on the pool's list (no OS thread).
    pub extra_m_count: usize,
    /// Extra Ms bound to foreign threads.
    pub extra_m_in_use: usize,
    /// Gs in a syscall or C call.
    pub syscall_gs: usize,
    /// Ms asleep without work.
    pub idle_ms: usize,
    /// Ms looking for work.
    pub spinning_ms: usize,
    /// Gs on a run queue.
    pub runnable_gs: usize,
    /// Gs executing.
    pub running_gs: usize,
    /// Gs parked.
    pub waiting_gs: usize,
    /// G structs ever made (live ones plus the free lists).
    pub allocated_gs: usize,
    /// G stacks in use.
    pub live_stacks: usize,
    /// Free stacks kept for reuse.
    pub pooled_stacks: usize,
    /// How stack guard pages are made.
    pub guard: Option<GuardKind>,
    /// Ps `sysmon` moved on from an M whose thread it found asleep in the
    /// kernel in plain code (`std::thread::sleep`, blocking std I/O, a std
    /// lock, a C call), since the runtime started.
    pub retakes_kernel: u64,
    /// Ps moved on from a G that ran its own code for a whole slice
    /// (~10 ms) while other work waited.
    pub retakes_slice: u64,
    /// Ps moved on from an M inside `runtime::syscall`.
    pub retakes_syscall: u64,
    /// Times a P stayed with a blocked M because starting another thread
    /// would have exceeded `GORT_MAX_THREADS` (the program stalls instead
    /// of failing).
    pub thread_limit_stalls: u64,
}

impl Stats {
    /// Gs that exist: runnable, running, waiting or in a syscall.
    pub fn live_gs(&self) -> usize {
        self.runnable_gs + self.running_gs + self.waiting_gs + self.syscall_gs
    }

    /// Threads gort created that are alive: Ms with a thread minus extra Ms
    /// bound to foreign threads. The number `max_threads` limits.
    pub fn created_threads(&self) -> usize {
        self.threaded_ms().saturating_sub(self.extra_m_in_use)
    }

    /// Ms that own an OS thread: `mcount - extra_m_count`.
    pub fn threaded_ms(&self) -> usize {
        self.mcount.saturating_sub(self.extra_m_count)
    }
}

/// Takes a snapshot. Walks every G struct: O(Gs ever allocated), no locks.
pub fn stats() -> Stats {
    let s = sched();
    let mut st = Stats {
        procs: s.procs(),
        idle_procs: s.npidle(),
        mcount: crate::mlist::mcount(),
        extra_m_count: crate::mlist::extra_m_count(),
        extra_m_in_use: crate::mlist::extra_m_in_use(),
        idle_ms: ALLMS.iter().filter(|m| m.status() == MStatus::Idle).count(),
        spinning_ms: s.nmspinning(),
        allocated_gs: ALLGS.len(),
        live_stacks: s.stacks.live(),
        pooled_stacks: s.stacks.pooled(),
        guard: Some(s.stacks.guard_kind()),
        retakes_kernel: RETAKES_KERNEL.load(Ordering::Relaxed),
        retakes_slice: RETAKES_SLICE.load(Ordering::Relaxed),
        retakes_syscall: RETAKES_SYSCALL.load(Ordering::Relaxed),
        thread_limit_stalls: THREAD_LIMIT_STALLS.load(Ordering::Relaxed),
        ..Stats::default()
    };
    for g in ALLGS.iter() {
        match g.status() {
            GStatus::Runnable => st.runnable_gs += 1,
            GStatus::Running => st.running_gs += 1,
            GStatus::Waiting => st.waiting_gs += 1,
            GStatus::Syscall => st.syscall_gs += 1,
            GStatus::Idle | GStatus::Dead => {}
        }
    }
    st
}
