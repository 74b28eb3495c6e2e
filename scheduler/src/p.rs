//! P: the right to run Gs, with the local run queue, timers, and caches.
//!
//! There are `procs` Ps, made once when the runtime starts and never freed.
//! An M must hold a P to run Gs. The local run queue is a crossbeam-deque
//! `Worker` (LIFO pops are not used: it is a FIFO `Worker`) plus a `runnext`
//! slot for the G most recently readied by this P's running G, which runs
//! next (a G that wakes another and then blocks hands its time slice over,
//! as in Go). Other Ms steal from the queue through its `Stealer` and may
//! also take `runnext` with an atomic swap.

use crate::g::{G, GRef};
use crate::m::M;
use crate::stack::StackCache;
use crate::timer::Timers;
use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use crossbeam_deque::{Stealer, Worker};

/// State of a P.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PStatus {
    /// On the idle list; no M holds it. Its local queue and `runnext` are
    /// empty (an M empties them before releasing the P), its timers may not
    /// be: Ms looking for work run them.
    Idle = 0,
    /// Held by exactly one M (`p.m`), which alone touches the owner fields.
    Running = 1,
    /// Its M is in a syscall or C call (`runtime::syscall`) and does not use
    /// it. The M takes it back on return if it is still `Syscall` with the
    /// same sequence number; until then `sysmon` may take it (compare and
    /// swap to `Idle`) and hand it to another M.
    Syscall = 2,
    /// Its M runs user code of a G (between two runtime calls) and lends
    /// the P loosely, exactly as in a syscall: the M takes it back with a
    /// compare-and-swap at the G's next runtime call (`preempt::enter`),
    /// and `sysmon` may retake it (compare and swap to `Idle`) when the same
    /// G has kept it for a whole time slice while other work waits. See
    /// `preempt.rs`.
    Lent = 3,
}

/// Most Gs a P keeps on its own free list before moving half to the global
/// list.
pub(crate) const GFREE_MAX: usize = 64;

/// The right to run Gs. Fields marked *owner* are touched only by the M
/// holding the P.
pub struct P {
    /// Index in the Ps array.
    pub id: usize,
    /// `seq << 8 | PStatus`: the sequence number changes at every syscall
    /// entry, so an M returning from a syscall cannot take back a P that was
    /// retaken, used and put in a syscall again in between (ABA).
    state: AtomicU64,
    /// The M holding this P, or null.
    pub(crate) m: AtomicPtr<M>,
    /// The next G to run, ahead of the queue; stealable by swap.
    pub(crate) runnext: AtomicPtr<G>,
    /// Owner: the local run queue.
    runq: UnsafeCell<Worker<GRef>>,
    /// Other Ms' handle on the local run queue.
    pub(crate) stealer: Stealer<GRef>,
    /// This P's timers.
    pub(crate) timers: Timers,
    /// Owner: free G structs.
    pub(crate) gfree: UnsafeCell<Vec<GRef>>,
    /// Owner: free stacks of the default size.
    pub(crate) stacks: UnsafeCell<StackCache>,
    /// Owner: schedule count, for the every-61st global queue check.
    pub(crate) schedtick: Cell<u32>,
    /// Owner: ids handed out in batches to spare the global counter.
    pub(crate) goid_next: Cell<u64>,
    pub(crate) goid_end: Cell<u64>,
}

// SAFETY: the owner fields (`runq`, `gfree`, `stacks`, `schedtick`,
// `goid_*`) are touched only by the M that holds the P; a P changes hands
// only through the sched lock or an M's `nextp` hand-off plus note wake-up,
// both synchronising. The rest is atomic or internally synchronised.
unsafe impl Sync for P {}
// SAFETY: as above.
unsafe impl Send for P {}

impl core::fmt::Debug for P {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("P")
            .field("id", &self.id)
            .field("status", &self.status())
            .finish()
    }
}

impl P {
    pub(crate) fn new(id: usize) -> P {
        let runq = Worker::new_fifo();
        let stealer = runq.stealer();
        P {
            id,
            state: AtomicU64::new(PStatus::Idle as u64),
            m: AtomicPtr::new(core::ptr::null_mut()),
            runnext: AtomicPtr::new(core::ptr::null_mut()),
            runq: UnsafeCell::new(runq),
            stealer,
            timers: Timers::default(),
            gfree: UnsafeCell::new(Vec::new()),
            stacks: UnsafeCell::new(StackCache::new()),
            schedtick: Cell::new(0),
            goid_next: Cell::new(0),
            goid_end: Cell::new(0),
        }
    }

