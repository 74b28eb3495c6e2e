//! `Barrier`: std's `Barrier`, parking Gs instead of blocking their Ms.
//!
//! The count of arrivals and a generation number live behind one
//! [`WaitQueue`] lock. Each `wait` adds one arrival; the `n`th resets the
//! count, starts the next generation and wakes everyone queued, handing
//! them the value 0 (`Woken::By(0)`), and returns as the leader. A woken
//! waiter was taken off the queue by the leader itself, so there are no
//! spurious wake-ups to re-check, and a barrier is reusable at once: an
//! early arrival of the next round queues behind nobody of the last.
//!
//! std's `Barrier` in a G would block its M (and, with every P's M blocked
//! so, the whole runtime); this one parks the G and its M runs other Gs.
//! Go has no barrier; the usual Go shape is a `sync.Cond` over a counter,
//! so a waiting G shows `[sync.Cond.Wait]` in a dump.

use scheduler::WaitReason;
use scheduler::sync_queue::{WaitOptions, WaitQueue, Woken};

/// Lets `n` Gs or threads wait until all of them have arrived, then
/// releases them together; reusable round after round.
///
/// ```
/// use std::sync::Arc;
/// use runtime::sync::Barrier;
/// let barrier = Arc::new(Barrier::new(4));
/// let hs: Vec<_> = (0..4)
///     .map(|_| {
///         let b = barrier.clone();
///         runtime::go(move || b.wait().is_leader())
///     })
///     .collect();
/// let leaders = hs.into_iter().map(|h| h.join().unwrap());
/// assert_eq!(leaders.filter(|&l| l).count(), 1);
/// ```
#[derive(Debug)]
pub struct Barrier {
    n: usize,
    q: WaitQueue<Round>,
}

/// The state behind the queue's lock.
#[derive(Debug)]
struct Round {
    /// Arrivals in this round.
    arrived: usize,
}

/// What [`Barrier::wait`] returns: whether this caller was the leader (the
/// last to arrive; exactly one per round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one waiter of each round.
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

// As std's: its count changes in single steps under its lock.
impl std::panic::UnwindSafe for Barrier {}
impl std::panic::RefUnwindSafe for Barrier {}

impl Barrier {
    /// A barrier for `n` parties. `n` of 0 or 1 never waits (as std's).
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n,
            q: WaitQueue::new(Round { arrived: 0 }),
        }
    }

    /// Waits until `n` parties (this one included) have called `wait` in
    /// this round: a G parks, a thread blocks. The last to arrive is the
    /// leader and wakes the others.
    pub fn wait(&self) -> BarrierWaitResult {
        let mut q = self.q.lock();
        q.arrived += 1;
        if q.arrived < self.n {
            return match q.wait(&WaitOptions::new(WaitReason::CondWait)) {
                Woken::By(_) => BarrierWaitResult(false),
                Woken::TimedOut => scheduler::throw!("Barrier::wait: timed out without a deadline"),
            };
        }
        q.arrived = 0;
        let woken = q.pop_all(0);
        drop(q);
        for w in woken {
            w.wake();
        }
        BarrierWaitResult(true)
    }
}
