//! A P's local run queue: a crossbeam-deque `Worker` plus a `runnext` slot.
//!
//! Data only: this module moves G pointers between slots and calls no
//! scheduling logic (who runs what, and when, is the engine's business;
//! see `engine/mod.rs`). The way tokio's `queue.rs` owns its run queue.
//!
//! The deque is a FIFO `Worker` (LIFO pops are not used). `runnext` holds
//! the G most recently readied by the P's running G, which runs next (a G
//! that wakes another and then blocks hands its time slice over, as in Go).
//! Other Ms steal from the deque through its `Stealer` and may also take
//! `runnext`.
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
//! never touch `runnext` at the same time. Each side reads the other's flag
//! with acquire, so that a flag found cleared also shows what the other
//! side did to `runnext` before clearing it. The owner's wait (a thief is
//! mid-way) is rare and short; the thief's `membarrier` (~0.4 µs) sits on
//! a path that has already waited microseconds.
//!
//! The hand-off, and the swap of a yield below, are model checked with
//! loom (`loom_tests` at the end of this file; `loom.rs`).

use crate::g::{G, GRef};
use crate::loom::atomic::{AtomicBool, AtomicPtr, AtomicU64};
use core::cell::UnsafeCell;
use core::sync::atomic::Ordering;
use crossbeam_deque::{Stealer, Worker};
use crossbeam_utils::CachePadded;

/// Spins until `flag` is clear: the other side of the `runnext` hand-shake
/// is a few instructions from clearing it, unless its thread was
/// descheduled mid-way (then give the CPU up).
fn wait_while(flag: &AtomicBool) {
    let mut spins = 0u32;
    while flag.load(Ordering::Acquire) {
        spins += 1;
        if spins < 1_000 {
            crate::loom::spin_loop();
        } else {
            crate::loom::yield_now();
        }
    }
}

/// A P's run queue. Methods marked *owner* (and `unsafe`) are for the M
/// holding the P only; the rest any M may call.
pub struct RunQueue {
    /// The next G to run, ahead of the deque (see the module docs for who
    /// may write it and how).
    runnext: AtomicPtr<G>,
    /// The owner is reading or writing `runnext`.
    runnext_owner: AtomicBool,
    /// A thief is taking `runnext`.
    runnext_thief: AtomicBool,
    /// Owner: counts the Gs put in `runnext`, so a thief can tell a G that
    /// has sat there through its grace period from a fresh one.
    runnext_puts: AtomicU64,
    /// Owner: the deque.
    worker: UnsafeCell<Worker<GRef>>,
    /// Other Ms' handle on the deque. On a line of its own: a spinning M
    /// reads every P's each time it looks for work, and sharing a line with
    /// the owner's hot fields (`runnext`, the P's state) would make the
    /// owner's next write to them a cache miss.
    pub(crate) stealer: CachePadded<Stealer<GRef>>,
}

// SAFETY: the deque's owner side (`worker`) is touched only by the M that
// holds the queue's P (the `unsafe` methods' contract), and a P changes hands
// only through synchronising operations (see `P`); `runnext` is guarded by
// the hand-shake in the module docs; the rest is atomic.
unsafe impl Sync for RunQueue {}

impl core::fmt::Debug for RunQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RunQueue")
            .field("len", &self.len())
            .finish()
    }
}

impl Default for RunQueue {
    fn default() -> RunQueue {
        RunQueue::new()
    }
}

impl RunQueue {
    /// An empty queue.
    pub fn new() -> RunQueue {
        let worker = Worker::new_fifo();
        let stealer = worker.stealer();
        RunQueue {
            runnext: AtomicPtr::new(core::ptr::null_mut()),
            runnext_owner: AtomicBool::new(false),
            runnext_thief: AtomicBool::new(false),
            runnext_puts: AtomicU64::new(0),
            worker: UnsafeCell::new(worker),
            stealer: CachePadded::new(stealer),
        }
    }

