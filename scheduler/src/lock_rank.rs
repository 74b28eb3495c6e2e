//! Lock ranks: the one order in which the runtime's locks are taken, checked
//! in debug builds (Go's `lockrank.go`).
//!
//! Every lock the runtime holds for its own state has a [`Rank`]. A thread
//! may take a lock only if its rank is higher than the rank of every lock
//! it already holds; locks of one rank are never nested, except channel
//! locks, which `select` takes several at a time in increasing address
//! order. Two threads that obey the order cannot deadlock on these locks.
//!
//! | rank | lock | known to be taken while holding |
//! |---|---|---|
//! | [`LiveDump`](Rank::LiveDump) | `signals::live`: one live dump at a time | — |
//! | [`SignalStart`](Rank::SignalStart) | `runtime::signal`: the delivery thread started | — |
//! | [`SignalSubs`](Rank::SignalSubs) | `runtime::signal`: channels and their signals | — |
//! | [`SignalPrevious`](Rank::SignalPrevious) | `signals::notify`: the actions `notify` replaced | the subscriptions |
//! | [`TickerTimer`](Rank::TickerTimer) | `runtime::time::Ticker`: the armed timer | — |
//! | [`TickerPeriod`](Rank::TickerPeriod) | `runtime::time::Ticker`: the period | the ticker's timer |
//! | [`Chan`](Rank::Chan) | a channel (`chan::lock`, a spin lock) | other channels (lower addresses), the subscriptions (delivery), a ticker's timer (a tick) |
//! | [`PollDesc`](Rank::PollDesc) | a poll descriptor (`netpoll`) | — |
//! | [`WaitQueue`](Rank::WaitQueue) | a `runtime::sync` wait queue (`sync_queue`: condition variable, wait group, semaphore, barrier) | — |
//! | [`SemaQueue`](Rank::SemaQueue) | a runtime semaphore's queue (`sema`: the mutexes of `runtime::sync`) | a condition variable's queue |
//! | [`Synced`](Rank::Synced) | `Sched::synced`: idle Ms and Ps | — |
//! | [`TimerHeap`](Rank::TimerHeap) | a P's timer heap | channels, a poll descriptor, a wait queue |
//! | [`GFree`](Rank::GFree) | `Sched::gfree`: the global free Gs | — |
//! | [`StackPool`](Rank::StackPool) | the stack pool's lists | — |
//! | [`PollDescFree`](Rank::PollDescFree) | `netpoll`: free descriptor slots | — |
//! | [`ExtraM`](Rank::ExtraM) | the extra-M list (`mlist`, a spin lock with signals blocked; a signal handler takes it unrecorded) | — |
//! | [`Registry`](Rank::Registry) | an append-only registry's append lock (`ALLGS`, `ALLMS`) | the extra-M list (a new extra M) |
//! | [`ScopeResult`](Rank::ScopeResult) | `runtime::scope`: a scoped G's result slot | — |
//! | [`CapiSpawned`](Rank::CapiSpawned) | `gort-capi`: the Gs `gort_spawn` started, by handle | — |
//! | [`SysmonWake`](Rank::SysmonWake) | sysmon's wake-up flag (`bell`) | anything: a wake-up may come from any path |
//! | [`Note`](Rank::Note) | an M's note (how it sleeps) | anything: a wake-up may come from any path |
//!
//! Not ranked: what a signal handler takes. It takes no lock ordinary code
//! may hold but the extra-M list's, which every holder takes with all
//! signals blocked, so a handler never finds its own thread holding it; it
//! takes that one without recording it (`mlist::counts_consistent`,
//! `needm` in a handler), since the ranks its thread holds belong to the
//! code it interrupted. The dump's section lock is taken only by handlers.
//! `runtime::sync`'s locks are the users' locks, held across parks and in
//! any order the program chooses, as Go's `sync.Mutex` is.
//!
//! # How the check works
//!
//! [`RankedMutex`] wraps `parking_lot::Mutex`; the hand-rolled spin locks
//! call [`acquired`] and [`released`] themselves. In a debug build each
//! thread keeps the ranks it holds in a small thread-local array (a
//! `thread_local!` with a `const` initialiser and no destructor: no
//! allocation, no lazy set-up, usable on a foreign thread). Taking a lock
//! out of order stops the process with `fatal error: lock_rank: …` after a
//! line naming both locks. A lock may be released by a later context of
//! the same thread (a parked G's wait-list lock is released by whatever
//! runs next on its M), so a release removes its entry wherever it is. In a
//! release build the rank is not stored and every check compiles to nothing.

