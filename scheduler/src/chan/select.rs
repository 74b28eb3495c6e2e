//! `select`: wait on several channel operations, take the first that can
//! proceed (Go's `selectgo`).
//!
//! Users write `runtime::select!`; the macro builds one *arm* per case
//! ([`RecvArm`], [`SendArm`]) and calls [`select`] with their [`Op`]s.
//!
//! # Protocol
//!
//! 1. **Poll order**: a random permutation of the arms (inside-out
//!    Fisher–Yates on a per-thread xorshift), so that when several arms are
//!    ready each is chosen about equally often (Go's fairness rule).
//! 2. **Lock order**: the arms sorted by their channel's address; every
//!    distinct channel is locked once, in that order (two selects over the
//!    same channels cannot deadlock, and a select may name a channel
//!    twice). The sort is stable and starts from the poll order, so arms on
//!    one channel keep a random order among themselves (Go's `selectgo`
//!    does the same): pass 2 queues them that way, and whoever fires the
//!    wait later finds a random one of them first.
//! 3. **Pass 1**, all locks held: try each arm in poll order as a
//!    non-blocking operation. The first that completes wins: unlock, wake
//!    its partner, done. With a `default` arm, or a deadline already past,
//!    stop here.
//! 4. **Pass 2**: queue one sudog per arm, in lock order, all pointing at one
//!    shared `SelState`; then park (a G) or sleep (a thread), releasing the
//!    locks once parked. With a deadline a timer is armed in the same step.
//! 5. Whoever fires first — a channel operation on any of the channels,
//!    `close`, or the timer — wins the compare-and-swap on
//!    `SelState::done` (from 0 to `arm + 1`, or `TIMED_OUT`) and wakes us;
//!    later candidates lose the CAS and skip our sudogs.
//! 6. **Pass 3**, awake: lock everything again in lock order, remove our
//!    sudogs from every other queue (the winner's was dequeued by the
//!    waker), unlock, stop the timer, report the winner.
//!
//! The park callback releases the locks in lock order and touches nothing
//! after the last one: a G readied by the first channel blocks in pass 3 on
//! the next lock still held, so the select's frame stays valid until then
//! (Go's `selparkcommit` rule).

use super::lock::ChanLock;
use super::sudog::{SelState, Sudog, TIMED_OUT, Wakeup, block, unlock_all};
use super::{Chan, Receiver, RecvError, RecvNow, SendError, SendNow, Sender};
use crate::clock::nanotime_of;
use crate::g::WaitReason;
use crate::timer::Timer;
use core::cell::{Cell, UnsafeCell};
use core::mem::MaybeUninit;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a select may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Until an arm can proceed.
    Block,
    /// Not at all (a `default` arm).
    NonBlocking,
    /// Until this instant (a `timeout` arm).
    Deadline(Instant),
}

impl Mode {
    /// Wait at most `d`.
    pub fn timeout(d: Duration) -> Mode {
        match Instant::now().checked_add(d) {
            Some(i) => Mode::Deadline(i),
            None => Mode::Block,
        }
    }
}

/// What a select did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selected {
    /// This arm (index into the ops) completed; its result is in the arm.
    Arm(usize),
    /// No arm was ready ([`Mode::NonBlocking`]).
    Default,
    /// The deadline passed first.
    Timeout,
}

/// One arm's part in the protocol (module docs). Methods marked *locked*
/// run with the arm's channel lock held by the select.
trait RawArm {
    fn mutex(&self) -> &ChanLock;
    /// Locked: complete now if possible, storing the result; returns the
    /// partner to wake.
    fn poll(&self) -> Option<Option<Wakeup>>;
    /// Locked: queue this arm's sudog for `sel`.
    fn enqueue(&self, sel: &SelState, arm: usize);
    /// Locked: remove the sudog if still queued.
    fn dequeue(&self);
    /// The arm fired while queued: store its result from the sudog.
    fn finish(&self);
}

/// A select case, as passed to [`select`]. Made by [`RecvArm::op`] and
/// [`SendArm::op`].
#[derive(Clone, Copy)]
pub struct Op<'a>(&'a dyn RawArm);

impl core::fmt::Debug for Op<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Op")
    }
}

/// A receive case. Use each arm in one select only.
pub struct RecvArm<'a, T> {
    chan: &'a Chan<T>,
    sg: UnsafeCell<Option<Sudog<T>>>,
    /// Where a value is received (a sudog points here while queued).
    slot: UnsafeCell<MaybeUninit<T>>,
    /// [`PENDING`], [`GOT`] (`slot` holds the value) or [`CLOSED`].
    state: Cell<u8>,
}

