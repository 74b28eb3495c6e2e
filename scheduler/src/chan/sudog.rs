//! Who waits on a channel: sudogs, the select state they share, and
//! blocking until one of them fires.
//!
//! A blocked channel operation puts a [`Sudog`] (Go's word: a "pseudo-G"
//! standing for one G in one wait queue) on the channel's send or receive
//! queue. The sudog lives **on the waiting party's stack** (the frame of
//! `send`, `recv` or `select`), so blocking allocates nothing; the queue
//! holds a pointer to it, valid while it is queued (the owner does not
//! return before it is off every queue).
//!
//! Every sudog of one wait points at one [`SelState`]: a plain `send` or
//! `recv` has one sudog, a `select` one per arm. Whoever fires the wait —
//! a channel operation that found the sudog in a queue, `close`, or the
//! timeout timer — first *claims* it by storing the winning arm in
//! `SelState::done`. A wait that more than one party may fire (a select, or
//! any wait with a timeout) claims with a compare-and-swap from 0, so
//! exactly one party wins; the losers skip the sudog (a channel pops it and
//! looks at the next one). A plain wait without timeout can only be fired by
//! the one channel it is queued on, under that channel's lock, so it claims
//! with a plain store (no atomic read-modify-write on the hot path).
//!
//! A sudog does not hold the value: it points at it (Go's `sudog.elem`) —
//! the sender's value in the sender's frame, or the receiver's empty slot
//! in the receiver's frame — and the claimer copies the value across with
//! one `memcpy`, so a large value never sits in a frame in between.
//!
//! The claimer then transfers the value (under the channel lock), takes the
//! [`Waiter`] out of the state, releases the lock and wakes it
//! ([`Wakeup::wake`]): a G is `ready`ed, a thread sees `woken` and returns.
//! After that the claimer touches nothing of the waiter's: it may be gone.

use super::lock::ChanLock;
use crate::g::WaitReason;
use crate::timer::{Timer, start_timer};
use crate::waiter::Waiter;
use core::cell::{Cell, UnsafeCell};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::collections::VecDeque;
use std::sync::Arc;

/// `SelState::done` before anyone fired the wait.
pub(crate) const WAITING: usize = 0;
/// `SelState::done` when the timeout fired.
pub(crate) const TIMED_OUT: usize = usize::MAX;

/// What all sudogs of one wait share.
pub(crate) struct SelState {
    /// [`WAITING`], `arm + 1` for the arm that fired, or [`TIMED_OUT`].
    done: AtomicUsize,
    /// Whether more than one party may fire the wait (claim by CAS).
    shared: bool,
    /// The party to wake; taken by the claimer.
    waiter: UnsafeCell<Option<Waiter>>,
    /// Set by the claimer just before it wakes a thread (a G needs no flag:
    /// it runs again only when `ready`ed).
    woken: AtomicBool,
    /// Whether the waiter is a G (it parks) rather than a thread (it sleeps).
    on_g: bool,
}

// SAFETY: `waiter` is written once at creation and taken once, by the party
// that won the claim (`claim` returns true to exactly one caller); the rest
// is atomic.
unsafe impl Sync for SelState {}
// SAFETY: as above; the Waiter inside is Send.
unsafe impl Send for SelState {}

impl SelState {
    /// A wait by the caller. `shared`: see the module docs.
    pub(crate) fn new(shared: bool) -> SelState {
        let waiter = Waiter::current();
        SelState {
            done: AtomicUsize::new(WAITING),
            shared,
            on_g: matches!(waiter, Waiter::G(_)),
            waiter: UnsafeCell::new(Some(waiter)),
            woken: AtomicBool::new(false),
        }
    }

