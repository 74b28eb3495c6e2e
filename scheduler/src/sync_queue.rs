//! Wait queues: a FIFO of parked Gs and blocked threads, under one lock
//! together with the state of the primitive that owns it.
//!
//! Every blocking primitive of `runtime::sync` is a [`WaitQueue<S>`] (or a
//! [`Sema`](crate::sema::Sema), which is one): the primitive keeps its own
//! state `S` behind the queue's lock, decides under that lock whether the
//! caller must wait, and if so calls [`QueueGuard::wait`], which links the
//! caller into the queue and sleeps it — parking a G, blocking a plain
//! thread — with the lock released only once the sleeper can be woken.
//! A waker takes a waiter off with [`QueueGuard::pop_front`] (handing it a
//! `u64`, e.g. "you own the lock now"), drops the guard, and then calls
//! [`Wakeup::wake`].
//!
//! # Nodes
//!
//! A waiter is a [`Node`] in an intrusive doubly-linked list. A waiter
//! without a deadline keeps its node on its own stack: a parked G's stack
//! and a blocked thread's stack stay put until the waiter is woken, and the
//! waiter does not return before it is off the list. So an uncontended
//! primitive allocates nothing, and a contended one allocates nothing
//! either. A G with a deadline keeps its node in an `Arc` shared with its
//! timer, because the timer may fire after the G has returned (see below).
//!
//! # Node states (`Node::state`)
//!
//! | state | linked | who may change it | next |
//! |---|---|---|---|
//! | `WAITING` | yes | a waker (under the lock), or the deadline (CAS, no lock) | `CLAIMED`, `CANCELLING` |
//! | `CLAIMED` | no | the waker, under the lock: takes the waiter, sets `value` | `WOKEN` |
//! | `WOKEN` | no | nobody; the waiter may return and free the node at once | — |
//! | `CANCELLING` | until the canceller takes the lock | the canceller (timer, or the timed-out thread) | `TIMED_OUT` |
//! | `TIMED_OUT` | no | nobody | — |
//!
//! A deadline claims the node with a compare-and-swap `WAITING →
//! CANCELLING` *before* taking the queue's lock; a waker claims it with a
//! compare-and-swap `WAITING → CLAIMED` under the lock. Exactly one wins, so a
//! waiter is woken exactly once. A waker that meets a `CANCELLING` node
//! unlinks it and moves on (the canceller then finds it unlinked).
//!
//! Why the timer claims before locking: it holds only the `Arc` of the
//! node, not a borrow of the queue. While the node is `WAITING` the G is
//! parked inside [`QueueGuard::wait`], which borrows the queue, so the
//! queue is alive; after a waker won, the G may have returned and the queue
//! may be gone. Winning the CAS first is what makes the queue pointer safe
//! to follow. Rejected: cancelling the timer before returning (the heap
//! would need removal by handle and a hand-shake with a timer already
//! firing on another M).
//!
//! # Who sleeps how
//!
//! - A G (running, not in a syscall) parks with [`park`]; the queue's lock
//!   is released by the switch's completion (`finish_switch`), after the G
//!   is `Waiting`, so a waker can never `ready` a G that still runs. With a
//!   deadline, the timer goes on the P of the M that parks it, in the same
//!   completion step, before the lock is released.
//! - A plain thread (or a G inside `runtime::syscall`, whose P is set
//!   aside) blocks in `std::thread::park`, re-checking its node's state
//!   (unparks may be spurious). With a deadline it times itself out: no
//!   timer, no helper thread, and it is not counted as blocked by deadlock
//!   detection, since it will run again by itself.
//!
//! # Lock order
//!
//! A wait queue's lock → a P's timer heap. A wait queue's lock is never held
//! across a context switch (the park releases it) and never held while
//! waking (`Wakeup::wake` runs after the guard is dropped). Two queues nest
//! only one way: a condition variable's queue → its mutex's queue.

use crate::clock::nanotime_of;
use crate::engine::park;
use crate::g::{GStatus, WaitReason};
use crate::lock_rank::{Rank, RankedGuard, RankedMutex};
use crate::m::current_g;
use crate::timer::{Timer, start_timer};
use crate::waiter::Waiter;
use core::cell::Cell;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

const WAITING: u8 = 0;
const WOKEN: u8 = 1;
const CANCELLING: u8 = 2;
const TIMED_OUT: u8 = 3;
const CLAIMED: u8 = 4;

