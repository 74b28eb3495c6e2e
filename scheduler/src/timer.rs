//! Timers, kept per P and fired by the scheduler (no thread per timer).
//!
//! Each P owns a min-heap of `(when, seq, G)` under a small mutex, plus an
//! atomic copy of the earliest deadline (`next_when`) that lets the scheduler
//! skip the lock and the clock read when nothing is due. `find_runnable` runs
//! its own P's due timers, runs other Ps' due timers while stealing, and an M
//! that goes to sleep sleeps no longer than the earliest deadline of any P.
//! Times are nanoseconds of the runtime clock ([`nanotime`]).
//!
//! A timer either readies a G (`sleep`) or runs a [`TimerFn`] (a wait with
//! a deadline: the callback decides, under the wait queue's lock, whether
//! the wait already ended another way). A callback timer whose wait ended
//! early is *stale*: it stays in the heap until it reaches the top or stale
//! entries outnumber live ones, then it is dropped without firing
//! ([`Timers::note_stale`]). Until then it counts as a pending timer, so a
//! deadlock that follows can be reported only once the stale entry is gone
//! (at worst at its deadline). Rejected: removing an entry from the middle of
//! the heap at once (needs an index per entry kept up to date on every
//! sift, for waits that mostly end before their deadline anyway).

use crate::g::GRef;
use core::cmp::Reverse;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use parking_lot::Mutex;
use std::collections::BinaryHeap;
use std::sync::{Arc, OnceLock};
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

/// The runtime-clock time of `t` (0 if before the epoch).
pub fn nanotime_of(t: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(t.saturating_duration_since(epoch).as_nanos()).unwrap_or(NEVER - 1)
}

/// What a callback timer runs when due.
pub trait TimerFn: Send + Sync {
    /// Called once when the deadline passes, on an M holding a P, outside
    /// the heap's lock.
    fn fire(&self);
    /// Whether firing would do nothing (the wait ended another way): such an
    /// entry may be dropped without firing.
    fn is_stale(&self) -> bool;
}

/// What a due timer does.
enum What {
    /// Ready this G (a pointer from `GRef::as_ptr`).
    G(usize),
    /// Run this callback.
    Call(Arc<dyn TimerFn>),
}

impl What {
    fn is_stale(&self) -> bool {
        match self {
            What::G(_) => false,
            What::Call(f) => f.is_stale(),
        }
    }
}

/// A heap entry, ordered by deadline then by insertion.
struct Entry {
    when: u64,
    seq: u64,
    what: What,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.when, self.seq) == (other.when, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> core::cmp::Ordering {
        (self.when, self.seq).cmp(&(other.when, other.seq))
    }
}

/// A P's timers.
pub struct Timers {
    heap: Mutex<(BinaryHeap<Reverse<Entry>>, u64)>,
    next_when: AtomicU64,
    /// Callback entries reported stale since the last sweep.
    n_stale: AtomicUsize,
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
            heap: Mutex::new((BinaryHeap::new(), 0)),
            next_when: AtomicU64::new(NEVER),
            n_stale: AtomicUsize::new(0),
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
        self.push(when, What::G(g.as_ptr() as usize));
    }

    /// Adds a timer that runs `f` at `when`.
    pub fn add_call(&self, when: u64, f: Arc<dyn TimerFn>) {
        self.push(when, What::Call(f));
    }

    fn push(&self, when: u64, what: What) {
        let mut h = self.heap.lock();
        h.1 += 1;
        let seq = h.1;
        h.0.push(Reverse(Entry { when, seq, what }));
        let first = h.0.peek().map_or(NEVER, |e| e.0.when);
        self.next_when.store(first, Ordering::Release);
    }

    /// A callback timer of this heap became stale. Drops stale entries from
    /// the top (so the next deadline is a live one), and sweeps the whole
    /// heap once stale entries may be half of it: memory stays within twice
    /// the live timers.
    pub fn note_stale(&self) {
        let n = self.n_stale.fetch_add(1, Ordering::Relaxed) + 1;
        let mut h = self.heap.lock();
        if n > 64 && 2 * n > h.0.len() {
            self.n_stale.store(0, Ordering::Relaxed);
            h.0.retain(|e| !e.0.what.is_stale());
        }
        while h.0.peek().is_some_and(|e| e.0.what.is_stale()) {
            h.0.pop();
        }
        let first = h.0.peek().map_or(NEVER, |e| e.0.when);
        self.next_when.store(first, Ordering::Release);
    }

    /// Removes every timer due at `now` and passes its G to `fire`, in
    /// deadline order. Returns how many fired.
    pub fn run_due(&self, now: u64, mut fire: impl FnMut(GRef)) -> usize {
        if self.next_when() > now {
            return 0;
        }
        let mut due: [Option<What>; 32] = [const { None }; 32];
        let mut total = 0;
        loop {
            let mut n = 0;
            {
                let mut h = self.heap.lock();
                while n < due.len() {
                    match h.0.peek() {
                        Some(e) if e.0.when <= now => {
                            due[n] = h.0.pop().map(|e| e.0.what);
                            n += 1;
                        }
                        _ => break,
                    }
                }
                let first = h.0.peek().map_or(NEVER, |e| e.0.when);
                self.next_when.store(first, Ordering::Release);
            }
            // Fire outside the lock: readying a G, or a callback taking a
            // wait queue's lock, may take other locks (lock order: a wait
            // queue, then a timer heap).
            for what in &mut due[..n] {
                match what.take() {
                    Some(What::G(g)) => {
                        // SAFETY: entries hold pointers from GRef::as_ptr.
                        if let Some(g) = unsafe { GRef::from_ptr(g as *mut _) } {
                            fire(g);
                        }
                    }
                    Some(What::Call(f)) => f.fire(),
                    None => {}
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
