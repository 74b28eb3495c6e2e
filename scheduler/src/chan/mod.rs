//! Channels: Go's `chan`, multi-producer multi-consumer, for Gs and threads.
//!
//! [`bounded`]`(n)` buffers `n` values (`n = 0`: a rendezvous, a send
//! completes only when a receiver takes the value); [`unbounded`] never
//! blocks a sender. A G that must wait parks (its M runs other Gs); a plain
//! thread blocks; a foreign-callback G parks like any locked G. Users reach
//! this through `runtime::chan`, which also has the `select!` macro.
//!
//! # Design (Go's `runtime/chan.go`)
//!
//! One `Chan` per channel: a lock, a ring buffer, and two FIFO queues of
//! waiting parties (`Sudog`s, living on the waiters' stacks):
//! `sendq` (senders blocked on a full buffer) and `recvq` (receivers blocked
//! on an empty one). At most one of the queues is non-empty, except that
//! sudogs of fired selects may linger until their owner removes them.
//!
//! - **send**: a receiver waiting? Hand it the value *directly* (write it
//!   into its sudog, wake it: no buffer round trip, Go's direct send).
//!   Otherwise room in the buffer? Append. Otherwise queue a sudog holding
//!   the value and park.
//! - **recv**: a sender waiting? With a buffer (it is full), take the head
//!   and move the sender's value to the tail (FIFO is kept); without one,
//!   take the sender's value. Wake the sender. Otherwise pop the buffer.
//!   Otherwise closed? Report it. Otherwise queue a sudog and park.
//! - **close**: mark closed and fire every queued sudog with
//!   `success = false`: receivers report closed (once the buffer is
//!   drained), senders get their value back. Dropping the last `Sender`
//!   closes; dropping the last `Receiver` makes every send fail (a
//!   departure from Go, where such sends block forever) and drops what is
//!   still buffered (nothing can receive it).
//!
//! Wake-ups are delivered after the lock is released (`Wakeup`), and a
//! woken G goes to the waker's P's `runnext`: in a ping-pong, the sender
//! then parks on its own receive and its M switches straight to the
//! receiver (the G-to-G switch in `engine::switch_from_g`), never
//! through the scheduler loop.
//!
//! # Locks
//!
//! A channel's lock is a spin lock (`lock.rs`), held only for the few
//! lines that move a value or a sudog, never across a park (a parking G's
//! locks are released by the park callback once its registers are saved).
//! Lock order: channel locks in **increasing address order** (a `select`
//! takes all of its channels' locks that way, each once), before every
//! scheduler lock (`state.rs`): a wait with a deadline arms its timer (a P's
//! timer heap, then possibly `Sched::synced` to wake an M, one after the
//! other) while holding its channel locks. A waker never holds a channel
//! lock while readying a G.
//!
//! Rejected: a lock-free channel (crossbeam's) — a select over it needs a
//! separate registration protocol per flavour, and the lock is uncontended
//! in the common case; one global lock for all channels (serialises
//! unrelated channels).

mod error;
mod lock;
mod ring;
pub mod select;
mod sudog;
#[cfg(test)]
mod tests;

pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

use crate::clock::nanotime_of;
use crate::g::WaitReason;
use crate::timer::Timer;
use core::cell::{Cell, UnsafeCell};
use core::fmt;
use core::mem::MaybeUninit;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};
use lock::ChanLock;
use ring::Ring;
use std::sync::Arc;
use std::time::{Duration, Instant};
use sudog::{SelState, Sudog, TIMED_OUT, WaitQ, Wakeup, block};

/// The state behind the lock.
pub(crate) struct Inner<T> {
    buf: Ring<T>,
    /// Closed by `close` or by the last `Sender` going away.
    closed: bool,
    /// Every `Receiver` is gone: sends fail.
    no_receivers: bool,
    pub(crate) recvq: WaitQ<T>,
    pub(crate) sendq: WaitQ<T>,
}

impl<T> Inner<T> {
    /// The senders' queue if `sending`, else the receivers'.
    fn waitq(&mut self, sending: bool) -> &mut WaitQ<T> {
        if sending {
            &mut self.sendq
        } else {
            &mut self.recvq
        }
    }
}

/// A channel: see the module docs.
pub(crate) struct Chan<T> {
    lock: ChanLock,
    inner: UnsafeCell<Inner<T>>,
    /// `None`: unbounded.
    cap: Option<usize>,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    /// Whether dropping the last `Sender` closes (not for timer channels).
    close_on_drop: bool,
}