/// A send case holding the value to send. Use each arm in one select
/// only. If another case wins, the value is dropped with the arm.
pub struct SendArm<'a, T> {
    chan: &'a Chan<T>,
    /// The value (a sudog points here while queued), while `has_val`.
    val: UnsafeCell<MaybeUninit<T>>,
    has_val: Cell<bool>,
    sg: UnsafeCell<Option<Sudog<T>>>,
    /// [`PENDING`], [`SENT`] or [`CLOSED`] (the value is still in `val`).
    state: Cell<u8>,
}

/// An arm's outcome: not chosen (yet).
const PENDING: u8 = 0;
/// A receive arm got a value.
const GOT: u8 = 1;
/// A send arm sent its value.
const SENT: u8 = 2;
/// The channel was closed (a send: or lost its receivers).
const CLOSED: u8 = 3;

impl<T> core::fmt::Debug for RecvArm<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RecvArm")
    }
}

impl<T> core::fmt::Debug for SendArm<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SendArm")
    }
}

impl<'a, T> RecvArm<'a, T> {
    /// A case receiving from `rx`.
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvArm {
            chan: rx.chan(),
            sg: UnsafeCell::new(None),
            slot: UnsafeCell::new(MaybeUninit::uninit()),
            state: Cell::new(PENDING),
        }
    }

    /// This case for [`select`].
    pub fn op(&self) -> Op<'_> {
        Op(self)
    }

    /// The result, if this case was chosen (once).
    pub fn take(&self) -> Option<Result<T, RecvError>> {
        match self.state.replace(PENDING) {
            // SAFETY: `GOT`: the slot holds the value, and resetting the
            // state hands it out once.
            GOT => Some(Ok(unsafe { (*self.slot.get()).assume_init_read() })),
            CLOSED => Some(Err(RecvError)),
            _ => None,
        }
    }
}

impl<T> Drop for RecvArm<'_, T> {
    fn drop(&mut self) {
        if self.state.get() == GOT {
            // SAFETY: a value received and never taken.
            unsafe { self.slot.get_mut().assume_init_drop() };
        }
    }
}

impl<'a, T> SendArm<'a, T> {
    /// A case sending `v` on `tx`.
    pub fn new(tx: &'a Sender<T>, v: T) -> Self {
        SendArm {
            chan: tx.chan(),
            val: UnsafeCell::new(MaybeUninit::new(v)),
            has_val: Cell::new(true),
            sg: UnsafeCell::new(None),
            state: Cell::new(PENDING),
        }
    }

    /// This case for [`select`].
    pub fn op(&self) -> Op<'_> {
        Op(self)
    }

    /// The result, if this case was chosen (once).
    pub fn take(&self) -> Option<Result<(), SendError<T>>> {
        match self.state.replace(PENDING) {
            SENT => Some(Ok(())),
            CLOSED if self.has_val.replace(false) => {
                // SAFETY: not sent: `val` still holds the value, and
                // clearing `has_val` hands it out once.
                Some(Err(SendError(unsafe {
                    (*self.val.get()).assume_init_read()
                })))
            }
            _ => None,
        }
    }
}

impl<T> Drop for SendArm<'_, T> {
    fn drop(&mut self) {
        if self.has_val.get() {
            // SAFETY: the value was neither sent nor handed back.
            unsafe { self.val.get_mut().assume_init_drop() };
        }
    }
}

impl<T> RawArm for RecvArm<'_, T> {
    fn mutex(&self) -> &ChanLock {
        self.chan.raw_lock()
    }

    fn poll(&self) -> Option<Option<Wakeup>> {
        if self.state.get() != PENDING {
            return None;
        }
        // SAFETY: locked (trait contract); no other reference to the state
        // is live in this select.
        let st = unsafe { self.chan.inner() };
        // SAFETY: the slot is ours and empty (state `PENDING`).
        match unsafe { self.chan.recv_locked(st, (*self.slot.get()).as_mut_ptr()) } {
            RecvNow::Got(w) => {
                self.state.set(GOT);
                Some(w)
            }
            RecvNow::Closed => {
                self.state.set(CLOSED);
                Some(None)
            }
            RecvNow::Empty => None,
        }
    }

    fn enqueue(&self, sel: &SelState, arm: usize) {
        // SAFETY: the slot stays put (the arm is borrowed by the select
        // until it returns) and is empty.
        let elem = unsafe { (*self.slot.get()).as_mut_ptr() };
        // SAFETY: the sudog slot is ours until queued; once queued it is
        // not moved (the arm is borrowed by the select until it returns).
        let sg = unsafe { &mut *self.sg.get() }.insert(Sudog::new(sel, arm, elem));
        // SAFETY: locked.
        unsafe { self.chan.inner() }.recvq.push(sg);
    }

    fn dequeue(&self) {
        // SAFETY: we only read the slot; wakers write through the queue's
        // pointer only while the sudog is queued and the lock (held) is.
        if let Some(sg) = unsafe { &*self.sg.get() } {
            // SAFETY: locked.
            unsafe { self.chan.inner() }.recvq.remove(sg);
        }
    }

    fn finish(&self) {
        // SAFETY: off every queue now: the slot is ours.
        let Some(sg) = (unsafe { &mut *self.sg.get() }).take() else {
            return;
        };
        self.state.set(if sg.success.get() { GOT } else { CLOSED });
    }
}