/// A queue of waiters and the state `S` of the primitive that owns it, under
/// one lock. See the module docs.
pub struct WaitQueue<S> {
    inner: RankedMutex<Inner<S>>,
    /// Linked nodes, written under the lock; lets a notifier skip the lock
    /// when nobody waits.
    n_waiters: AtomicUsize,
}

impl<S: core::fmt::Debug> core::fmt::Debug for WaitQueue<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WaitQueue")
            .field("waiters", &self.n_waiters.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<S: Default> Default for WaitQueue<S> {
    fn default() -> Self {
        WaitQueue::new(S::default())
    }
}

struct Inner<S> {
    state: S,
    head: *const Node,
    tail: *const Node,
}

// SAFETY: the raw pointers are links to nodes that are only touched under
// this lock (see `Node`'s Sync impl); moving `Inner` to another thread moves
// no node. `S` itself must be Send.
unsafe impl<S: Send> Send for Inner<S> {}

/// One waiter in a queue. `prev`, `next`, `linked`, `value` and `waiter`
/// are read and written only under the lock of the queue the node is in,
/// except `value`, which the waiter reads after it has seen `WOKEN`
/// (acquire) — the waker wrote it before storing `WOKEN` (release).
struct Node {
    prev: Cell<*const Node>,
    next: Cell<*const Node>,
    linked: Cell<bool>,
    /// Set by the waiter: what it waits for (e.g. a permit count).
    ticket: u64,
    /// Set by the waker.
    value: Cell<u64>,
    /// Taken by whoever wakes the waiter (waker or canceller).
    waiter: Cell<Option<Waiter>>,
    state: AtomicU8,
}

// SAFETY: see the struct docs: every Cell is accessed under the owning
// queue's lock, or (for `value`) after an acquire load of `state` that
// synchronises with the release store that published it.
unsafe impl Sync for Node {}

impl Node {
    fn new(ticket: u64, waiter: Waiter) -> Node {
        Node {
            prev: Cell::new(core::ptr::null()),
            next: Cell::new(core::ptr::null()),
            linked: Cell::new(false),
            ticket,
            value: Cell::new(0),
            waiter: Cell::new(Some(waiter)),
            state: AtomicU8::new(WAITING),
        }
    }
}

impl<S> Inner<S> {
    /// Links `node` at the back (or the front, `lifo`).
    fn link(&mut self, node: &Node, lifo: bool) {
        let p = node as *const Node;
        if lifo {
            node.next.set(self.head);
            node.prev.set(core::ptr::null());
            // SAFETY: linked nodes are alive while linked (module docs) and
            // touched only under this lock, which the caller holds.
            match unsafe { self.head.as_ref() } {
                Some(h) => h.prev.set(p),
                None => self.tail = p,
            }
            self.head = p;
        } else {
            node.prev.set(self.tail);
            node.next.set(core::ptr::null());
            // SAFETY: as above.
            match unsafe { self.tail.as_ref() } {
                Some(t) => t.next.set(p),
                None => self.head = p,
            }
            self.tail = p;
        }
        node.linked.set(true);
    }

    /// Unlinks `node`, which is linked in this queue.
    fn unlink(&mut self, node: &Node) {
        let (prev, next) = (node.prev.get(), node.next.get());
        // SAFETY: neighbours are linked nodes: alive, and ours under the lock.
        match unsafe { prev.as_ref() } {
            Some(p) => p.next.set(next),
            None => self.head = next,
        }
        // SAFETY: as above.
        match unsafe { next.as_ref() } {
            Some(n) => n.prev.set(prev),
            None => self.tail = prev,
        }
        node.prev.set(core::ptr::null());
        node.next.set(core::ptr::null());
        node.linked.set(false);
    }

    /// The first node that is still `WAITING`; unlinks `CANCELLING` ones
    /// met on the way (their canceller finds them unlinked).
    fn front(&mut self, n_waiters: &AtomicUsize) -> Option<&Node> {
        loop {
            // SAFETY: the head is a linked node: alive while linked.
            let head = unsafe { self.head.as_ref() }?;
            if head.state.load(Ordering::Acquire) == WAITING {
                // SAFETY: the node stays linked (so alive) at least as long
                // as the caller's borrow of the guard.
                return Some(unsafe { &*(head as *const Node) });
            }
            self.unlink(head);
            n_waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The queue's lock held: derefs to the primitive's state.
pub struct QueueGuard<'a, S> {
    queue: &'a WaitQueue<S>,
    inner: RankedGuard<'a, Inner<S>>,
}

impl<S> core::fmt::Debug for QueueGuard<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("QueueGuard").finish_non_exhaustive()
    }
}

impl<S> core::ops::Deref for QueueGuard<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.inner.state
    }
}