// SAFETY: `inner` is touched only with `lock` held; values of type T move
// between threads, hence `T: Send`. Sudog pointers in the queues are valid
// while queued (see `sudog`).
unsafe impl<T: Send> Send for Chan<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Chan<T> {}

/// The channel locked; unlocks on drop.
struct Locked<'a, T> {
    chan: &'a Chan<T>,
}

impl<T> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        // SAFETY: a `Locked` exists only while we hold the lock.
        unsafe { self.chan.lock.unlock() };
    }
}

impl<T> core::ops::Deref for Locked<'_, T> {
    type Target = Inner<T>;
    fn deref(&self) -> &Inner<T> {
        // SAFETY: we hold the lock.
        unsafe { &*self.chan.inner.get() }
    }
}

impl<T> core::ops::DerefMut for Locked<'_, T> {
    fn deref_mut(&mut self) -> &mut Inner<T> {
        // SAFETY: we hold the lock, and `&mut self` makes this the only
        // reference derived from it.
        unsafe { &mut *self.chan.inner.get() }
    }
}

impl<T> Locked<'_, T> {
    /// Keeps the lock held past the guard (a blocking wait releases it).
    fn keep(self) {
        core::mem::forget(self);
    }
}

/// What a send attempt under the lock did.
pub(crate) enum SendNow {
    /// Sent: the value moved out of the sender's slot. Wake this receiver
    /// once the lock is released.
    Done(Option<Wakeup>),
    /// No room and no receiver: the value is still the sender's.
    Full,
    /// Closed or no receivers: the value is still the sender's.
    Closed,
}

/// What a receive attempt under the lock did.
pub(crate) enum RecvNow {
    /// Received into the receiver's slot; wake this sender once the lock is
    /// released.
    Got(Option<Wakeup>),
    /// Nothing there.
    Empty,
    /// Closed and drained.
    Closed,
}

/// Why a blocking operation gave up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Failed {
    /// Closed (a send: or every receiver gone).
    Closed,
    /// The deadline passed.
    TimedOut,
}

impl<T> Chan<T> {
    fn new(cap: Option<usize>, close_on_drop: bool) -> Chan<T> {
        Chan {
            lock: ChanLock::new(),
            inner: UnsafeCell::new(Inner {
                buf: Ring::with_capacity(cap.unwrap_or(0).min(1024)),
                closed: false,
                no_receivers: false,
                recvq: WaitQ::new(),
                sendq: WaitQ::new(),
            }),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            close_on_drop,
        }
    }

