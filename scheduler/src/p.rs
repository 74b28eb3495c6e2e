//! P: the right to run Gs, with the local run queue, timers, and caches.
//!
//! There are `procs` Ps, made once when the runtime starts and never freed.
//! An M must hold a P to run Gs. The P's local run queue (a deque plus a
//! `runnext` slot, and the hand-off that lets other Ms steal from it) is
//! [`RunQueue`](crate::runq::RunQueue), in `runq.rs`. This module holds
//! the P's status word: who holds the P, and the lend/retake protocol by
//! which an M sets it aside (a syscall, a G's user code) and `sysmon` may
//! take it. Data only: nothing here calls scheduling logic.
//!
use crate::g::GRef;
use crate::loom::atomic::{AtomicPtr, AtomicU64};
use crate::m::M;
use crate::runq::RunQueue;
use crate::stack::StackCache;
use crate::timer_heap::Timers;
use core::cell::{Cell, UnsafeCell};
use core::sync::atomic::Ordering;
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
    /// runtime call (`engine::enter`, [`P::take_back_lent`]), and `sysmon`
    /// may retake it when the same G has kept it for a whole time slice
    /// while other work waits. See `engine/lend.rs`.
    Lent = 3,
    /// `sysmon` is retaking a `Lent` P (compare and swap from that exact
    /// `Lent` word) and checks, behind a heavy barrier, whether the M
    /// claimed it back meanwhile: then it restores the `Lent` word and the
    /// M keeps the P; else the P becomes `Idle`. Lasts well under a
    /// microsecond; an M taking its P back waits for the outcome.
    Retaking = 4,
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
    /// The local run queue (its `stealer` on a line of its own, as are
    /// `timers`: a spinning M reads both of every P each time it looks for
    /// work).
    pub(crate) runq: RunQueue,
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

// SAFETY: the owner fields (`runq`'s owner side, `gfree`, `stacks`, `schedtick`,
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
        P {
            id,
            state: AtomicU64::new(PStatus::Idle as u64),
            m: AtomicPtr::new(core::ptr::null_mut()),
            runq: RunQueue::new(),
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

    /// Owner: lends the P while its G runs user code (see `engine/lend.rs`);
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
    /// [`LentClaim`]. Model checked with loom, with a stale lender claiming
    /// at the same time (`loom_tests` at the end of this file).
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
                crate::loom::spin_loop();
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
}

// Under loom the state word is loom's, usable only inside a model.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// Symptom guarded: an M claiming its lent P back and sysmon retaking it
    /// both succeed (two Ms run Gs on one P: heap corruption) or both fail
    /// (a P is lost). A second M that comes back late to the same P, long
    /// retaken, claims and fails all the while: its claim must not hide the
    /// real lender's.
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

/// Model-checked (`--cfg loom`, see `loom.rs`): the real lend/claim/retake
/// and syscall hand-shakes under every interleaving of the M and `sysmon`,
/// with the P's owner fields as a loom cell, so two winners are a reported
/// data race as well as a failed assertion.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    /// The P's owner fields (run queue, caches): only its holder writes.
    struct Owned(UnsafeCell<usize>);

    impl Owned {
        fn take(&self) {
            // SAFETY: a model cell: loom checks that no access races it.
            self.0.with_mut(|p| unsafe { *p += 1 });
        }
    }

    /// Symptom guarded: the M claiming its lent P back and sysmon retaking
    /// it both win (two Ms run Gs on one P) or both lose (the P is lost).
    /// A second M whose own lend of the P was retaken long ago claims it
    /// at the same time and must lose without hiding the lender's claim.
    #[test]
    fn loom_lent_p_goes_to_exactly_one_of_its_m_and_sysmon() {
        loom::model(|| {
            let p = Arc::new(P::new(0));
            p.set_status(PStatus::Running);
            // An older lend of this P (sequence 1), retaken and given back.
            let stale_word = p.lend();
            assert!(p.retake(stale_word, Some(&LentClaim::default())));
            p.set_status(PStatus::Running);
            let word = p.lend();
            let owned = Arc::new(Owned(UnsafeCell::new(0)));
            let lender = Arc::new(LentClaim::default());
            let sysmon = {
                let (p, owned, lender) = (p.clone(), owned.clone(), lender.clone());
                loom::thread::spawn(move || {
                    let won = p.retake(word, Some(&lender));
                    if won {
                        owned.take();
                    }
                    won
                })
            };
            let stale = {
                let p = p.clone();
                loom::thread::spawn(move || {
                    let mine = LentClaim::default();
                    assert!(!p.take_back_lent(stale_word, &mine), "a stale lend won");
                })
            };
            let m_won = p.take_back_lent(word, &lender);
            if m_won {
                owned.take();
            }
            let sysmon_won = sysmon.join().unwrap();
            stale.join().unwrap();
            assert!(
                m_won != sysmon_won,
                "M won: {m_won}, sysmon won: {sysmon_won}"
            );
            // The state the P ends in is not asserted: C11 allows only
            // `Running` (M won) or `Idle` (sysmon won), but loom 0.7 keeps
            // the modification order of the state word partial and does not
            // order the M's plain store of `Running` after sysmon's CAS
            // (tokio-rs/loom#254: a store can slip between an RMW's read
            // and its write), so in its histories a later load may return
            // `Retaking` or the lend's word. Who won, and the race-free use
            // of the owner fields, are what those histories cannot fake.
            if sysmon_won {
                assert_eq!(p.status(), PStatus::Idle);
            }
        });
    }

    /// Symptom guarded: an M returning from a syscall and sysmon retaking
    /// its P both win or both lose.
    #[test]
    fn loom_syscall_p_goes_to_exactly_one_of_its_m_and_sysmon() {
        loom::model(|| {
            let p = Arc::new(P::new(0));
            p.set_status(PStatus::Running);
            let word = p.enter_syscall();
            let owned = Arc::new(Owned(UnsafeCell::new(0)));
            let sysmon = {
                let (p, owned) = (p.clone(), owned.clone());
                loom::thread::spawn(move || {
                    let won = p.retake(word, None);
                    if won {
                        owned.take();
                    }
                    won
                })
            };
            let m_won = p.exit_syscall_fast(word);
            if m_won {
                owned.take();
            }
            let sysmon_won = sysmon.join().unwrap();
            assert!(
                m_won != sysmon_won,
                "M won: {m_won}, sysmon won: {sysmon_won}"
            );
        });
    }
}