impl<S> core::ops::DerefMut for QueueGuard<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.inner.state
    }
}

/// How to wait.
#[derive(Clone, Copy, Debug)]
pub struct WaitOptions {
    /// Shown in the G's traceback header.
    pub reason: WaitReason,
    /// What the waiter waits for; wakers read it with
    /// [`QueueGuard::front_ticket`].
    pub ticket: u64,
    /// Join at the front instead of the back (a mutex waiter that already
    /// waited once, as in Go).
    pub lifo: bool,
    /// Give up at this instant.
    pub deadline: Option<Instant>,
}

impl WaitOptions {
    /// Wait at the back, without a deadline.
    pub const fn new(reason: WaitReason) -> WaitOptions {
        WaitOptions {
            reason,
            ticket: 0,
            lifo: false,
            deadline: None,
        }
    }
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// A waker took the waiter off and handed it this value.
    By(u64),
    /// The deadline passed first; the waiter is off the queue.
    TimedOut,
}

/// A waiter taken off a queue, to be woken once the queue's guard is
/// dropped. Dropping it wakes it too (so a waiter cannot be lost).
#[derive(Debug)]
#[must_use = "a waiter taken off a queue must be woken"]
pub struct Wakeup(Option<Waiter>);

impl Wakeup {
    /// Makes the waiter runnable (a G) or unparks it (a thread).
    pub fn wake(mut self) {
        if let Some(w) = self.0.take() {
            w.wake();
        }
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            w.wake();
        }
    }
}

impl<S> WaitQueue<S> {
    /// An empty queue guarding `state`.
    pub const fn new(state: S) -> WaitQueue<S> {
        WaitQueue::with_rank(Rank::WaitQueue, state)
    }

    /// An empty queue of lock rank `rank` (a queue that is locked while
    /// another queue's lock is held ranks above it; see [`crate::lock_rank`]).
    pub const fn with_rank(rank: Rank, state: S) -> WaitQueue<S> {
        WaitQueue {
            inner: RankedMutex::new(
                rank,
                Inner {
                    state,
                    head: core::ptr::null(),
                    tail: core::ptr::null(),
                },
            ),
            n_waiters: AtomicUsize::new(0),
        }
    }

    /// Takes the lock.
    #[inline]
    pub fn lock(&self) -> QueueGuard<'_, S> {
        QueueGuard {
            queue: self,
            inner: self.inner.lock(),
        }
    }

    /// Whether some waiter may be linked. Exact when read under the lock;
    /// without it, a waiter linked before a release/acquire pair the caller
    /// is ordered after (the waiter released a mutex the caller then took)
    /// is always seen.
    #[inline]
    pub fn has_waiters(&self) -> bool {
        // Relaxed: a waiter linked before a release/acquire pair the caller
        // is ordered after happens-before this load, and read-write
        // coherence makes the load see its increment (or a later value);
        // nothing else is promised, so no StoreLoad order is needed.
        self.n_waiters.load(Ordering::Relaxed) != 0
    }

    /// The state, without locking.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner.get_mut().state
    }

    /// Consumes the queue (which has no waiters: they borrow it).
    pub fn into_inner(self) -> S {
        self.inner.into_inner().state
    }
}

impl<'a, S> QueueGuard<'a, S> {
    /// Ticket of the first waiter, if any.
    pub fn front_ticket(&mut self) -> Option<u64> {
        let n = &self.queue.n_waiters;
        self.inner.front(n).map(|node| node.ticket)
    }

    /// Whether nobody waits.
    pub fn is_empty(&mut self) -> bool {
        self.front_ticket().is_none()
    }

    /// Takes the first waiter off the queue and hands it `value`. Wake the
    /// result after dropping the guard.
    pub fn pop_front(&mut self, value: u64) -> Option<Wakeup> {
        self.pop_front_if(|_| true, value).map(|(_, w)| w)
    }