    #[inline]
    fn lock(&self) -> Locked<'_, T> {
        self.lock.lock();
        Locked { chan: self }
    }

    pub(crate) fn raw_lock(&self) -> &ChanLock {
        &self.lock
    }

    /// The state.
    ///
    /// # Safety
    ///
    /// The caller holds `lock` and keeps no other reference to the state.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn inner(&self) -> &mut Inner<T> {
        // SAFETY: per the contract.
        unsafe { &mut *self.inner.get() }
    }

    /// Tries to send the value at `src` now. Caller holds the lock.
    ///
    /// # Safety
    ///
    /// `src` points to an initialised `T` the caller owns. On
    /// [`SendNow::Done`] the value has moved: the caller must neither use
    /// nor drop it. Otherwise it is untouched.
    #[inline]
    pub(crate) unsafe fn send_locked(&self, st: &mut Inner<T>, src: *const T) -> SendNow {
        if st.closed || st.no_receivers {
            return SendNow::Closed;
        }
        if let Some((sg, w)) = st.recvq.dequeue() {
            // SAFETY: we claimed `sg`: its slot is valid and empty, and its
            // owner does not touch it until woken; `src` is ours.
            unsafe { ptr::copy_nonoverlapping(src, sg.elem, 1) };
            sg.success.set(true);
            return SendNow::Done(Some(w));
        }
        if self.cap.is_none_or(|c| st.buf.len() < c) {
            // SAFETY: per the contract; the value moves.
            unsafe { st.buf.push_from(src) };
            return SendNow::Done(None);
        }
        SendNow::Full
    }

    /// Tries to receive now into `dst`. Caller holds the lock.
    ///
    /// # Safety
    ///
    /// `dst` is valid for a write of a `T` and holds nothing to drop. On
    /// [`RecvNow::Got`] it holds the value, which the caller then owns.
    #[inline]
    pub(crate) unsafe fn recv_locked(&self, st: &mut Inner<T>, dst: *mut T) -> RecvNow {
        if let Some((sg, w)) = st.sendq.dequeue() {
            // SAFETY: we claimed `sg`: its slot holds the sender's value,
            // untouched by its owner until woken; `success` tells the owner
            // it moved. With a buffer (it is full: a sender waits) the head
            // is older than the sender's value, which goes to the tail; the
            // pop made room for it.
            unsafe {
                if st.buf.pop_into(dst) {
                    st.buf.push_from(sg.elem);
                } else {
                    ptr::copy_nonoverlapping(sg.elem, dst, 1);
                }
            }
            sg.success.set(true);
            return RecvNow::Got(Some(w));
        }
        // SAFETY: per the contract.
        if unsafe { st.buf.pop_into(dst) } {
            return RecvNow::Got(None);
        }
        if st.closed {
            return RecvNow::Closed;
        }
        RecvNow::Empty
    }

    /// Fires every waiter of `q` with `success = false`.
    fn fail_all(q: &mut WaitQ<T>, out: &mut Vec<Wakeup>) {
        while let Some((sg, w)) = q.dequeue() {
            sg.success.set(false);
            out.push(w);
        }
    }

    /// Closes the channel. Returns false if it was closed already.
    fn close(&self) -> bool {
        let mut wake = Vec::new();
        {
            let mut st = self.lock();
            if st.closed {
                return false;
            }
            st.closed = true;
            Self::fail_all(&mut st.recvq, &mut wake);
            Self::fail_all(&mut st.sendq, &mut wake);
        }
        wake.into_iter().for_each(Wakeup::wake);
        true
    }

    /// The last receiver is gone: fail every blocked sender, now and later,
    /// and drop the buffered values, which nobody can receive any more (as
    /// crossbeam does; keeping them until the last `Sender` goes would keep
    /// a dropped consumer's whole backlog alive).
    ///
    /// The values are dropped after the lock is released, oldest first: a
    /// value's `Drop` may use this very channel. If one of them panics, the
    /// rest are still dropped (a slice's drop goes on past a panicking
    /// element), and the panic goes on in the thread dropping the receiver.
    fn drop_receivers(&self) {
        let mut wake = Vec::new();
        let buf = {
            let mut st = self.lock();
            st.no_receivers = true;
            Self::fail_all(&mut st.sendq, &mut wake);
            core::mem::take(&mut st.buf)
        };
        wake.into_iter().for_each(Wakeup::wake);
        drop(buf);
    }

    /// Sends the value at `src`, waiting until `deadline` (or for good).
    ///
    /// # Safety
    ///
    /// As [`send_locked`](Chan::send_locked): on `Ok` the value has moved,
    /// on `Err` the caller still owns it.
    unsafe fn send(&self, src: *mut T, deadline: Option<Instant>) -> Result<(), Failed> {
        let mut st = self.lock();
        // SAFETY: per our contract.
        match unsafe { self.send_locked(&mut st, src) } {
            SendNow::Done(w) => {
                drop(st);
                if let Some(w) = w {
                    w.wake();
                }
                return Ok(());
            }
            SendNow::Closed => return Err(Failed::Closed),
            SendNow::Full => {}
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(Failed::TimedOut);
        }
        self.wait(st, deadline, src, WaitReason::ChanSend, true)
    }

    /// Receives into `dst`, waiting until `deadline` (or for good).
    ///
    /// # Safety
    ///
    /// As [`recv_locked`](Chan::recv_locked): on `Ok`, `dst` holds the
    /// value.
    unsafe fn recv(&self, dst: *mut T, deadline: Option<Instant>) -> Result<(), Failed> {
        let mut st = self.lock();
        // SAFETY: per our contract.
        match unsafe { self.recv_locked(&mut st, dst) } {
            RecvNow::Got(w) => {
                drop(st);
                if let Some(w) = w {
                    w.wake();
                }
                return Ok(());
            }
            RecvNow::Closed => return Err(Failed::Closed),
            RecvNow::Empty => {}
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(Failed::TimedOut);
        }
        self.wait(st, deadline, dst, WaitReason::ChanReceive, false)
    }

    /// Queues a sudog for the value or slot at `elem` (on `sendq` if
    /// `sending`) and blocks until it fires; `Ok` if the value moved.
    #[inline(never)]
    fn wait(
        &self,
        st: Locked<'_, T>,
        deadline: Option<Instant>,
        elem: *mut T,
        reason: WaitReason,
        sending: bool,
    ) -> Result<(), Failed> {
        let timer: Cell<Option<Timer>> = Cell::new(None);
        let locks = [&self.lock];
        let (success, fired) = match deadline {
            None => {
                let sel = SelState::new(false);
                let sg = Sudog::new(&sel, 0, elem);
                let mut st = st;
                st.waitq(sending).push(&sg);
                st.keep();
                let fired = block(&sel, &locks, None, reason, &timer);
                (sg.success.get(), fired)
            }
            Some(d) => {
                let sel = Arc::new(SelState::new(true));
                let sg = Sudog::new(&sel, 0, elem);
                let mut st = st;
                st.waitq(sending).push(&sg);
                st.keep();
                let fired = block(&sel, &locks, Some((nanotime_of(d), &sel)), reason, &timer);
                if fired == TIMED_OUT {
                    // Leave the queue; the lock also orders us after the
                    // park callback's write of `timer`.
                    self.lock().waitq(sending).remove(&sg);
                    drop(timer.take());
                } else if let Some(t) = timer.take() {
                    t.stop();
                }
                (sg.success.get(), fired)
            }
        };
        match (success, fired == TIMED_OUT) {
            (true, _) => Ok(()),
            (false, true) => Err(Failed::TimedOut),
            (false, false) => Err(Failed::Closed),
        }
    }
}