    /// Owner only: the deque.
    ///
    /// # Safety
    ///
    /// The caller's M holds the queue's P, and the reference does not outlive that.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn worker(&self) -> &Worker<GRef> {
        // SAFETY: per the contract, only the holding M gets here.
        unsafe { &*self.worker.get() }
    }

    /// Puts `g` on the queue: in `runnext` if `next` (kicking the old
    /// `runnext` to the back of the queue), else at the back.
    ///
    /// # Safety
    ///
    /// The caller's M holds the queue's P.
    pub(crate) unsafe fn put(&self, g: GRef, next: bool) {
        // SAFETY: the caller holds the P.
        let q = unsafe { self.worker() };
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
    /// The caller's M holds the queue's P.
    pub(crate) unsafe fn get(&self) -> Option<GRef> {
        if !self.runnext.load(Ordering::Relaxed).is_null() {
            // SAFETY: the caller holds the P.
            let g = unsafe { self.runnext_exchange(core::ptr::null_mut()) };
            // SAFETY: runnext holds null or pointers from GRef::as_ptr.
            if let Some(g) = unsafe { GRef::from_ptr(g) } {
                return Some(g);
            }
        }
        // SAFETY: the caller holds the P.
        unsafe { self.worker() }.pop()
    }

    /// Puts a yielding `g` behind every other local G: in `runnext` when the
    /// local queue is empty (then `runnext` *is* the back of the queue, and
    /// two Gs yielding to each other never touch the deque, whose pop costs
    /// a locked instruction), else at the back of the deque.
    ///
    /// # Safety
    ///
    /// The caller's M holds the queue's P.
    pub(crate) unsafe fn put_back(&self, g: GRef) {
        // SAFETY: the caller holds the P.
        let q = unsafe { self.worker() };
        if q.is_empty() && self.runnext.load(Ordering::Relaxed).is_null() {
            // SAFETY: the caller holds the P.
            let old = unsafe { self.runnext_exchange(g.as_ptr()) };
            // A thief cannot put a G there, so it is still empty.
            debug_assert!(old.is_null(), "put_back: runnext filled behind the owner");
        } else {
            q.push(g);
        }
    }

    /// Owner: replaces `runnext` with `new` and returns the old value (see
    /// the module docs).
    ///
    /// # Safety
    ///
    /// The caller's M holds the queue's P.
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
            // Acquire: a thief that has just finished leaves the flag
            // `false` with a release store after taking `runnext`; reading
            // that store must also show its emptying of `runnext`, or the
            // owner takes the same G again (the barrier orders our flag
            // store before this load, not this load before the read of
            // `runnext` below). Found by the loom model below.
            if !self.runnext_thief.load(Ordering::Acquire) {
                return;
            }
            self.runnext_owner.store(false, Ordering::Release);
            self.wait_for_thief();
        }
    }

    /// Owner: one more G put in `runnext` (see [`RunQueue::runnext_steal`]).
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
    /// before [`RunQueue::swap_done`], which the context that runs next on
    /// this M calls right after the switch. A thief meanwhile waits a few
    /// instructions, as for any owner access. Returns `None` (flag released,
    /// nothing changed) when `runnext` is empty or its G is locked.
    ///
    /// # Safety
    ///
    /// The caller's M holds the queue's P, and switches away from `g` next.
    #[inline]
    pub(crate) unsafe fn swap_begin(&self, g: GRef) -> Option<GRef> {
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

    /// Ends [`RunQueue::swap_begin`]: the yielded G's context is saved.
    pub(crate) fn swap_done(&self) {
        // Release: a thief that sees `false` sees the G's saved context.
        self.runnext_owner.store(false, Ordering::Release);
    }

    #[cold]
    #[inline(never)]
    fn wait_for_thief(&self) {
        wait_while(&self.runnext_thief);
    }

    /// How many Gs the owner has put in `runnext` so far (for
    /// [`RunQueue::runnext_steal`]).
    pub(crate) fn runnext_puts(&self) -> u64 {
        self.runnext_puts.load(Ordering::Relaxed)
    }

    /// Another M takes the `runnext`, if any (see the module docs),
    /// and, with `since`, only if the owner has put nothing there since
    /// [`RunQueue::runnext_puts`] returned `since` (the G has waited the thief's
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
    pub fn is_empty(&self) -> bool {
        self.runnext.load(Ordering::Acquire).is_null() && self.stealer.is_empty()
    }

    /// Whether the local queue is empty, for the M that holds the P: reads
    /// the owner's side of the deque, without the full fence a thief's
    /// [`Stealer::is_empty`](crossbeam_deque::Stealer::is_empty) pays (that
    /// fence was a fifth of a `yield_now`).
    ///
    /// # Safety
    ///
    /// The caller's M holds the queue's P.
    pub(crate) unsafe fn is_empty_owner(&self) -> bool {
        // SAFETY: per the contract.
        self.runnext.load(Ordering::Relaxed).is_null() && unsafe { self.worker() }.is_empty()
    }

    /// Approximate number of queued Gs.
    pub fn len(&self) -> usize {
        self.stealer.len() + usize::from(!self.runnext.load(Ordering::Relaxed).is_null())
    }
}

// Under loom the queue's atomics are loom's, usable only inside a model.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

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
        let p = Arc::new(RunQueue::new());
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
            // SAFETY: this thread is the queue's only owner.
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
        let p = Arc::new(RunQueue::new());
        // SAFETY: this thread acts as the queue's only owner.
        unsafe { p.put(waiting, true) };
        // SAFETY: as above; nothing is switched, the test only plays the
        // owner's part.
        let next = unsafe { p.swap_begin(yielder) };
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
        p.swap_done();
        let got = thief.join().unwrap();
        assert_eq!(got, yielder.as_ptr() as usize);
    }
}

