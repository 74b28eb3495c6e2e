//! Timers, kept per P and fired by the scheduler (no thread per timer).
//!
//! Each P owns a min-heap of `(when, seq, G)` under a small mutex, plus an
//! atomic copy of the earliest deadline (`next_when`) that lets the scheduler
//! skip the lock and the clock read when nothing is due. `find_runnable` runs
//! its own P's due timers, runs other Ps' due timers while stealing, and an M
//! that goes to sleep sleeps no longer than the earliest deadline of any P.
//! Times are nanoseconds of the runtime clock ([`nanotime`]).

use crate::g::GRef;
use core::cmp::Reverse;
use core::sync::atomic::{AtomicU64, Ordering};
use parking_lot::Mutex;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// No timer pending.
pub const NEVER: u64 = u64::MAX;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the runtime clock's epoch (monotonic).
pub fn nanotime() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_nanos() as u64
}

/// The instant `t` of the runtime clock stands for.
pub fn instant_of(t: u64) -> Instant {
    *EPOCH.get_or_init(Instant::now) + Duration::from_nanos(t)
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    when: u64,
    seq: u64,
    g: usize,
}

/// A P's timers.
#[derive(Debug)]
pub struct Timers {
    heap: Mutex<(BinaryHeap<Reverse<Entry>>, u64)>,
    next_when: AtomicU64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            heap: Mutex::new((BinaryHeap::new(), 0)),
            next_when: AtomicU64::new(NEVER),
        }
    }
}

impl Timers {
    /// Earliest deadline, or [`NEVER`]. Lock-free.
    pub fn next_when(&self) -> u64 {
        self.next_when.load(Ordering::Acquire)
    }

    /// Adds a timer that makes `g` runnable at `when`. The caller must hold
    /// the right to ready `g` and hand it to the timer.
    pub fn add(&self, when: u64, g: GRef) {
        let mut h = self.heap.lock();
        h.1 += 1;
        let seq = h.1;
        h.0.push(Reverse(Entry {
            when,
            seq,
            g: g.as_ptr() as usize,
        }));
        let first = h.0.peek().map_or(NEVER, |e| e.0.when);
        self.next_when.store(first, Ordering::Release);
    }

    /// Removes every timer due at `now` and passes its G to `fire`, in
    /// deadline order. Returns how many fired.
    pub fn run_due(&self, now: u64, mut fire: impl FnMut(GRef)) -> usize {
        if self.next_when() > now {
            return 0;
        }
        let mut due = [0usize; 32];
        let mut total = 0;
        loop {
            let mut n = 0;
            {
                let mut h = self.heap.lock();
                while n < due.len() {
                    match h.0.peek() {
                        Some(e) if e.0.when <= now => {
                            due[n] = h.0.pop().map_or(0, |e| e.0.g);
                            n += 1;
                        }
                        _ => break,
                    }
                }
                let first = h.0.peek().map_or(NEVER, |e| e.0.when);
                self.next_when.store(first, Ordering::Release);
            }
            // Fire outside the lock: readying a G may take other locks.
            for &g in &due[..n] {
                // SAFETY: entries hold pointers from GRef::as_ptr.
                if let Some(g) = unsafe { GRef::from_ptr(g as *mut _) } {
                    fire(g);
                }
            }
            total += n;
            if n < due.len() {
                return total;
            }
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.heap.lock().0.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.next_when() == NEVER
    }
}