impl<T> RawArm for SendArm<'_, T> {
    fn mutex(&self) -> &ChanLock {
        self.chan.raw_lock()
    }

    fn poll(&self) -> Option<Option<Wakeup>> {
        if !self.has_val.get() || self.state.get() != PENDING {
            return None;
        }
        // SAFETY: locked (trait contract).
        let st = unsafe { self.chan.inner() };
        // SAFETY: `val` holds our value (`has_val`).
        match unsafe { self.chan.send_locked(st, (*self.val.get()).as_ptr()) } {
            SendNow::Done(w) => {
                self.has_val.set(false);
                self.state.set(SENT);
                Some(w)
            }
            SendNow::Closed => {
                self.state.set(CLOSED);
                Some(None)
            }
            SendNow::Full => None,
        }
    }

    fn enqueue(&self, sel: &SelState, arm: usize) {
        // SAFETY: `val` stays put while queued (as for RecvArm::enqueue).
        let elem = unsafe { (*self.val.get()).as_mut_ptr() };
        // SAFETY: as for RecvArm::enqueue.
        let sg = unsafe { &mut *self.sg.get() }.insert(Sudog::new(sel, arm, elem));
        // SAFETY: locked.
        unsafe { self.chan.inner() }.sendq.push(sg);
    }

    fn dequeue(&self) {
        // SAFETY: as for RecvArm::dequeue.
        if let Some(sg) = unsafe { &*self.sg.get() } {
            // SAFETY: locked.
            unsafe { self.chan.inner() }.sendq.remove(sg);
        }
    }

    fn finish(&self) {
        // SAFETY: off every queue now: the slot is ours.
        let Some(sg) = (unsafe { &mut *self.sg.get() }).take() else {
            return;
        };
        if sg.success.get() {
            // The receiver moved the value out.
            self.has_val.set(false);
            self.state.set(SENT);
        } else {
            self.state.set(CLOSED);
        }
    }
}

thread_local! {
    static RAND: Cell<u64> = const { Cell::new(0) };
}