/// Model-checked (`--cfg loom`, see `loom.rs`): the real `runnext`
/// hand-off under every interleaving of an owner and a thief, with each G's
/// saved context in a loom cell, so a thief that takes a G without
/// synchronising with the owner's writes is a reported data race.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    /// `n` Gs for the models (made once, outside them: a G's own atomics
    /// are std's, and the model needs only their addresses).
    fn gs(n: usize) -> Vec<GRef> {
        (0..n)
            .map(|i| GRef(Box::leak(Box::new(G::new(i)))))
            .collect()
    }

    /// What the readying side wrote into a G before putting it on the
    /// queue (its entry, its saved registers), one cell per G.
    struct Contexts(Vec<UnsafeCell<usize>>);

    impl Contexts {
        fn new(n: usize) -> Contexts {
            Contexts((0..n).map(|_| UnsafeCell::new(0)).collect())
        }
        fn write(&self, g: GRef, v: usize) {
            // SAFETY: a model cell: loom checks that no access races it.
            self.0[g.0.index].with_mut(|p| unsafe { *p = v });
        }
        fn read(&self, g: GRef) -> usize {
            // SAFETY: as above.
            self.0[g.0.index].with(|p| unsafe { *p })
        }
    }

    /// A thief that steals `runnext` once and checks it sees the context
    /// the owner wrote (`index + 1`); returns the index of what it took.
    fn spawn_runnext_thief(
        q: &Arc<RunQueue>,
        ctx: &Arc<Contexts>,
    ) -> loom::thread::JoinHandle<Option<usize>> {
        let (q, ctx) = (q.clone(), ctx.clone());
        loom::thread::spawn(move || {
            let got = g_of(q.runnext_steal(None));
            if let Some(g) = got {
                assert_eq!(ctx.read(g), g.0.index + 1, "stale context");
            }
            got.map(|g| g.0.index)
        })
    }

    fn g_of(p: *mut G) -> Option<GRef> {
        // SAFETY: runnext holds null or pointers from GRef::as_ptr.
        unsafe { GRef::from_ptr(p) }
    }

    /// Symptom guarded: a G readied into `runnext` runs twice (owner and
    /// thief both take it) or never, or a thief runs it before seeing what
    /// the owner wrote into it.
    #[test]
    fn loom_runnext_hand_off() {
        let g = gs(2);
        loom::model(move || {
            let (g0, g1) = (g[0], g[1]);
            let q = Arc::new(RunQueue::new());
            let ctx = Arc::new(Contexts::new(2));
            let thief = spawn_runnext_thief(&q, &ctx);
            let mut mine = Vec::new();
            // The owner readies g0 then g1 into runnext (g0 is kicked out
            // to the owner), then takes runnext itself.
            ctx.write(g0, 1);
            // SAFETY: this thread is the queue's owner.
            mine.extend(g_of(unsafe { q.runnext_exchange(g0.as_ptr()) }));
            ctx.write(g1, 2);
            // SAFETY: as above.
            mine.extend(g_of(unsafe { q.runnext_exchange(g1.as_ptr()) }));
            // SAFETY: as above.
            mine.extend(g_of(unsafe { q.runnext_exchange(core::ptr::null_mut()) }));
            let stolen = thief.join().unwrap();
            let mut all: Vec<usize> = mine.iter().map(|g| g.0.index).collect();
            all.extend(stolen);
            all.sort_unstable();
            assert_eq!(all, [0, 1], "each G exactly once");
        });
    }

    /// Symptom guarded: a thief takes the G a yield just swapped into
    /// `runnext` before the owner has saved its registers (the switch is
    /// still under way), and resumes it from a stale context.
    #[test]
    fn loom_runnext_swap_keeps_thieves_off_until_done() {
        let g = gs(2);
        loom::model(move || {
            let (waiting, yielder) = (g[0], g[1]);
            let q = Arc::new(RunQueue::new());
            let ctx = Arc::new(Contexts::new(2));
            ctx.write(waiting, 1);
            // SAFETY: this thread is the queue's owner.
            unsafe { q.put(waiting, true) };
            let thief = spawn_runnext_thief(&q, &ctx);
            // SAFETY: as above; the model plays the switch: it saves the
            // yielder's context, then ends the swap.
            let next = unsafe { q.swap_begin(yielder) };
            if next.is_some() {
                ctx.write(yielder, 2);
                q.swap_done();
            }
            let stolen = thief.join().unwrap();
            match (next.map(|g| g.0.index), stolen) {
                // The thief came first and took the waiting G: no swap.
                (None, Some(0)) => {}
                // The swap came first: the owner runs the waiting G, the
                // thief takes the yielder (saved) or nothing.
                (Some(0), Some(1) | None) => {}
                other => panic!("swap {other:?}"),
            }
        });
    }
}