/// Makes a channel that buffers `cap` values; `cap = 0` makes a rendezvous
/// channel (a send waits for a receiver to take the value).
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    make(Some(cap), true)
}

/// Makes a channel whose sends never block (the buffer grows as needed).
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    make(None, true)
}

/// A bounded channel that stays open when its senders are dropped, as
/// Go's timer channels: once `time::after` has delivered, a second receive
/// waits for good instead of reporting "closed".
pub fn bounded_timer_channel<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    make(Some(cap), false)
}

/// A receiver that never receives anything and is never closed (Go's nil
/// channel, crossbeam's `never`): a `recv` arm on it never fires, which
/// switches an arm of a `select!` off. A plain `recv` on it waits for good.
pub fn never<T>() -> Receiver<T> {
    make(Some(0), false).1
}

fn make<T>(cap: Option<usize>, close_on_drop: bool) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap, close_on_drop));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// The sending half. Clone it for more producers; the channel closes when
/// the last one is dropped (or on [`Sender::close`]).
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving half. Clone it for more consumers (each value goes to one
/// of them). Iterate it to receive until the channel is closed.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("cap", &self.chan.cap)
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("cap", &self.chan.cap)
            .finish()
    }
}

// Like crossbeam's: a panic cannot leave a channel half-updated (every
// change under the lock is a single push or pop), so using one after
// catching a panic is fine.
impl<T> std::panic::UnwindSafe for Sender<T> {}
impl<T> std::panic::RefUnwindSafe for Sender<T> {}
impl<T> std::panic::UnwindSafe for Receiver<T> {}
impl<T> std::panic::RefUnwindSafe for Receiver<T> {}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 && self.chan.close_on_drop {
            self.chan.close();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.drop_receivers();
        }
    }
}

/// What both halves can tell about their channel.
macro_rules! common {
    () => {
        /// Values buffered now.
        pub fn len(&self) -> usize {
            self.chan.lock().buf.len()
        }

        /// Whether nothing is buffered now (always true for a rendezvous
        /// channel).
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Whether the buffer is full now: a send would wait unless a
        /// receiver is waiting (always true for a rendezvous channel, never
        /// for an unbounded one).
        pub fn is_full(&self) -> bool {
            self.chan.cap.is_some_and(|c| self.len() >= c)
        }

        /// The buffer size (`Some(0)` for a rendezvous channel), or `None`
        /// for an unbounded channel.
        pub fn capacity(&self) -> Option<usize> {
            self.chan.cap
        }

        /// Whether the channel is closed (values may still be buffered).
        pub fn is_closed(&self) -> bool {
            self.chan.lock().closed
        }

        /// Whether `other` is a handle on the same channel.
        pub fn same_channel(&self, other: &Self) -> bool {
            Arc::ptr_eq(&self.chan, &other.chan)
        }
    };
}

impl<T> Sender<T> {
    common!();