use core::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

/// A lock's place in the order: a thread takes locks in increasing rank.
/// See the module docs for what each lock guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// `signals::live`: one live dump at a time.
    LiveDump,
    /// `runtime::signal`: whether the delivery thread runs.
    SignalStart,
    /// `runtime::signal`: the channels signals are delivered to.
    SignalSubs,
    /// `signals::notify`: the actions `notify` replaced.
    SignalPrevious,
    /// `runtime::time::Ticker`: the armed timer and its generation.
    TickerTimer,
    /// `runtime::time::Ticker`: the period.
    TickerPeriod,
    /// A channel's lock. Several may be held, taken in increasing address
    /// order (`select`).
    Chan,
    /// A poll descriptor's state (`netpoll`).
    PollDesc,
    /// A `runtime::sync` wait queue.
    WaitQueue,
    /// A runtime semaphore's wait queue (`sema`).
    SemaQueue,
    /// `Sched::synced`: the idle Ms and Ps.
    Synced,
    /// A P's timer heap.
    TimerHeap,
    /// `Sched::gfree`: free G structs.
    GFree,
    /// The stack pool's lists.
    StackPool,
    /// `netpoll`'s free descriptor slots.
    PollDescFree,
    /// The extra-M list (a spin lock taken with every signal blocked).
    ExtraM,
    /// An append-only registry's append lock.
    Registry,
    /// `runtime::scope`: a scoped G's result slot.
    ScopeResult,
    /// `gort-capi`: the joinable Gs started from C.
    CapiSpawned,
    /// sysmon's wake-up flag.
    SysmonWake,
    /// An M's note.
    Note,
}

impl Rank {
    /// The rank's name, as the check prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Rank::LiveDump => "LiveDump",
            Rank::SignalStart => "SignalStart",
            Rank::SignalSubs => "SignalSubs",
            Rank::SignalPrevious => "SignalPrevious",
            Rank::TickerTimer => "TickerTimer",
            Rank::TickerPeriod => "TickerPeriod",
            Rank::Chan => "Chan",
            Rank::PollDesc => "PollDesc",
            Rank::WaitQueue => "WaitQueue",
            Rank::SemaQueue => "SemaQueue",
            Rank::Synced => "Synced",
            Rank::TimerHeap => "TimerHeap",
            Rank::GFree => "GFree",
            Rank::StackPool => "StackPool",
            Rank::PollDescFree => "PollDescFree",
            Rank::ExtraM => "ExtraM",
            Rank::Registry => "Registry",
            Rank::ScopeResult => "ScopeResult",
            Rank::CapiSpawned => "CapiSpawned",
            Rank::SysmonWake => "SysmonWake",
            Rank::Note => "Note",
        }
    }

    /// Whether locks of this rank may nest (in increasing address order).
    /// Only the debug-build check asks.
    #[cfg(debug_assertions)]
    const fn nests(self) -> bool {
        matches!(self, Rank::Chan)
    }
}

/// Records that the calling thread took the lock at `addr` of rank `rank`,
/// and stops the process if that breaks the order. For hand-rolled locks;
/// [`RankedMutex`] calls it itself. Nothing in a release build.
#[inline(always)]
pub fn acquired(rank: Rank, addr: usize) {
    #[cfg(debug_assertions)]
    held::push(rank, addr);
    #[cfg(not(debug_assertions))]
    let _ = (rank, addr);
}

