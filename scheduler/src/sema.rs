//! Go's runtime semaphore (`semacquire`/`semrelease`), per primitive.
//!
//! A [`Sema`] is a count of permits and a FIFO of waiters under one lock (a
//! [`WaitQueue<u32>`]). `acquire` takes a permit or waits; `release` hands
//! its permit **directly** to the first waiter if there is one (the waiter
//! returns owning it, nobody can barge in between), and otherwise adds it to
//! the count — so a release that comes before its waiter has queued is not
//! lost, which is what Go's `sync.Mutex` relies on (it bumps its waiter
//! count, then sleeps on the semaphore; an unlock may run in between).
//!
//! Differences from Go: Go keeps every semaphore in one global table of
//! treaps keyed by address, so a `sync.Mutex` is 8 bytes. Here each
//! primitive owns its queue (a lock byte and two pointers): no hashing, no
//! collisions between unrelated primitives sharing a bucket, and a deadline
//! (`acquire` with `deadline`) needs no table walk to cancel. Go's
//! `semrelease(handoff)` then yields so the waiter runs at once; here the
//! woken G goes to the releaser's `runnext`, which runs it next anyway.
//!
//! [`can_spin`] / [`do_spin`] are Go's `sync_runtime_canSpin`/`doSpin`: the
//! policy for a mutex to spin briefly before it sleeps.

use crate::g::WaitReason;
use crate::m::current_m;
use crate::state::try_sched;
use crate::sync_queue::{WaitOptions, WaitQueue, Woken};
use core::sync::atomic::Ordering;
use std::time::Instant;

/// A counting semaphore whose waiters park (Gs) or block (threads).
#[derive(Debug)]
pub struct Sema {
    q: WaitQueue<u32>,
}

impl Default for Sema {
    fn default() -> Self {
        Sema::new(0)
    }
}

impl Sema {
    /// A semaphore holding `permits`.
    pub const fn new(permits: u32) -> Sema {
        Sema {
            q: WaitQueue::with_rank(crate::lock_rank::Rank::SemaQueue, permits),
        }
    }

    /// Takes a permit if one is free, without waiting.
    pub fn try_acquire(&self) -> bool {
        let mut q = self.q.lock();
        if *q > 0 {
            *q -= 1;
            return true;
        }
        false
    }

    /// Takes a permit, waiting for one (at the front of the queue if
    /// `lifo`). Returns false only if `deadline` passed first.
    pub fn acquire(&self, reason: WaitReason, lifo: bool, deadline: Option<Instant>) -> bool {
        let mut q = self.q.lock();
        if *q > 0 {
            *q -= 1;
            return true;
        }
        let opts = WaitOptions {
            reason,
            ticket: 0,
            lifo,
            deadline,
        };
        // A waker only pops us to hand us its permit.
        matches!(q.wait(&opts), Woken::By(_))
    }

    /// Releases `n` permits: each goes to the first waiter, or to the count.
    pub fn release(&self, n: u32) {
        let mut q = self.q.lock();
        let mut first = None;
        let mut rest = Vec::new();
        for i in 0..n {
            match q.pop_front(1) {
                Some(w) if first.is_none() => first = Some(w),
                Some(w) => rest.push(w),
                None => {
                    // Nobody else waits: the rest go to the count.
                    *q = q
                        .checked_add(n - i)
                        .unwrap_or_else(|| crate::throw!("semrelease: semaphore count overflow"));
                    break;
                }
            }
        }
        drop(q);
        if let Some(w) = first {
            w.wake();
        }
        for w in rest {
            w.wake();
        }
    }
}

/// Go's active-spin budget: a mutex spins at most this many rounds.
const ACTIVE_SPIN: u32 = 4;
/// Pause instructions per spin round (Go: 30).
const ACTIVE_SPIN_CNT: u32 = 30;

/// Whether a mutex may spin (round `iter`) instead of sleeping. As Go: only
/// on a multicore machine, only a few rounds, and on a G only when another
/// P is running something (the holder may be about to unlock) and the
/// caller's P has no other G to run (spinning would delay it).
pub fn can_spin(iter: u32) -> bool {
    if iter >= ACTIVE_SPIN || ncpu() <= 1 {
        return false;
    }
    let Some(m) = current_m() else {
        return true;
    };
    let Some(s) = try_sched() else { return true };
    if s.procs() <= s.npidle.load(Ordering::Relaxed) + s.nmspinning.load(Ordering::Relaxed) + 1 {
        return false;
    }
    // SAFETY: m.p() is the P this M holds.
    m.p().is_none_or(|p| unsafe { p.runq.is_empty_owner() })
}

/// One spin round.
#[inline]
pub fn do_spin() {
    for _ in 0..ACTIVE_SPIN_CNT {
        core::hint::spin_loop();
    }
}

fn ncpu() -> usize {
    static NCPU: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *NCPU.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