    /// Sends `v`, waiting while the buffer is full (for a rendezvous
    /// channel: until a receiver takes it). Fails, giving `v` back, if the
    /// channel is closed or every receiver is gone — also when that happens
    /// while waiting.
    ///
    /// The value is copied once, from this call's argument to the buffer
    /// or straight into a waiting receiver's slot, whatever its size (a
    /// blocked sender's value waits where it is).
    pub fn send(&self, mut v: T) -> Result<(), SendError<T>> {
        // The argument itself is the sender's slot: wrapping it first
        // (`MaybeUninit::new`) would copy it, several times in a debug
        // build.
        // SAFETY: `v` is ours; on `Ok` it was moved out bitwise and is
        // forgotten below, never used or dropped.
        match unsafe { self.chan.send(&raw mut v, None) } {
            Ok(()) => {
                core::mem::forget(v);
                Ok(())
            }
            Err(_) => Err(SendError(v)),
        }
    }

    /// Sends `v` only if that needs no waiting.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let mut st = self.chan.lock();
        // SAFETY: as in `send`.
        match unsafe { self.chan.send_locked(&mut st, &raw const v) } {
            SendNow::Done(w) => {
                drop(st);
                core::mem::forget(v);
                if let Some(w) = w {
                    w.wake();
                }
                Ok(())
            }
            SendNow::Full => Err(TrySendError::Full(v)),
            SendNow::Closed => Err(TrySendError::Closed(v)),
        }
    }

    /// Like [`send`](Sender::send), waiting at most `timeout`.
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(v, Instant::now().checked_add(timeout))
    }

    /// Like [`send`](Sender::send), waiting until `deadline` at most.
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_until(v, Some(deadline))
    }

    fn send_until(&self, mut v: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        // SAFETY: as in `send`.
        match unsafe { self.chan.send(&raw mut v, deadline) } {
            Ok(()) => {
                core::mem::forget(v);
                Ok(())
            }
            Err(Failed::Closed) => Err(SendTimeoutError::Closed(v)),
            Err(Failed::TimedOut) => Err(SendTimeoutError::Timeout(v)),
        }
    }

    /// Closes the channel, as Go's `close`: receivers get what was sent
    /// before, then [`RecvError`]; senders (waiting or later) get their
    /// value back in an error. Returns false if it was already closed (Go
    /// panics there).
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }
}

impl<T> Receiver<T> {
    common!();

    /// Receives a value, waiting while there is none. Fails once the
    /// channel is closed and drained.
    ///
    /// The value is copied once into this call's frame, from the buffer or
    /// straight from a waiting sender's slot, whatever its size.
    pub fn recv(&self) -> Result<T, RecvError> {
        let mut slot = MaybeUninit::uninit();
        // SAFETY: `slot` is ours and empty; read only on `Ok`.
        match unsafe { self.chan.recv(slot.as_mut_ptr(), None) } {
            // SAFETY: `Ok`: the value was written to `slot`.
            Ok(()) => Ok(unsafe { slot.as_ptr().read() }),
            Err(_) => Err(RecvError),
        }
    }

    /// Receives a value only if that needs no waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut slot = MaybeUninit::uninit();
        let mut st = self.chan.lock();
        // SAFETY: as in `recv`.
        match unsafe { self.chan.recv_locked(&mut st, slot.as_mut_ptr()) } {
            RecvNow::Got(w) => {
                drop(st);
                if let Some(w) = w {
                    w.wake();
                }
                // SAFETY: `Got`: the value was written to `slot`.
                Ok(unsafe { slot.as_ptr().read() })
            }
            RecvNow::Empty => Err(TryRecvError::Empty),
            RecvNow::Closed => Err(TryRecvError::Closed),
        }
    }

    /// Like [`recv`](Receiver::recv), waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// Like [`recv`](Receiver::recv), waiting until `deadline` at most.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut slot = MaybeUninit::uninit();
        // SAFETY: as in `recv`.
        match unsafe { self.chan.recv(slot.as_mut_ptr(), deadline) } {
            // SAFETY: `Ok`: the value was written to `slot`.
            Ok(()) => Ok(unsafe { slot.as_ptr().read() }),
            Err(Failed::Closed) => Err(RecvTimeoutError::Closed),
            Err(Failed::TimedOut) => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Closes the channel (see [`Sender::close`]).
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// Iterates, receiving until the channel is closed and drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// Iterates over what can be received without waiting.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }
}

/// Blocking iterator over a [`Receiver`]; ends when the channel is closed
/// and drained.
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

/// Non-blocking iterator over a [`Receiver`]; ends when nothing is ready.
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

/// Owning blocking iterator over a [`Receiver`].
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