    /// Current status.
    pub fn status(&self) -> PStatus {
        Self::status_of(self.state.load(Ordering::Acquire))
    }

    fn status_of(word: u64) -> PStatus {
        match word & 0xff {
            1 => PStatus::Running,
            2 => PStatus::Syscall,
            3 => PStatus::Lent,
            _ => PStatus::Idle,
        }
    }

    /// Sets the status, keeping the sequence number.
    pub(crate) fn set_status(&self, s: PStatus) {
        let w = self.state.load(Ordering::Relaxed);
        self.state.store((w & !0xff) | s as u64, Ordering::Release);
    }

    /// Owner: marks the P as in a syscall with a new sequence number and
    /// returns the state word to give back to [`P::exit_syscall_fast`].
    pub(crate) fn enter_syscall(&self) -> u64 {
        self.set_aside(PStatus::Syscall)
    }

    /// Owner: lends the P while its G runs user code (see `preempt.rs`);
    /// same contract as [`P::enter_syscall`].
    pub(crate) fn lend(&self) -> u64 {
        self.set_aside(PStatus::Lent)
    }

    fn set_aside(&self, status: PStatus) -> u64 {
        let w = self.state.load(Ordering::Relaxed);
        let next = ((w >> 8).wrapping_add(1) << 8) | status as u64;
        self.state.store(next, Ordering::Release);
        next
    }

    /// Takes the P back after a syscall if nobody retook it meanwhile.
    pub(crate) fn exit_syscall_fast(&self, word: u64) -> bool {
        let running = (word & !0xff) | PStatus::Running as u64;
        self.state
            .compare_exchange(word, running, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// The raw state word, for `sysmon`.
    pub(crate) fn state_word(&self) -> u64 {
        self.state.load(Ordering::Acquire)
    }

    /// `sysmon`: takes a P from an M in a syscall (or lending it) if the
    /// state is still `word` (a `Syscall` or `Lent` state). On success the P
    /// is `Idle` and unowned.
    pub(crate) fn retake(&self, word: u64) -> bool {
        if !matches!(Self::status_of(word), PStatus::Syscall | PStatus::Lent) {
            return false;
        }
        let idle = (word & !0xff) | PStatus::Idle as u64;
        if self
            .state
            .compare_exchange(word, idle, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.m.store(core::ptr::null_mut(), Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Owner only: the local queue.
    ///
    /// # Safety
    ///
    /// The caller's M holds this P, and the reference does not outlive that.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn runq(&self) -> &Worker<GRef> {
        // SAFETY: per the contract, only the holding M gets here.
        unsafe { &*self.runq.get() }
    }

    /// Puts `g` on this P's queue: in `runnext` if `next` (kicking the old
    /// `runnext` to the back of the queue), else at the back.
    ///
    /// # Safety
    ///
    /// The caller's M holds this P.
    pub(crate) unsafe fn runq_put(&self, g: GRef, next: bool) {
        // SAFETY: the caller holds the P.
        let q = unsafe { self.runq() };
        if next {
            let old = self.runnext.swap(g.as_ptr(), Ordering::AcqRel);
            // SAFETY: runnext holds null or pointers from GRef::as_ptr.
            if let Some(old) = unsafe { GRef::from_ptr(old) } {
                q.push(old);
            }
        } else {
            q.push(g);
        }
    }

    /// Takes the next G of the local queue: `runnext` first.
    ///
    /// # Safety
    ///
    /// The caller's M holds this P.
    pub(crate) unsafe fn runq_get(&self) -> Option<GRef> {
        if !self.runnext.load(Ordering::Relaxed).is_null() {
            let g = self.runnext.swap(core::ptr::null_mut(), Ordering::AcqRel);
            // SAFETY: runnext holds null or pointers from GRef::as_ptr.
            if let Some(g) = unsafe { GRef::from_ptr(g) } {
                return Some(g);
            }
        }
        // SAFETY: the caller holds the P.
        unsafe { self.runq() }.pop()
    }

    /// Whether the local queue looks empty (racy unless the caller holds
    /// the P; used for re-checks before sleeping).
    pub(crate) fn runq_is_empty(&self) -> bool {
        self.runnext.load(Ordering::Acquire).is_null() && self.stealer.is_empty()
    }

    /// Approximate number of queued Gs.
    pub fn runq_len(&self) -> usize {
        self.stealer.len() + usize::from(!self.runnext.load(Ordering::Relaxed).is_null())
    }
}