/// Records that the calling thread released the lock at `addr`. Nothing in
/// a release build.
#[inline(always)]
pub fn released(addr: usize) {
    #[cfg(debug_assertions)]
    held::remove(addr);
    #[cfg(not(debug_assertions))]
    let _ = addr;
}

/// The ranks this thread holds (debug builds).
#[cfg(debug_assertions)]
mod held {
    use super::Rank;
    use core::cell::Cell;
    use core::sync::atomic::{Ordering, compiler_fence};

    /// Locks a thread may hold at once and still be checked: a `select`
    /// over more channels than this is checked only up to here.
    const CAP: usize = 32;

    struct Held {
        len: Cell<usize>,
        /// Entries beyond `CAP`, not recorded (their releases find nothing).
        lost: Cell<usize>,
        rank: [Cell<Option<Rank>>; CAP],
        addr: [Cell<usize>; CAP],
    }

    thread_local! {
        static HELD: Held = const {
            Held {
                len: Cell::new(0),
                lost: Cell::new(0),
                rank: [const { Cell::new(None) }; CAP],
                addr: [const { Cell::new(0) }; CAP],
            }
        };
    }

    pub(super) fn push(rank: Rank, addr: usize) {
        HELD.with(|h| {
            let len = h.len.get();
            for i in 0..len {
                let Some(r) = h.rank[i].get() else { continue };
                let ok = r < rank || (r == rank && rank.nests() && h.addr[i].get() < addr);
                if !ok {
                    out_of_order(rank, addr, r, h.addr[i].get());
                }
            }
            if len == CAP {
                h.lost.set(h.lost.get() + 1);
                return;
            }
            // The length first, then the entry: a signal handler that
            // takes the extra-M lock between the two writes pushes and
            // pops above this entry instead of over it.
            h.len.set(len + 1);
            compiler_fence(Ordering::Release);
            h.rank[len].set(Some(rank));
            h.addr[len].set(addr);
        });
    }

    pub(super) fn remove(addr: usize) {
        HELD.with(|h| {
            let len = h.len.get();
            let Some(i) = (0..len).rev().find(|&i| h.addr[i].get() == addr) else {
                // Taken while the array was full.
                h.lost.set(h.lost.get().saturating_sub(1));
                return;
            };
            for j in i..len - 1 {
                h.rank[j].set(h.rank[j + 1].get());
                h.addr[j].set(h.addr[j + 1].get());
            }
            // The entries first, then the length (as in `push`).
            compiler_fence(Ordering::Release);
            h.len.set(len - 1);
        });
    }

    /// Whether the calling thread holds a lock of `rank` (for tests).
    #[cfg(test)]
    pub(super) fn holds(rank: Rank) -> bool {
        HELD.with(|h| (0..h.len.get()).any(|i| h.rank[i].get() == Some(rank)))
    }

    #[cold]
    #[inline(never)]
    fn out_of_order(rank: Rank, addr: usize, held: Rank, held_addr: usize) -> ! {
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        crate::fatal::write_stderr(&[
            b"runtime: lock ordering problem: taking ",
            rank.name().as_bytes(),
            b" (0x",
            hex(addr, &mut a),
            b") while holding ",
            held.name().as_bytes(),
            b" (0x",
            hex(held_addr, &mut b),
            b")\n",
        ]);
        crate::throw!("lock_rank: locks taken out of rank order")
    }

    /// `0x…` of `v`, written into `buf` without allocating.
    fn hex(v: usize, buf: &mut [u8; 16]) -> &[u8] {
        let digits = (usize::BITS as usize / 4).min(16);
        for i in 0..digits {
            buf[digits - 1 - i] = b"0123456789abcdef"[(v >> (4 * i)) & 0xf];
        }
        let start = buf[..digits - 1].iter().take_while(|&&c| c == b'0').count();
        &buf[start..digits]
    }
}