    /// Tries to fire the wait with `value` (`arm + 1` or [`TIMED_OUT`]).
    /// Channel wakers call it under the lock of the channel the sudog is
    /// queued on.
    #[inline]
    pub(crate) fn claim(&self, value: usize) -> bool {
        if self.shared {
            self.done
                .compare_exchange(WAITING, value, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        } else {
            self.done.store(value, Ordering::Relaxed);
            true
        }
    }

    /// The claimer's ticket to wake the waiter, to use once every lock is
    /// released.
    ///
    /// # Safety
    ///
    /// The caller won [`SelState::claim`] and calls this once.
    #[inline]
    pub(crate) unsafe fn wakeup(&self) -> Wakeup {
        // SAFETY: per the contract, only the claimer takes the waiter.
        let waiter = unsafe { (*self.waiter.get()).take() };
        Wakeup {
            waiter,
            woken: NonNull::from(&self.woken),
        }
    }

    /// The value the wait was fired with (after waking).
    pub(crate) fn fired(&self) -> usize {
        self.done.load(Ordering::Acquire)
    }
}

/// A claimed waiter to wake once every channel lock is released.
#[must_use = "a claimed waiter must be woken"]
pub(crate) struct Wakeup {
    waiter: Option<Waiter>,
    woken: NonNull<AtomicBool>,
}

impl Wakeup {
    /// Wakes the waiter. Nothing of the waiter's is touched afterwards.
    #[inline]
    pub(crate) fn wake(self) {
        // SAFETY: the waiter does not return before `woken` is set (a
        // thread) or it is readied (a G, below), so the flag is alive.
        unsafe { self.woken.as_ref().store(true, Ordering::Release) };
        if let Some(w) = self.waiter {
            w.wake();
        }
    }
}

/// One waiting party in one channel queue. Lives on the waiter's stack.
pub(crate) struct Sudog<T> {
    /// The wait this sudog belongs to.
    pub(crate) sel: NonNull<SelState>,
    /// Which arm (0 for a plain send or receive).
    pub(crate) arm: usize,
    /// Go's `sudog.elem`: for a sender, its value (in the sender's frame);
    /// the receiver that fires the sudog moves it out. For a receiver, its
    /// empty destination slot; the sender that fires it moves a value in.
    /// Valid while the sudog is queued; touched by the claimer under the
    /// channel lock.
    pub(crate) elem: *mut T,
    /// Set by the claimer: true if the value moved, false if the channel was
    /// closed (or lost its last receiver) instead (a sender then still owns
    /// its value; a receiver's slot stays empty).
    pub(crate) success: Cell<bool>,
}

impl<T> Sudog<T> {
    pub(crate) fn new(sel: &SelState, arm: usize, elem: *mut T) -> Sudog<T> {
        Sudog {
            sel: NonNull::from(sel),
            arm,
            elem,
            success: Cell::new(false),
        }
    }
}

/// A channel's queue of waiting senders or receivers, FIFO.
pub(crate) struct WaitQ<T> {
    q: VecDeque<NonNull<Sudog<T>>>,
}

impl<T> WaitQ<T> {
    pub(crate) fn new() -> WaitQ<T> {
        WaitQ { q: VecDeque::new() }
    }

    /// Queues `sg`. Caller holds the channel lock; `sg` stays valid until
    /// it is dequeued or removed.
    pub(crate) fn push(&mut self, sg: &Sudog<T>) {
        self.q.push_back(NonNull::from(sg));
    }

    /// Takes the first sudog whose wait this caller manages to claim (Go's
    /// `waitq.dequeue`): sudogs of waits already fired by someone else are
    /// dropped from the queue. Returns it with the wake-up to deliver after
    /// the lock is released. Caller holds the channel lock.
    #[inline]
    pub(crate) fn dequeue(&mut self) -> Option<(&Sudog<T>, Wakeup)> {
        while let Some(p) = self.q.pop_front() {
            // SAFETY: queued sudogs are valid (their owner is blocked until
            // it is dequeued or has removed it under this lock, which we
            // hold).
            let sg = unsafe { p.as_ref() };
            // SAFETY: the SelState outlives every sudog pointing at it.
            let sel = unsafe { sg.sel.as_ref() };
            if sel.claim(sg.arm + 1) {
                // SAFETY: we won the claim.
                let w = unsafe { sel.wakeup() };
                return Some((sg, w));
            }
        }
        None
    }

    /// Sudogs queued (some may belong to waits already fired). Caller holds
    /// the channel lock.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }

