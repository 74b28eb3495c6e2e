//! The per-P timer heaps (data: the engine fires them, `timer.rs` arms
//! them). Timers are kept per P and fired by the scheduler (no thread per
//! timer).
//!
//! Each P owns a min-heap of `(when, seq, what)` under a small mutex, plus an
//! atomic copy of the earliest deadline (`next_when`) that lets the scheduler
//! skip the lock and the clock read when nothing is due. `find_runnable` runs
//! its own P's due timers, runs other Ps' due timers while stealing, and an M
//! that goes to sleep sleeps no longer than the earliest deadline of any P.
//! Times are nanoseconds of the runtime clock (`clock.rs`).
//!
//! A timer either readies a G (`runtime::sleep`: the G handed itself to the
//! timer) or runs a function ([`start_timer`](crate::timer::start_timer): channel timeouts, `after`,
//! tickers, I/O deadlines). Functions run on an M's scheduler context (`g0`) holding a P,
//! outside the heap lock; they must not block (they may `ready` Gs, send on
//! a channel with `try_send`, or re-arm themselves).
//!
//! # Stopping a timer
//!
//! [`Timer::stop`] marks the timer stopped (an atomic flag) and counts it in
//! its heap's `stopped`; the entry stays in the heap and is discarded when it
//! comes due, as Go does with deleted timers. When stopped entries make up
//! more than half of a heap (and there are more than `CLEAN_MIN`), the
//! next `add` rebuilds the heap without them, so a loop of `recv_timeout`s
//! with long timeouts that never expire cannot grow the heap without bound.
//! Rejected: an indexed heap with removal (every entry would need a back
//! pointer updated on each sift, paid by every timer to speed up the rare
//! stop).

use crate::clock::NEVER;
use crate::g::GRef;
use crate::lock_rank::{Rank, RankedMutex};
use core::cmp::{Ordering as CmpOrdering, Reverse};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::collections::BinaryHeap;
use std::sync::Arc;

/// Fewest stopped entries before a heap is worth rebuilding.
const CLEAN_MIN: usize = 64;

/// What a timer function receives: the runtime-clock time it was due at.
pub type TimerFn = dyn Fn(u64) + Send + Sync;

/// The shared part of a function timer: the heap entry and the [`Timer`]
/// handle both hold it.
struct FuncTimer {
    f: Box<TimerFn>,
    stopped: AtomicBool,
    /// The heap holding the entry, for the `stopped` count.
    heap: &'static Timers,
}

enum What {
    /// Ready this G (it parked and handed itself to the timer).
    G(GRef),
    /// Run this function, unless stopped.
    Func(Arc<FuncTimer>),
}

struct Entry {
    when: u64,
    seq: u64,
    what: What,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Entry) -> bool {
        (self.when, self.seq) == (o.when, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Entry) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Entry) -> CmpOrdering {
        (self.when, self.seq).cmp(&(o.when, o.seq))
    }
}

struct Heap {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

/// A P's timers.
pub struct Timers {
    heap: RankedMutex<Heap>,
    next_when: AtomicU64,
    /// Stopped function timers still in the heap.
    stopped: AtomicUsize,
}

impl core::fmt::Debug for Timers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Timers")
            .field("next_when", &self.next_when())
            .finish()
    }
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            heap: RankedMutex::new(
                Rank::TimerHeap,
                Heap {
                    heap: BinaryHeap::new(),
                    seq: 0,
                },
            ),
            next_when: AtomicU64::new(NEVER),
            stopped: AtomicUsize::new(0),
        }
    }
}

/// What `run_due` hands out, outside the heap lock.
enum Due {
    G(GRef),
    Func(Arc<FuncTimer>, u64),
}

impl Timers {
    /// Earliest deadline, or [`NEVER`]. Lock-free.
    pub fn next_when(&self) -> u64 {
        self.next_when.load(Ordering::Acquire)
    }

    fn push(&self, when: u64, what: What) {
        let mut h = self.heap.lock();
        let stopped = self.stopped.load(Ordering::Relaxed);
        if stopped > CLEAN_MIN && stopped.saturating_mul(2) > h.heap.len() {
            let old = core::mem::take(&mut h.heap);
            h.heap = old
                .into_iter()
                .filter(|e| match &e.0.what {
                    What::G(_) => true,
                    What::Func(t) => !t.stopped.load(Ordering::Relaxed),
                })
                .collect();
            self.stopped.store(0, Ordering::Relaxed);
        }
        h.seq += 1;
        let seq = h.seq;
        h.heap.push(Reverse(Entry { when, seq, what }));
        let first = h.heap.peek().map_or(NEVER, |e| e.0.when);
        self.next_when.store(first, Ordering::Release);
    }