    /// Takes the first waiter off if `fits(its ticket)`, handing it
    /// `value`; returns its ticket and the wake-up. The test and the pop are
    /// one step: a front waiter whose deadline passes in between is skipped
    /// and the next one is tested, so what the caller grants matches whom
    /// it wakes.
    pub fn pop_front_if(
        &mut self,
        fits: impl Fn(u64) -> bool,
        value: u64,
    ) -> Option<(u64, Wakeup)> {
        let n = &self.queue.n_waiters;
        loop {
            let node: *const Node = self.inner.front(n)?;
            // SAFETY: `front` returned a linked node: alive, ours under the lock.
            let node = unsafe { &*node };
            if !fits(node.ticket) {
                return None;
            }
            self.inner.unlink(node);
            n.fetch_sub(1, Ordering::Relaxed);
            if node
                .state
                .compare_exchange(WAITING, CLAIMED, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
            {
                continue; // the deadline won; its canceller finds it unlinked
            }
            let ticket = node.ticket;
            let waiter = node.waiter.take();
            node.value.set(value);
            // Publishes `value`; the node may vanish after this.
            node.state.store(WOKEN, Ordering::Release);
            return Some((ticket, Wakeup(waiter)));
        }
    }

    /// Takes every waiter off, handing each `value`.
    pub fn pop_all(&mut self, value: u64) -> Vec<Wakeup> {
        let mut all = Vec::with_capacity(self.queue.n_waiters.load(Ordering::Relaxed));
        while let Some(w) = self.pop_front(value) {
            all.push(w);
        }
        all
    }

    /// Links the caller into the queue, releases the lock, and sleeps until
    /// a waker pops it or the deadline passes. See [`wait_then`](Self::wait_then).
    pub fn wait(self, opts: &WaitOptions) -> Woken {
        self.wait_then(opts, || {})
    }

    /// As [`wait`](Self::wait), running `before` once the caller is linked
    /// and while the lock is still held — where a condition variable
    /// releases its mutex, so that no notify can fall between the two.
    /// `before` must not park (it may wake others). A deadline already
    /// passed returns `TimedOut` after running `before`.
    pub fn wait_then(self, opts: &WaitOptions, before: impl FnOnce()) -> Woken {
        let g = current_g().filter(|g| g.status() == GStatus::Running);
        if let Some(d) = opts.deadline
            && d <= Instant::now()
        {
            before();
            return Woken::TimedOut;
        }
        match (g, opts.deadline) {
            (Some(_), None) => self.park_g(opts, before),
            (Some(_), Some(d)) => self.park_g_until(opts, d, before),
            (None, d) => self.block_thread(opts, d, before),
        }
    }

    /// A G without a deadline: the node lives on the G's stack.
    fn park_g(mut self, opts: &WaitOptions, before: impl FnOnce()) -> Woken {
        let node = &Node::new(opts.ticket, Waiter::current());
        self.inner.link(node, opts.lifo);
        self.queue.n_waiters.fetch_add(1, Ordering::Relaxed);
        before();
        let mutex = RankedGuard::mutex(&self.inner);
        core::mem::forget(self);
        park(opts.reason, move || {
            // SAFETY: the guard of this mutex was forgotten above, so it is
            // locked and this releases it exactly once. After it a waker
            // may ready the G; nothing below touches the G's stack.
            unsafe { mutex.force_unlock() };
            true
        });
        // Only a waker ends a wait without deadline.
        match node.state.load(Ordering::Acquire) {
            WOKEN => Woken::By(node.value.get()),
            _ => crate::throw!("wait: g woken without a waker"),
        }
    }

    /// A G with a deadline: the node is shared with a timer on the P.
    fn park_g_until(
        mut self,
        opts: &WaitOptions,
        deadline: Instant,
        before: impl FnOnce(),
    ) -> Woken {
        let timed = Arc::new(TimedNode {
            node: Node::new(opts.ticket, Waiter::current()),
            queue: self.queue as *const WaitQueue<S> as *const (),
            cancel: cancel::<S>,
        });
        self.inner.link(&timed.node, opts.lifo);
        self.queue.n_waiters.fetch_add(1, Ordering::Relaxed);
        before();
        let mutex = RankedGuard::mutex(&self.inner);
        core::mem::forget(self);
        let when = nanotime_of(deadline);
        // The timer's handle, written by the closure below while the G is
        // parked (it runs on this M's next context) and read once the G
        // runs again.
        let timer: core::cell::Cell<Option<Timer>> = core::cell::Cell::new(None);
        let timer_ref = &timer;
        let mut fired = Some(timed.clone());
        park(opts.reason, move || {
            // We run on the next context of the same M, which holds the P
            // (as `sleep` does). The timer goes on before the lock is
            // released: a timer firing at once on another M waits for the
            // lock, and finds the G parked. `start_timer` wakes an M if the
            // deadline is earlier than every sleeping M's.
            if let Some(node) = fired.take() {
                timer_ref.set(Some(start_timer(when, Box::new(move |_| node.fire()))));
            }
            // SAFETY: as in `park_g`: the forgotten guard's lock, released
            // once. Past this, nothing of the G's stack is touched but the
            // `timer` slot above, which the parked G does not read until it
            // runs again.
            unsafe { mutex.force_unlock() };
            true
        });
        match timed.node.state.load(Ordering::Acquire) {
            WOKEN => {
                // Woken before the deadline: the timer is stale; stopped, its
                // heap drops it unfired.
                if let Some(t) = timer.take() {
                    t.stop();
                }
                Woken::By(timed.node.value.get())
            }
            _ => Woken::TimedOut,
        }
    }

    /// A plain thread (or a G in a syscall): the node lives on its stack.
    fn block_thread(
        mut self,
        opts: &WaitOptions,
        deadline: Option<Instant>,
        before: impl FnOnce(),
    ) -> Woken {
        let waiter = match deadline {
            Some(_) => Waiter::current_thread_timed(),
            None => Waiter::current_thread(),
        };
        let node = &Node::new(opts.ticket, waiter);
        self.inner.link(node, opts.lifo);
        self.queue.n_waiters.fetch_add(1, Ordering::Relaxed);
        before();
        let queue = self.queue;
        drop(self);
        loop {
            if node.state.load(Ordering::Acquire) == WOKEN {
                return Woken::By(node.value.get());
            }
            let Some(d) = deadline else {
                std::thread::park();
                continue;
            };
            let now = Instant::now();
            if now < d {
                std::thread::park_timeout(d - now);
                continue;
            }
            if node
                .state
                .compare_exchange(WAITING, CANCELLING, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: `queue` is the queue we wait on, borrowed for this
                // whole call; the node is ours and linked or unlinked in it.
                drop(unsafe { cancel::<S>(queue as *const WaitQueue<S> as *const (), node) });
                return Woken::TimedOut;
            }
            // A waker won the race (CLAIMED): WOKEN follows within a few
            // instructions, under the lock.
            core::hint::spin_loop();
        }
    }
}

/// Takes a node whose deadline won off its queue; returns its waiter.
///
/// # Safety
///
/// `queue` points to a live `WaitQueue<S>` that `node` was linked in, and
/// the caller won the node's `WAITING → CANCELLING` CAS.
unsafe fn cancel<S>(queue: *const (), node: &Node) -> Option<Waiter> {
    // SAFETY: the caller guarantees the queue is alive and of type S.
    let q = unsafe { &*(queue as *const WaitQueue<S>) };
    let mut inner = q.inner.lock();
    if node.linked.get() {
        inner.unlink(node);
        q.n_waiters.fetch_sub(1, Ordering::Relaxed);
    }
    let w = node.waiter.take();
    node.state.store(TIMED_OUT, Ordering::Release);
    w
}

/// The node of a G waiting with a deadline, shared with its timer.
struct TimedNode {
    node: Node,
    /// The queue, type-erased for `cancel`; valid while the node is
    /// `WAITING` (the parked G borrows it).
    queue: *const (),
    cancel: unsafe fn(*const (), &Node) -> Option<Waiter>,
}

// SAFETY: `queue` is only followed by `fire` after winning the node's CAS,
// when the queue is alive (see the module docs); the node is Sync.
unsafe impl Send for TimedNode {}
// SAFETY: as above.
unsafe impl Sync for TimedNode {}

impl TimedNode {
    /// The deadline passed: time the wait out unless a waker got there
    /// first.
    fn fire(&self) {
        if self
            .node
            .state
            .compare_exchange(WAITING, CANCELLING, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        // SAFETY: we won the CAS, so the G is still parked in `wait` and
        // borrows the queue: it is alive, and `cancel` is its own.
        let w = unsafe { (self.cancel)(self.queue, &self.node) };
        if let Some(w) = w {
            w.wake();
        }
    }
}