/// A `parking_lot::Mutex` with a [`Rank`]. Its guard derefs to the data as
/// `parking_lot`'s does; in a release build it is `parking_lot::Mutex`
/// itself.
pub struct RankedMutex<T> {
    #[cfg(debug_assertions)]
    rank: Rank,
    inner: parking_lot::Mutex<T>,
}

impl<T: core::fmt::Debug> core::fmt::Debug for RankedMutex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T> RankedMutex<T> {
    /// A mutex of rank `rank` holding `value`.
    pub const fn new(rank: Rank, value: T) -> RankedMutex<T> {
        #[cfg(not(debug_assertions))]
        let _ = rank;
        RankedMutex {
            #[cfg(debug_assertions)]
            rank,
            inner: parking_lot::Mutex::new(value),
        }
    }

    /// Takes the lock (checking the order in a debug build).
    #[inline]
    pub fn lock(&self) -> RankedGuard<'_, T> {
        #[cfg(debug_assertions)]
        acquired(self.rank, self.addr());
        RankedGuard {
            mutex: self,
            inner: core::mem::ManuallyDrop::new(self.inner.lock()),
        }
    }

    /// The data, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    /// The data, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }

    /// Releases the lock of a guard given up with [`RankedGuard::leak`].
    ///
    /// # Safety
    ///
    /// The lock is held through a leaked guard of this thread, and this is
    /// the one release of it.
    pub unsafe fn force_unlock(&self) {
        released(self.addr());
        // SAFETY: the caller holds the lock through a leaked guard.
        unsafe { self.inner.force_unlock() };
    }

    fn addr(&self) -> usize {
        self as *const Self as usize
    }
}

/// A held [`RankedMutex`]. Dropping it releases the lock.
pub struct RankedGuard<'a, T> {
    mutex: &'a RankedMutex<T>,
    inner: core::mem::ManuallyDrop<parking_lot::MutexGuard<'a, T>>,
}

impl<T: core::fmt::Debug> core::fmt::Debug for RankedGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self.inner).fmt(f)
    }
}

impl<'a, T> RankedGuard<'a, T> {
    /// Gives up the guard without releasing the lock; [`RankedMutex::force_unlock`]
    /// releases it later (a parked G's wait-list lock, released by the next
    /// context on its M).
    pub fn leak(mut guard: Self) -> &'a RankedMutex<T> {
        let mutex = guard.mutex;
        // SAFETY: `guard` is forgotten below, so its `inner` is never used
        // or dropped again; forgetting the inner guard keeps the lock held.
        core::mem::forget(unsafe { core::mem::ManuallyDrop::take(&mut guard.inner) });
        core::mem::forget(guard);
        mutex
    }

    /// The mutex this guard holds (to release later with
    /// [`RankedMutex::force_unlock`] once the guard is forgotten).
    pub fn mutex(guard: &Self) -> &'a RankedMutex<T> {
        guard.mutex
    }

    /// `Condvar::wait` on this guard. The thread sleeps holding no other
    /// lock's turn, so its ranks stay as they are.
    pub fn wait(&mut self, cv: &parking_lot::Condvar) {
        cv.wait(&mut self.inner);
    }

    /// `Condvar::wait_until`; returns whether it timed out.
    pub fn wait_until(&mut self, cv: &parking_lot::Condvar, deadline: Instant) -> bool {
        cv.wait_until(&mut self.inner, deadline).timed_out()
    }

    /// `Condvar::wait_for`; returns whether it timed out.
    pub fn wait_for(&mut self, cv: &parking_lot::Condvar, d: Duration) -> bool {
        cv.wait_for(&mut self.inner, d).timed_out()
    }

    /// Runs `f` with the lock released (its rank too), then takes it back.
    pub fn unlocked<U>(&mut self, f: impl FnOnce() -> U) -> U {
        released(self.mutex.addr());
        let r = parking_lot::MutexGuard::unlocked(&mut self.inner, f);
        #[cfg(debug_assertions)]
        acquired(self.mutex.rank, self.mutex.addr());
        r
    }
}