    /// Adds a timer that makes `g` runnable at `when`. The caller must hold
    /// the right to ready `g` and hand it to the timer.
    pub fn add(&self, when: u64, g: GRef) {
        self.push(when, What::G(g));
    }

    /// Adds a timer that calls `f(when)` at `when` (see
    /// [`start_timer`](crate::timer::start_timer)) and returns its handle.
    pub fn add_func(&'static self, when: u64, f: Box<TimerFn>) -> Timer {
        let t = Arc::new(FuncTimer {
            f,
            stopped: AtomicBool::new(false),
            heap: self,
        });
        self.push(when, What::Func(t.clone()));
        Timer { t }
    }

    /// Removes every timer due at `now` and fires it, in deadline order:
    /// a G goes to `ready`, a function is called. Returns how many fired.
    pub fn run_due(&self, now: u64, mut ready: impl FnMut(GRef)) -> usize {
        if self.next_when() > now {
            return 0;
        }
        let mut total = 0;
        loop {
            let mut due: [Option<Due>; 32] = Default::default();
            let mut n = 0;
            {
                let mut h = self.heap.lock();
                while n < due.len() {
                    match h.heap.peek() {
                        Some(e) if e.0.when <= now => {
                            let Some(Reverse(e)) = h.heap.pop() else {
                                break;
                            };
                            match e.what {
                                What::G(g) => due[n] = Some(Due::G(g)),
                                What::Func(t) => {
                                    if t.stopped.load(Ordering::Relaxed) {
                                        // The count is a heuristic: a stop
                                        // racing a rebuild may not be in it.
                                        let _ = self.stopped.fetch_update(
                                            Ordering::Relaxed,
                                            Ordering::Relaxed,
                                            |v| v.checked_sub(1),
                                        );
                                        continue;
                                    }
                                    due[n] = Some(Due::Func(t, e.when));
                                }
                            }
                            n += 1;
                        }
                        _ => break,
                    }
                }
                let first = h.heap.peek().map_or(NEVER, |e| e.0.when);
                self.next_when.store(first, Ordering::Release);
            }
            // Fire outside the lock: readying a G or a timer function may
            // take other locks (and may add timers to this heap).
            for d in due.iter_mut().take(n) {
                match d.take() {
                    Some(Due::G(g)) => ready(g),
                    // The swap claims the firing against a concurrent
                    // `stop`: exactly one of the two sees the flag unset.
                    Some(Due::Func(t, when)) if !t.stopped.swap(true, Ordering::AcqRel) => {
                        (t.f)(when);
                    }
                    Some(Due::Func(..)) | None => {}
                }
            }
            total += n;
            if n < due.len() {
                return total;
            }
        }
    }

    /// Number of pending timers (stopped ones included until discarded).
    pub fn len(&self) -> usize {
        self.heap.lock().heap.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.next_when() == NEVER
    }
}

/// A function timer started with
/// [`start_timer`](crate::timer::start_timer). Dropping the handle does
/// not stop it.
#[must_use = "a timer runs even if its handle is dropped; keep it to stop it"]
pub struct Timer {
    t: Arc<FuncTimer>,
}

impl core::fmt::Debug for Timer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Timer")
            .field("stopped", &self.t.stopped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Timer {
    /// Stops the timer. Returns true if this stopped it before it fired;
    /// false if it had already fired (or is firing now) or was stopped.
    pub fn stop(&self) -> bool {
        let stopped = !self.t.stopped.swap(true, Ordering::AcqRel);
        if stopped {
            self.t.heap.stopped.fetch_add(1, Ordering::Relaxed);
        }
        stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_timers_are_compacted_away() {
        let far = crate::clock::nanotime() + 3_600_000_000_000;
        let heap: &'static Timers = Box::leak(Box::default());
        let ts: Vec<Timer> = (0..1000)
            .map(|_| heap.add_func(far, Box::new(|_| panic!("a stopped timer fired"))))
            .collect();
        let before = heap.len();
        assert!(before >= 1000);
        for t in &ts {
            assert!(t.stop());
        }
        assert!(!ts[0].stop(), "a second stop reports false");
        let last = heap.add_func(far, Box::new(|_| {}));
        assert!(
            heap.len() + 900 < before,
            "stopped entries kept: {} of {before}",
            heap.len()
        );
        assert!(last.stop());
    }
}