/// A random number below `n` (xorshift64*, per thread, seeded from the
/// clock and the thread).
fn fastrand_n(n: usize) -> usize {
    RAND.with(|r| {
        let mut x = r.get();
        if x == 0 {
            x = (crate::clock::nanotime() ^ (r as *const Cell<u64> as u64)) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (((v >> 32) * n as u64) >> 32) as usize
    })
}

/// Arms beyond this count use heap scratch space.
const SMALL: usize = 8;

static NO_LOCK: ChanLock = ChanLock::new();

/// Runs a select over `ops` (see the module docs). Returns which arm
/// completed (its result is in the arm), or that none was ready / the
/// deadline passed.
pub fn select(ops: &[Op<'_>], mode: Mode) -> Selected {
    select_inner(ops, mode, false)
}

/// As [`select`], but when several arms are ready the first of them (in
/// `ops` order) wins, instead of a random one (crossbeam's
/// `select_biased!`). Once it has to wait, the first arm to be fired wins.
pub fn select_biased(ops: &[Op<'_>], mode: Mode) -> Selected {
    select_inner(ops, mode, true)
}

fn select_inner(ops: &[Op<'_>], mode: Mode, biased: bool) -> Selected {
    let n = ops.len();
    if n == 0 {
        return select_none(mode);
    }
    let mut poll_small = [0usize; SMALL];
    let mut order_small = [0usize; SMALL];
    let mut locks_small: [&ChanLock; SMALL] = [&NO_LOCK; SMALL];
    let (mut poll_big, mut order_big, mut locks_big) = (Vec::new(), Vec::new(), Vec::new());
    let (poll, order, locks_buf): (&mut [usize], &mut [usize], &mut [&ChanLock]) = if n <= SMALL {
        (
            &mut poll_small[..n],
            &mut order_small[..n],
            &mut locks_small[..n],
        )
    } else {
        poll_big.resize(n, 0);
        order_big.resize(n, 0);
        locks_big.resize(n, &NO_LOCK);
        (&mut poll_big[..], &mut order_big[..], &mut locks_big[..])
    };
    // 1. Poll order: inside-out Fisher-Yates (biased: as written).
    for i in 0..n {
        let j = if biased { i } else { fastrand_n(i + 1) };
        poll[i] = poll[j];
        poll[j] = i;
    }
    // 2. Lock order: by channel address (insertion sort; n is small). The
    // sort starts from the poll order and is stable, so arms naming the
    // same channel are queued, and so found by a waker, in random order:
    // starting from the identity would queue them in arm order, and a
    // waiting select would always be fired through its first such arm.
    let addr = |i: usize| ops[i].0.mutex() as *const ChanLock as usize;
    for i in 0..n {
        order[i] = poll[i];
        let mut k = i;
        while k > 0 && addr(order[k - 1]) > addr(order[k]) {
            order.swap(k - 1, k);
            k -= 1;
        }
    }
    let mut nlocks = 0;
    for &i in order.iter() {
        let m = ops[i].0.mutex();
        if nlocks == 0 || !core::ptr::eq(locks_buf[nlocks - 1], m) {
            locks_buf[nlocks] = m;
            nlocks += 1;
        }
    }
    let locks = &locks_buf[..nlocks];
    lock_all(locks);

    // 3. Pass 1.
    for &i in poll.iter() {
        if let Some(w) = ops[i].0.poll() {
            // SAFETY: locked above.
            unsafe { unlock_all(locks) };
            if let Some(w) = w {
                w.wake();
            }
            return Selected::Arm(i);
        }
    }
    let deadline = match mode {
        Mode::NonBlocking => {
            // SAFETY: locked above.
            unsafe { unlock_all(locks) };
            return Selected::Default;
        }
        Mode::Deadline(d) if d <= Instant::now() => {
            // SAFETY: locked above.
            unsafe { unlock_all(locks) };
            return Selected::Timeout;
        }
        Mode::Deadline(d) => Some(d),
        Mode::Block => None,
    };

    // 4. Pass 2 and the wait.
    let timer: Cell<Option<Timer>> = Cell::new(None);
    let stack_sel;
    let arc_sel;
    let (sel, dl): (&SelState, _) = match deadline {
        None => {
            stack_sel = SelState::new(true);
            (&stack_sel, None)
        }
        Some(d) => {
            arc_sel = Arc::new(SelState::new(true));
            (&*arc_sel, Some((nanotime_of(d), &arc_sel)))
        }
    };
    for &i in order.iter() {
        ops[i].0.enqueue(sel, i);
    }
    let fired = block(sel, locks, dl, WaitReason::Select, &timer);

    // 6. Pass 3.
    lock_all(locks);
    for &i in order.iter() {
        ops[i].0.dequeue();
    }
    // SAFETY: locked just above.
    unsafe { unlock_all(locks) };
    match timer.take() {
        Some(t) if fired != TIMED_OUT => {
            t.stop();
        }
        _ => {}
    }
    if fired == TIMED_OUT {
        return Selected::Timeout;
    }
    let i = fired - 1;
    ops[i].0.finish();
    Selected::Arm(i)
}

fn lock_all(locks: &[&ChanLock]) {
    for m in locks {
        m.lock();
    }
}

/// A select with no channel arm: nothing can fire it but the deadline.
fn select_none(mode: Mode) -> Selected {
    match mode {
        Mode::NonBlocking => Selected::Default,
        Mode::Deadline(d) => {
            let now = Instant::now();
            if d > now {
                crate::timer::sleep(d - now);
            }
            Selected::Timeout
        }
        Mode::Block => {
            // Go's `select {}`: block for good.
            if crate::m::current_g().is_some() {
                crate::engine::park(WaitReason::SelectNoCases, || true);
                crate::throw!("select: a select with no cases was woken");
            }
            loop {
                std::thread::park();
            }
        }
    }
}

/// For the macro: the outcome of a select without `default` or timeout
/// that no arm claimed cannot happen.
#[doc(hidden)]
pub fn unreachable_outcome() -> ! {
    unreachable!("select: returned without a completed arm")
}
