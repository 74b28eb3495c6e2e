//! P: the right to run Gs, with the local run queue, timers, and caches.
//!
//! There are `procs` Ps, made once when the runtime starts and never freed.
//! An M must hold a P to run Gs. The local run queue is a crossbeam-deque
//! `Worker` (LIFO pops are not used: it is a FIFO `Worker`) plus a `runnext`
//! slot for the G most recently readied by this P's running G, which runs
//! next (a G that wakes another and then blocks hands its time slice over,
//! as in Go). Other Ms steal from the queue through its `Stealer` and may
//! also take `runnext`.
//!
//! # The `runnext` hand-off
//!
//! The owner puts or takes `runnext` at every `ready` and most switches;
//! a thief takes it only as a last resort, after a grace period. So the
//! owner does not use an atomic swap (a locked instruction, ~9 ns) but a
//! Dekker hand-shake with asymmetric barriers (`barrier.rs`):
//!
//! ```text
//! owner                                thief
//! runnext_owner = true                 runnext_thief = true (CAS: one thief)
//! barrier::light()                     barrier::heavy()
//! if runnext_thief: clear, wait, retry wait while runnext_owner
//! plain load + store of runnext        plain load + store of runnext
//! runnext_owner = false                runnext_thief = false
//! ```
//!
//! The barriers guarantee that one side sees the other's flag, so the two
//! never touch `runnext` at the same time. The owner's wait (a thief is
//! mid-way) is rare and short; the thief's `membarrier` (~0.4 µs) sits on
//! a path that has already waited microseconds.

use crate::g::{G, GRef};
use crate::m::M;
use crate::stack::StackCache;
use crate::timer::Timers;
use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use crossbeam_deque::{Stealer, Worker};
use crossbeam_utils::CachePadded;

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
    /// the P loosely, as in a syscall: the M claims it back at the G's next
    /// runtime call (`preempt::enter`, [`P::take_back_lent`]), and `sysmon`
    /// may retake it when the same G has kept it for a whole time slice
    /// while other work waits. See `preempt.rs`.
    Lent = 3,
    /// `sysmon` is retaking a `Lent` P (compare and swap from that exact
    /// `Lent` word) and checks, behind a heavy barrier, whether the M
    /// claimed it back meanwhile: then it restores the `Lent` word and the
    /// M keeps the P; else the P becomes `Idle`. Lasts well under a
    /// microsecond; an M taking its P back waits for the outcome.
    Retaking = 4,
}