    /// Removes `sg` if it is still queued. Caller holds the channel lock.
    pub(crate) fn remove(&mut self, sg: &Sudog<T>) {
        let p = NonNull::from(sg);
        if let Some(i) = self.q.iter().position(|&x| x == p) {
            self.q.remove(i);
        }
    }
}

/// The timer function of a wait with a deadline: fires it with
/// [`TIMED_OUT`] unless a channel did first.
fn timeout(sel: Arc<SelState>) -> Box<crate::timer::TimerFn> {
    Box::new(move |_| {
        if sel.claim(TIMED_OUT) {
            // SAFETY: we won the claim.
            unsafe { sel.wakeup() }.wake();
        }
    })
}

/// Releases the channel locks of a wait, in lock order.
///
/// Only the *last* unlock lets the waiter run past its re-locking (a G
/// woken early by the first channel blocks on the next lock still held), so
/// everything in `locks` stays valid until then; the last mutex is copied
/// into a local first and nothing is touched after it is unlocked.
///
/// # Safety
///
/// Every mutex in `locks` is locked by the caller's wait.
pub(crate) unsafe fn unlock_all(locks: &[&ChanLock]) {
    let Some((&last, rest)) = locks.split_last() else {
        return;
    };
    for m in rest {
        // SAFETY: per the contract, locked by us.
        unsafe { m.unlock() };
    }
    // SAFETY: as above. Last access to the waiter's memory.
    unsafe { last.unlock() };
}

/// What [`block`] needs inside the park callback. It lives in `block`'s
/// frame, which is gone as soon as the waiter runs again.
#[derive(Clone, Copy)]
struct Commit<'a> {
    locks: &'a [&'a ChanLock],
    deadline: Option<(u64, &'a Arc<SelState>)>,
    timer: &'a Cell<Option<Timer>>,
}

impl Commit<'_> {
    /// Runs after the G is parked: arm the timer, then release the locks.
    ///
    /// Everything is copied out of `self` first: once the timer is armed it
    /// may fire and ready the G, which returns from `block` (freeing
    /// `self`) before it blocks on its first lock. What the copies point
    /// to — the lock list, the timer slot, the shared state — lives in the
    /// frame of `block`'s caller, which the G leaves only after taking the
    /// locks again, that is after our last unlock.
    fn run(&self) {
        // A volatile read, so that the compiler cannot go back to `self`
        // for a field later instead of keeping its copy.
        // SAFETY: `self` is a valid, aligned `Commit` (it is a reference).
        let Commit {
            locks,
            deadline,
            timer,
        } = unsafe { core::ptr::read_volatile(self) };
        if let Some((when, sel)) = deadline {
            let sel = sel.clone();
            timer.set(Some(start_timer(when, timeout(sel))));
        }
        // SAFETY: the wait holds these locks (see `block`).
        unsafe { unlock_all(locks) };
    }
}

/// Blocks the caller until its wait `sel` is fired, and returns the value
/// it was fired with (see [`SelState::claim`]). The caller has queued its
/// sudogs and holds `locks` (sorted, each once); they are released once the
/// caller is parked (a G) or before it sleeps (a thread). With `deadline`,
/// `sel` lives in that Arc and a timer fires it with [`TIMED_OUT`].
///
/// The timer's handle goes to `timer`, in the caller's frame, so that a
/// caller fired by a channel can stop it. The park callback writes it while
/// it still holds the locks: a caller fired by a channel was readied by
/// someone who took a lock after that, but a caller fired by the timer may
/// run before the write, so it must take the locks again (it does, to leave
/// the queues) before it looks at `timer`.
pub(crate) fn block(
    sel: &SelState,
    locks: &[&ChanLock],
    deadline: Option<(u64, &Arc<SelState>)>,
    reason: WaitReason,
    timer: &Cell<Option<Timer>>,
) -> usize {
    let commit = Commit {
        locks,
        deadline,
        timer,
    };
    if sel.on_g {
        let c = &commit;
        // The callback runs on the M's next context after this G's
        // registers are saved: from then on a waker may ready the G.
        crate::engine::park(reason, move || {
            c.run();
            true
        });
    } else {
        commit.run();
        while !sel.woken.load(Ordering::Acquire) {
            std::thread::park();
        }
    }
    sel.fired()
}