impl<T> Deref for RankedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for RankedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T> Drop for RankedGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: `inner` is dropped here once and never used after.
        unsafe { core::mem::ManuallyDrop::drop(&mut self.inner) };
        released(self.mutex.addr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_in_rank_order_are_recorded_and_released() {
        let a = RankedMutex::new(Rank::Synced, 1);
        let b = RankedMutex::new(Rank::TimerHeap, 2);
        let ga = a.lock();
        let gb = b.lock();
        assert_eq!(*ga + *gb, 3);
        #[cfg(debug_assertions)]
        assert!(held::holds(Rank::Synced) && held::holds(Rank::TimerHeap));
        // Out of LIFO order, as a parked G's lock is released.
        drop(ga);
        drop(gb);
        #[cfg(debug_assertions)]
        assert!(!held::holds(Rank::Synced) && !held::holds(Rank::TimerHeap));
        // Once released, a lower rank may be taken again.
        let _ga = a.lock();
    }

    #[test]
    fn a_leaked_guard_keeps_its_rank_until_force_unlock() {
        let a = RankedMutex::new(Rank::PollDesc, ());
        let m = RankedGuard::leak(a.lock());
        #[cfg(debug_assertions)]
        assert!(held::holds(Rank::PollDesc));
        // SAFETY: leaked just above on this thread; released once.
        unsafe { m.force_unlock() };
        #[cfg(debug_assertions)]
        assert!(!held::holds(Rank::PollDesc));
        drop(a.lock());
    }

    #[test]
    fn channel_locks_nest_in_address_order() {
        let chans = [0u8; 3];
        for c in &chans {
            acquired(Rank::Chan, c as *const u8 as usize);
        }
        for c in &chans {
            released(c as *const u8 as usize);
        }
    }

    /// The check fires: a thread that holds the timer heap and takes
    /// `Sched::synced` (an order that can deadlock against `ready`) stops
    /// with a message naming both locks. Runs in a forked child, since the
    /// check ends the process.
    #[test]
    fn taking_a_lower_rank_stops_the_process_in_debug_builds() {
        let (status, stderr) = testkit::in_child_stderr(|| {
            let heap = RankedMutex::new(Rank::TimerHeap, ());
            let synced = RankedMutex::new(Rank::Synced, ());
            let _h = heap.lock();
            let _s = synced.lock();
        });
        if cfg!(debug_assertions) {
            assert!(
                libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGABRT,
                "status {status:#x}, stderr: {stderr}"
            );
            assert!(
                stderr.contains("lock ordering problem: taking Synced (0x")
                    && stderr.contains(") while holding TimerHeap (0x"),
                "{stderr}"
            );
            assert!(
                stderr.contains("fatal error: lock_rank: locks taken out of rank order"),
                "{stderr}"
            );
        } else {
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "release builds do not check: status {status:#x}, stderr: {stderr}"
            );
        }
    }

    /// Channel locks out of address order are caught like any other.
    #[test]
    fn channel_locks_out_of_address_order_stop_the_process_in_debug_builds() {
        let (status, stderr) = testkit::in_child_stderr(|| {
            let chans = [0u8; 2];
            acquired(Rank::Chan, &chans[1] as *const u8 as usize);
            acquired(Rank::Chan, &chans[0] as *const u8 as usize);
        });
        if cfg!(debug_assertions) {
            assert!(
                libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGABRT,
                "status {status:#x}, stderr: {stderr}"
            );
            assert!(stderr.contains("taking Chan (0x"), "{stderr}");
        }
    }
}