/// Spins until `flag` is clear: the other side of the `runnext` hand-shake
/// is a few instructions from clearing it, unless its thread was
/// descheduled mid-way (then give the CPU up).
fn wait_while(flag: &AtomicBool) {
    let mut spins = 0u32;
    while flag.load(Ordering::Acquire) {
        spins += 1;
        if spins < 1_000 {
            core::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// An M's claim on the P it lent (see [`P::take_back_lent`]): which P and
/// which `Lent` word. Each M has its own and only that M writes it, so an M
/// that comes back late to a P retaken long ago cannot overwrite the claim
/// of the M that holds the P now.
#[derive(Debug, Default)]
pub struct LentClaim {
    p: AtomicPtr<P>,
    word: AtomicU64,
}

/// Most Gs a P keeps on its own free list before moving half to the global
/// list.
pub(crate) const GFREE_MAX: usize = 64;

/// The right to run Gs. Fields marked *owner* are touched only by the M
/// holding the P.
///
/// Aligned to 128 bytes (a cache line and the adjacent line the prefetcher
/// pulls with it): Ps live side by side in one array, and each is written
/// all the time by its own M, so unaligned neighbours would share lines.
#[repr(align(128))]
pub struct P {
    /// Index in the Ps array.
    pub id: usize,
    /// `seq << 8 | PStatus`: the sequence number changes at every syscall
    /// entry, so an M returning from a syscall cannot take back a P that was
    /// retaken, used and put in a syscall again in between (ABA).
    state: AtomicU64,
    /// The M holding this P, or null.
    pub(crate) m: AtomicPtr<M>,
    /// The next G to run, ahead of the queue (see the module docs for who
    /// may write it and how).
    runnext: AtomicPtr<G>,
    /// The owner is reading or writing `runnext`.
    runnext_owner: AtomicBool,
    /// A thief is taking `runnext`.
    runnext_thief: AtomicBool,
    /// Owner: counts the Gs put in `runnext`, so a thief can tell a G that
    /// has sat there through its grace period from a fresh one.
    runnext_puts: AtomicU64,
    /// Owner: the local run queue.
    runq: UnsafeCell<Worker<GRef>>,
    /// Other Ms' handle on the local run queue. On a line of its own, as
    /// are `timers`: a spinning M reads both of every P each time it looks
    /// for work, and sharing a line with the owner's hot fields (`state`,
    /// `runnext`) would make the owner's next write to them a cache miss.
    pub(crate) stealer: CachePadded<Stealer<GRef>>,
    /// This P's timers.
    pub(crate) timers: CachePadded<Timers>,
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
            runnext_owner: AtomicBool::new(false),
            runnext_thief: AtomicBool::new(false),
            runnext_puts: AtomicU64::new(0),
            runq: UnsafeCell::new(runq),
            stealer: CachePadded::new(stealer),
            timers: CachePadded::new(Timers::default()),
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
            4 => PStatus::Retaking,
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
        self.cas_state(word, running)
    }

    /// The M that lent the P (state `word`) takes it back at a runtime call
    /// of its G, if `sysmon` has not retaken it. This runs at every runtime
    /// call, so it is not a compare-and-swap but a claim with the light
    /// barrier, against `sysmon`'s heavy one in [`P::retake`]:
    ///
    /// ```text
    /// M (hot)                           sysmon (after a 10 ms slice)
    /// claim = (this P, word)            CAS state: word -> Retaking
    /// barrier::light()                  barrier::heavy()
    /// if state == word:                 if the lender's claim is (P, word):
    ///     state = Running (ours)            CAS state: Retaking -> word
    /// else: wait out Retaking, then         (the M keeps it)
    ///     CAS word -> Running           else CAS Retaking -> Idle; if that
    ///                                       fails the M took it (it claimed,
    ///                                       wrote Running and moved on)
    /// ```
    ///
    /// Either the M sees `Retaking` (and waits for the verdict) or sysmon
    /// sees the claim (and backs off): never both miss. A P that sysmon
    /// backs off from may show `Running` before sysmon's restoring CAS,
    /// which then fails and changes nothing. `claim` is the lending M's own
    /// [`LentClaim`].
    #[inline]
    pub(crate) fn take_back_lent(&self, word: u64, claim: &LentClaim) -> bool {
        claim.p.store(self as *const P as *mut P, Ordering::Relaxed);
        claim.word.store(word, Ordering::Relaxed);
        crate::barrier::light();
        if self.state.load(Ordering::Acquire) == word {
            self.state
                .store((word & !0xff) | PStatus::Running as u64, Ordering::Release);
            return true;
        }
        self.take_back_contended(word, claim)
    }

    #[cold]
    #[inline(never)]
    fn take_back_contended(&self, word: u64, claim: &LentClaim) -> bool {
        // Withdraw the claim: from here on, only the compare-and-swap below
        // takes the P, so sysmon's verdict (made with or without having
        // seen the claim) stands either way.
        claim.word.store(0, Ordering::Relaxed);
        let retaking = (word & !0xff) | PStatus::Retaking as u64;
        loop {
            let w = self.state.load(Ordering::Acquire);
            if w == retaking {
                core::hint::spin_loop();
                continue;
            }
            if w != word {
                return false;
            }
            let running = (word & !0xff) | PStatus::Running as u64;
            if self.cas_state(word, running) {
                return true;
            }
        }
    }

    /// Compare-and-swap of the state word (acquire-release on success).
    fn cas_state(&self, from: u64, to: u64) -> bool {
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// The raw state word, for `sysmon`.
    pub(crate) fn state_word(&self) -> u64 {
        self.state.load(Ordering::Acquire)
    }

    /// `sysmon`: takes a P from an M in a syscall (or lending it) if the
    /// state is still `word` (a `Syscall` or `Lent` state). On success the P
    /// is `Idle` and unowned. A `Lent` P goes through `Retaking` (see
    /// [`P::take_back_lent`]), checking `claim`, that of the M that lent it
    /// (`p.m`, read while the word was `word`); without one it is left alone.
    pub(crate) fn retake(&self, word: u64, claim: Option<&LentClaim>) -> bool {
        let idle = (word & !0xff) | PStatus::Idle as u64;
        match Self::status_of(word) {
            PStatus::Syscall => {
                if !self.cas_state(word, idle) {
                    return false;
                }
            }
            PStatus::Lent => {
                let Some(claim) = claim else { return false };
                let retaking = (word & !0xff) | PStatus::Retaking as u64;
                if !self.cas_state(word, retaking) {
                    return false;
                }
                crate::barrier::heavy();
                if core::ptr::eq(claim.p.load(Ordering::Acquire), self)
                    && claim.word.load(Ordering::Acquire) == word
                {
                    // The M is taking it back: it keeps it. If it already
                    // wrote `Running`, this fails and changes nothing.
                    let _ = self.cas_state(retaking, word);
                    return false;
                }
                // No claim seen: the M either saw `Retaking` (and writes
                // nothing until our verdict), or claimed, wrote `Running`
                // and has since claimed something newer. Only in the second
                // case does this fail, and then the P is the M's.
                if !self.cas_state(retaking, idle) {
                    return false;
                }
            }
            _ => return false,
        }
        self.m.store(core::ptr::null_mut(), Ordering::Relaxed);
        true
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
            // SAFETY: the caller holds the P.
            let old = unsafe { self.runnext_exchange(g.as_ptr()) };
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
            // SAFETY: the caller holds the P.
            let g = unsafe { self.runnext_exchange(core::ptr::null_mut()) };
            // SAFETY: runnext holds null or pointers from GRef::as_ptr.
            if let Some(g) = unsafe { GRef::from_ptr(g) } {
                return Some(g);
            }
        }
        // SAFETY: the caller holds the P.
        unsafe { self.runq() }.pop()
    }

    /// Puts a yielding `g` behind every other local G: in `runnext` when the
    /// local queue is empty (then `runnext` *is* the back of the queue, and
    /// two Gs yielding to each other never touch the deque, whose pop costs
    /// a locked instruction), else at the back of the deque.
    ///
    /// # Safety
    ///
    /// The caller's M holds this P.
    pub(crate) unsafe fn runq_put_back(&self, g: GRef) {
        // SAFETY: the caller holds the P.
        let q = unsafe { self.runq() };
        if q.is_empty() && self.runnext.load(Ordering::Relaxed).is_null() {
            // SAFETY: the caller holds the P.
            let old = unsafe { self.runnext_exchange(g.as_ptr()) };
            // A thief cannot put a G there, so it is still empty.
            debug_assert!(
                old.is_null(),
                "runq_put_back: runnext filled behind the owner"
            );
        } else {
            q.push(g);
        }
    }

    /// Owner: replaces `runnext` with `new` and returns the old value (see
    /// the module docs).
    ///
    /// # Safety
    ///
    /// The caller's M holds this P.
    #[inline]
    unsafe fn runnext_exchange(&self, new: *mut G) -> *mut G {
        self.runnext_owner_begin();
        let old = self.runnext.load(Ordering::Acquire);
        if !new.is_null() {
            self.count_runnext_put();
        }
        self.runnext.store(new, Ordering::Release);
        // Release: a thief that sees `false` then sees our store.
        self.runnext_owner.store(false, Ordering::Release);
        old
    }

    /// The owner's side of the hand-shake: returns once no thief is at
    /// `runnext`, with `runnext_owner` set (cleared by the caller).
    #[inline]
    fn runnext_owner_begin(&self) {
        loop {
            self.runnext_owner.store(true, Ordering::Relaxed);
            crate::barrier::light();
            if !self.runnext_thief.load(Ordering::Relaxed) {
                return;
            }
            self.runnext_owner.store(false, Ordering::Release);
            self.wait_for_thief();
        }
    }

    /// Owner: one more G put in `runnext` (see [`P::runnext_steal`]).
    #[inline]
    fn count_runnext_put(&self) {
        let n = self.runnext_puts.load(Ordering::Relaxed);
        self.runnext_puts
            .store(n.wrapping_add(1), Ordering::Relaxed);
    }

    /// Owner, for a yield between two Gs: swaps the yielding `g` into
    /// `runnext` for the G there, if that G may run here (not locked to an
    /// M). Returns that G with the owner's side of the hand-shake still
    /// *held*: `g`'s registers are not saved yet, so no thief may take it
    /// before [`P::runnext_swap_done`], which the context that runs next on
    /// this M calls right after the switch. A thief meanwhile waits a few
    /// instructions, as for any owner access. Returns `None` (flag released,
    /// nothing changed) when `runnext` is empty or its G is locked.
    ///
    /// # Safety
    ///
    /// The caller's M holds this P, and switches away from `g` next.
    #[inline]
    pub(crate) unsafe fn runnext_swap_begin(&self, g: GRef) -> Option<GRef> {
        self.runnext_owner_begin();
        // SAFETY: runnext holds null or pointers from GRef::as_ptr.
        let next = unsafe { GRef::from_ptr(self.runnext.load(Ordering::Acquire)) };
        let Some(next) = next.filter(|n| n.locked_m.load(Ordering::Relaxed).is_null()) else {
            self.runnext_owner.store(false, Ordering::Release);
            return None;
        };
        self.count_runnext_put();
        self.runnext.store(g.as_ptr(), Ordering::Relaxed);
        Some(next)
    }

    /// Ends [`P::runnext_swap_begin`]: the yielded G's context is saved.
    pub(crate) fn runnext_swap_done(&self) {
        // Release: a thief that sees `false` sees the G's saved context.
        self.runnext_owner.store(false, Ordering::Release);
    }

    #[cold]
    #[inline(never)]
    fn wait_for_thief(&self) {
        wait_while(&self.runnext_thief);
    }

    /// How many Gs the owner has put in `runnext` so far (for
    /// [`P::runnext_steal`]).
    pub(crate) fn runnext_puts(&self) -> u64 {
        self.runnext_puts.load(Ordering::Relaxed)
    }

    /// Another M takes this P's `runnext`, if any (see the module docs),
    /// and, with `since`, only if the owner has put nothing there since
    /// [`P::runnext_puts`] returned `since` (the G has waited the thief's
    /// whole grace period). Returns null if it is empty, newer, or another
    /// thief is at it.
    pub(crate) fn runnext_steal(&self, since: Option<u64>) -> *mut G {
        // Cheap looks first, so a G that is already gone or replaced costs
        // no `membarrier`.
        if self.runnext.load(Ordering::Relaxed).is_null()
            || since.is_some_and(|n| n != self.runnext_puts.load(Ordering::Relaxed))
            || self
                .runnext_thief
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return core::ptr::null_mut();
        }
        crate::barrier::heavy();
        wait_while(&self.runnext_owner);
        let fresh = since.is_some_and(|n| n != self.runnext_puts.load(Ordering::Relaxed));
        let mut g = self.runnext.load(Ordering::Acquire);
        if fresh {
            g = core::ptr::null_mut();
        } else if !g.is_null() {
            self.runnext.store(core::ptr::null_mut(), Ordering::Relaxed);
        }
        self.runnext_thief.store(false, Ordering::Release);
        g
    }

    /// Whether `runnext` looks empty (racy: a hint for thieves).
    pub(crate) fn runnext_is_empty(&self) -> bool {
        self.runnext.load(Ordering::Relaxed).is_null()
    }

    /// Whether the local queue looks empty (racy unless the caller holds
    /// the P; used for re-checks before sleeping).
    pub(crate) fn runq_is_empty(&self) -> bool {
        self.runnext.load(Ordering::Acquire).is_null() && self.stealer.is_empty()
    }

    /// Whether the local queue is empty, for the M that holds the P: reads
    /// the owner's side of the deque, without the full fence a thief's
    /// [`Stealer::is_empty`](crossbeam_deque::Stealer::is_empty) pays (that
    /// fence was a fifth of a `yield_now`).
    ///
    /// # Safety
    ///
    /// The caller's M holds this P.
    pub(crate) unsafe fn runq_is_empty_owner(&self) -> bool {
        // SAFETY: per the contract.
        self.runnext.load(Ordering::Relaxed).is_null() && unsafe { self.runq() }.is_empty()
    }

    /// Approximate number of queued Gs.
    pub fn runq_len(&self) -> usize {
        self.stealer.len() + usize::from(!self.runnext.load(Ordering::Relaxed).is_null())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// Fake G pointers: never dereferenced, only handed around.
    fn fake(i: usize) -> *mut G {
        (i * 64) as *mut G
    }

    fn unfake(p: *mut G) -> usize {
        p as usize / 64
    }

    /// Symptom guarded: the owner's plain `runnext` writes and a thief's
    /// take overlap, so a G runs twice or is lost. Every value the owner
    /// puts must come out exactly once, by the owner or by the thief.
    #[test]
    fn runnext_hand_off_loses_and_duplicates_nothing() {
        crate::barrier::init();
        const N: usize = 200_000;
        let p = Arc::new(P::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let thief = {
            let (p, done, started) = (p.clone(), done.clone(), started.clone());
            std::thread::spawn(move || {
                let mut got = Vec::new();
                started.store(true, Ordering::Release);
                while !done.load(Ordering::Acquire) {
                    let g = p.runnext_steal(None);
                    if !g.is_null() {
                        got.push(unfake(g));
                    }
                }
                got
            })
        };
        while !started.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        let mut got = Vec::new();
        for i in 1..=N {
            // The owner's own work between hand-offs, so the thief's
            // attempts (each a `membarrier`) land among them.
            for _ in 0..20 {
                core::hint::spin_loop();
            }
            // SAFETY: this thread is the P's only owner.
            let old = unsafe { p.runnext_exchange(fake(i)) };
            if !old.is_null() {
                got.push(unfake(old));
            }
            if i % 3 == 0 {
                // SAFETY: as above.
                let g = unsafe { p.runnext_exchange(core::ptr::null_mut()) };
                if !g.is_null() {
                    got.push(unfake(g));
                }
            }
        }
        done.store(true, Ordering::Release);
        let stolen = thief.join().unwrap();
        // SAFETY: the thief has exited.
        let last = unsafe { p.runnext_exchange(core::ptr::null_mut()) };
        if !last.is_null() {
            got.push(unfake(last));
        }
        let mut seen = vec![0u8; N + 1];
        for &i in got.iter().chain(stolen.iter()) {
            seen[i] += 1;
        }
        let bad: Vec<_> = (1..=N).filter(|&i| seen[i] != 1).take(5).collect();
        assert!(bad.is_empty(), "values seen other than once: {bad:?}");
        eprintln!(
            "stolen {} of {N} (membarrier: {})",
            stolen.len(),
            crate::barrier::uses_membarrier()
        );
    }

    /// Symptom guarded: an M claiming its lent P back and sysmon retaking it
    /// both succeed (two Ms run Gs on one P: heap corruption) or both fail
    /// (a P is lost). A second M that comes back late to the same P, long
    /// retaken, claims and fails all the while: its claim must not hide the
    /// real lender's.
    /// Symptom guarded: a thief takes the G that a yield swapped into
    /// `runnext` while the owner is still switching away from it (its
    /// registers not saved), as when the owner's thread is descheduled
    /// right after the swap. The thief must wait for the owner's
    /// `runnext_swap_done`, however long that takes.
    #[test]
    fn runnext_swap_keeps_thieves_off_until_done() {
        crate::barrier::init();
        let yielder = GRef(crate::g::ALLGS.push_with(G::new));
        let waiting = GRef(crate::g::ALLGS.push_with(G::new));
        let p = Arc::new(P::new(0));
        // SAFETY: this thread acts as the P's only owner.
        unsafe { p.runq_put(waiting, true) };
        // SAFETY: as above; nothing is switched, the test only plays the
        // owner's part.
        let next = unsafe { p.runnext_swap_begin(yielder) };
        assert_eq!(next.map(GRef::as_ptr), Some(waiting.as_ptr()));
        let taken = Arc::new(AtomicBool::new(false));
        let thief = {
            let (p, taken) = (p.clone(), taken.clone());
            std::thread::spawn(move || {
                let g = p.runnext_steal(None);
                taken.store(true, Ordering::Release);
                g as usize
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            !taken.load(Ordering::Acquire),
            "a thief took runnext in the middle of a swap"
        );
        p.runnext_swap_done();
        let got = thief.join().unwrap();
        assert_eq!(got, yielder.as_ptr() as usize);
    }

    #[test]
    fn lent_p_goes_to_exactly_one_of_its_m_and_sysmon() {
        crate::barrier::init();
        const ROUNDS: usize = 20_000;
        let p = Arc::new(P::new(0));
        p.set_status(PStatus::Running);
        let word = Arc::new(AtomicU64::new(0));
        let round = Arc::new(AtomicUsize::new(0));
        let sysmon_won = Arc::new(AtomicUsize::new(0));
        let lender = Arc::new(LentClaim::default());
        let done = Arc::new(AtomicBool::new(false));
        let sysmon = {
            let (p, word, round, won, lender) = (
                p.clone(),
                word.clone(),
                round.clone(),
                sysmon_won.clone(),
                lender.clone(),
            );
            std::thread::spawn(move || {
                let mut seen = 0;
                while seen < ROUNDS {
                    let r = round.load(Ordering::Acquire);
                    if r == seen {
                        core::hint::spin_loop();
                        continue;
                    }
                    seen = r;
                    if p.retake(word.load(Ordering::Acquire), Some(&lender)) {
                        won.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        let stale = {
            let (p, done) = (p.clone(), done.clone());
            std::thread::spawn(move || {
                // An M whose lend (sequence 0) was retaken before the test.
                let mine = LentClaim::default();
                let old = PStatus::Lent as u64;
                while !done.load(Ordering::Acquire) {
                    assert!(!p.take_back_lent(old, &mine), "a stale lend won the P");
                }
            })
        };
        let mut m_won = 0;
        for r in 1..=ROUNDS {
            if p.status() == PStatus::Idle {
                // Sysmon won the last round: the P comes back to us.
                p.set_status(PStatus::Running);
            }
            let w = p.lend();
            word.store(w, Ordering::Release);
            round.store(r, Ordering::Release);
            // Give sysmon a head start now and then, so both orders occur.
            for _ in 0..(r % 7) * 40 {
                core::hint::spin_loop();
            }
            if p.take_back_lent(w, &lender) {
                m_won += 1;
                assert_eq!(p.status(), PStatus::Running);
            }
            // Wait for sysmon's verdict on this round before the next lend.
            while matches!(p.status(), PStatus::Retaking | PStatus::Lent) {
                core::hint::spin_loop();
            }
        }
        sysmon.join().unwrap();
        done.store(true, Ordering::Release);
        stale.join().unwrap();
        let s = sysmon_won.load(Ordering::Relaxed);
        assert_eq!(m_won + s, ROUNDS, "M won {m_won}, sysmon {s}");
        eprintln!("M kept the P {m_won} times, sysmon retook it {s} times");
    }
}
