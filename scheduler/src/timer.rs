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

/// What a timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// Make this G (a `GRef` pointer) runnable: `runtime::sleep`.
    G(usize),
    /// An I/O deadline: wake the G waiting on poll descriptor `pd` in
    /// direction `mode` with wait `token`, if it still waits (see
    /// `netpoll.rs`; a stale timer finds nothing and does nothing).
    Io { pd: u32, mode: u8, token: u64 },
}

/// The P a new timer goes on: the current M's, or, for an M that lost its P
/// to sysmon, one chosen by the M's id (heaps are locked, so any thread may
/// add to any P's timers; the Ms that run timers look at every P).
pub(crate) fn host_p() -> &'static crate::p::P {
    let s = crate::sched::sched();
    let m = crate::m::current_m();
    match m.and_then(|m| m.p()) {
        Some(p) => p,
        None => &s.ps[m.map_or(0, |m| m.id) % s.ps.len()],
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    when: u64,
    seq: u64,
    target: Target,
}

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
        self.add_target(when, Target::G(g.as_ptr() as usize));
    }

    /// Adds an I/O deadline (see `netpoll.rs`).
    pub(crate) fn add_io(&self, when: u64, pd: u32, mode: u8, token: u64) {
        self.add_target(when, Target::Io { pd, mode, token });
    }

    fn add_target(&self, when: u64, target: Target) {
        let mut h = self.heap.lock();
        h.1 += 1;
        let seq = h.1;
        h.0.push(Reverse(Entry { when, seq, target }));
        let first = h.0.peek().map_or(NEVER, |e| e.0.when);
        self.next_when.store(first, Ordering::Release);
    }

    /// Removes every timer due at `now` and passes its G to `fire`, in
    /// deadline order. Returns how many fired.
    pub fn run_due(&self, now: u64, mut fire: impl FnMut(GRef)) -> usize {
        if self.next_when() > now {
            return 0;
        }
        let mut due = [Target::G(0); 32];
        let mut total = 0;
        loop {
            let mut n = 0;
            {
                let mut h = self.heap.lock();
                while n < due.len() {
                    match h.0.peek() {
                        Some(e) if e.0.when <= now => {
                            due[n] = h.0.pop().map_or(Target::G(0), |e| e.0.target);
                            n += 1;
                        }
                        _ => break,
                    }
                }
                let first = h.0.peek().map_or(NEVER, |e| e.0.when);
                self.next_when.store(first, Ordering::Release);
            }
            // Fire outside the lock: readying a G may take other locks.
            for &t in &due[..n] {
                let g = match t {
                    // SAFETY: entries hold pointers from GRef::as_ptr.
                    Target::G(g) => unsafe { GRef::from_ptr(g as *mut _) },
                    Target::Io { pd, mode, token } => crate::netpoll::deadline(pd, mode, token),
                };
                if let Some(g) = g {
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
