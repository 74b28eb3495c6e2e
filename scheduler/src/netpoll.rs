//! The netpoller: Gs that wait for a socket park here, holding no M.
//!
//! One epoll instance for the process, made on the first registration, with
//! every socket registered once, edge-triggered, for both directions
//! (`EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET`), plus an eventfd that
//! interrupts a blocking `epoll_wait` ([`netpoll_break`]).
//!
//! # Poll descriptors
//!
//! Each registered socket has a [`PollDesc`] (Go's `pollDesc`): per direction
//! a `ready` flag and the list of Gs waiting, behind a small mutex (Go packs
//! this into the `rg`/`wg` words; a mutex is simpler and the lock is never
//! contended for long). The protocol, per direction:
//!
//! | event | no waiter | waiters |
//! |---|---|---|
//! | epoll says ready | set `ready` | take them all, make them runnable |
//! | a G finds `EAGAIN`, `ready` set | clear it, retry the call at once | — |
//! | a G finds `EAGAIN`, `ready` clear | join the waiters, park | join, park |
//! | its deadline passes | — | take that G, say `TimedOut` |
//!
//! Because registration is edge-triggered, an edge is reported once; the
//! `ready` flag keeps it until a G consumes it, so an edge that arrives
//! between a G's `EAGAIN` and its park is not lost (both happen under the
//! descriptor's lock). A wake-up may be spurious (another G took the data):
//! the caller just retries its syscall and waits again.
//!
//! # Calls that know they drained the socket
//!
//! A request/response exchange reads what arrived, then reads again and
//! finds `EAGAIN` before it parks: one wasted syscall per message and side.
//! Some calls can tell that the next one would block: a TCP read that asks
//! the kernel how much is left (`TCP_INQ`) and hears 0; a TCP write that
//! took fewer bytes than offered (the send buffer is full). Every later
//! arrival (or freed space) is a new epoll edge. So such a call, made
//! through [`Registration::io_drain`], notes that (`DRAINED`) together with
//! the number of edges seen before the call, and the next call on that side
//! parks first instead of trying the syscall, unless an edge came in since
//! (which clears the note: the count it was taken with no longer matches).
//! Edges counted before the call were for data the call consumed, so the
//! `ready` flag they left is stale and is dropped. A hang-up, error or
//! urgent data ever reported on the socket (`STICKY`) turns this off for
//! good: the next call may not block (end of stream, a pending error).
//!
//! Descriptors are never freed: they live in an append-only registry and are
//! reused through a free list. The epoll event carries the index and a
//! sequence number that changes at every reuse, so an event for a closed
//! socket that another thread's `epoll_wait` already fetched finds a new
//! sequence number and is dropped.
//!
//! # In the scheduling loop
//!
//! - `find_runnable` with nothing in its queues polls without blocking
//!   ([`poll_ready`]) before it steals and again while it spins, unless an
//!   M is already blocked in `epoll_wait`. (Under request/response load a
//!   socket turns ready microseconds after its G parked: polling while
//!   spinning cut the loopback echo benchmark's time per request by a
//!   third or more.)
//! - An M about to sleep with no work, while Gs wait for I/O and no other M
//!   is blocked in netpoll, blocks in `epoll_wait` instead of on its note,
//!   with the timeout of the next timer ([`try_block`]); the others sleep on
//!   their notes. Only one M blocks here at a time (Go's design).
//! - `wakep` that finds no idle M but the poller blocked interrupts it with
//!   the eventfd instead of starting a new thread; so does a new I/O
//!   deadline due before the poller would wake (a `sleep` timer goes
//!   through `wakep`).
//! - `sysmon` polls when nobody has for 10 ms (all Ps busy), comparing a
//!   poll count across its ticks (a poll reads no clock).
//!
//! Deadlines are ordinary per-P timers (`timer_heap.rs`, function timers): a G that
//! parks with a deadline arms one; when it fires, it takes the G off the
//! waiters if it is still there (matched by a per-wait token) and makes it
//! runnable with the outcome `TimedOut`. A timer for a wait that already
//! ended finds no token and does nothing, so nothing is ever cancelled.
//!
//! A G parked here counts in [`waiting`]: the deadlock check treats such Gs
//! as "could be woken" (the peer may write).
//!
//! Rejected: level-triggered registration (every ready socket is reported
//! at every poll until drained: O(ready sockets) per poll); one epoll per P
//! (a G readied on another P's poller is stolen anyway, and sleeping Ms
//! would need one poller each).

use crate::clock::{NEVER, nanotime};
use crate::g::{GRef, GStatus, WaitReason};
use crate::lock_rank::{Rank, RankedGuard, RankedMutex};
use crate::m::current_g;
use crate::registry::Registry;
use crate::state::sched;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::time::Duration;

/// Which direction a G waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Readable: data, a connection to accept, end of stream, an error.
    Read = 0,
    /// Writable: buffer space, a finished connect, an error.
    Write = 1,
}

/// Outcomes a waker writes for the G it wakes.
const WOKEN_READY: u8 = 1;
const WOKEN_TIMEOUT: u8 = 2;

/// epoll data of the eventfd.
const BREAK_DATA: u64 = u64::MAX;

/// A parked G on a descriptor's waiter list.
struct Waiting {
    g: GRef,
    token: u64,
    /// Where the waker writes the outcome: a slot on the parked G's stack.
    outcome: *const AtomicU8,
}

// SAFETY: `outcome` points into the stack of the parked G, which stays
// valid until that G is readied; only the party that removes the entry from
// the list (under the descriptor's lock) writes through it, once, before it
// readies the G.
unsafe impl Send for Waiting {}

#[derive(Default)]
struct Side {
    ready: bool,
    waiters: Vec<Waiting>,
}

struct PdState {
    seq: u32,
    sides: [Side; 2],
}

/// In [`PollDesc::edges`]: the last call on this side drained it, and no
/// edge came in since (see "Calls that know they drained the socket").
const DRAINED: u32 = 1;
/// In [`PollDesc::edges`]: hang-up, error or urgent data was reported once.
const STICKY: u32 = 2;
/// In [`PollDesc::edges`]: one edge (the count lives above the two flags).
const EDGE: u32 = 4;

/// Go's `pollDesc`: the readiness and waiters of one registered socket. See
/// the module docs for the protocol.
pub struct PollDesc {
    index: u32,
    state: RankedMutex<PdState>,
    /// Per direction: edges seen (a wrapping count in units of [`EDGE`]),
    /// [`DRAINED`] and [`STICKY`]. Changed by the poller under `state`'s
    /// lock and by a draining call with a compare-exchange, without it.
    edges: [AtomicU32; 2],
}

impl core::fmt::Debug for PollDesc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PollDesc")
            .field("index", &self.index)
            .finish()
    }
}

static PDS: Registry<PollDesc> = Registry::new();
static PD_FREE: RankedMutex<Vec<u32>> = RankedMutex::new(Rank::PollDescFree, Vec::new());

/// Gs parked on some descriptor.
static WAITING: AtomicUsize = AtomicUsize::new(0);
/// Whether an M is blocked in `epoll_wait` (at most one).
static BLOCKED: AtomicBool = AtomicBool::new(false);
/// An eventfd write is pending (coalesces [`netpoll_break`]s).
static BREAK_PENDING: AtomicBool = AtomicBool::new(false);
/// When the blocked poller wakes by itself (runtime clock), or [`NEVER`].
static POLL_UNTIL: AtomicU64 = AtomicU64::new(NEVER);
/// Polls so far, for sysmon: a count it compares across its ticks rather
/// than a timestamp, so a poll costs no clock read.
static POLLS: AtomicU64 = AtomicU64::new(0);
/// Tokens telling one wait from the next (deadline matching).
static TOKENS: AtomicU64 = AtomicU64::new(1);

struct Poller {
    epfd: OwnedFd,
    evfd: OwnedFd,
}

static POLLER: OnceLock<Poller> = OnceLock::new();

/// What the engine calls while it looks for work (see
/// `engine/hooks.rs`), registered with the poller's creation.
static ENGINE_SIDE: crate::engine::hooks::Poller = crate::engine::hooks::Poller {
    waiting,
    poll_ready,
    try_block,
    blocked,
    wake: netpoll_break,
};

fn poller() -> io::Result<&'static Poller> {
    if let Some(p) = POLLER.get() {
        return Ok(p);
    }
    // SAFETY: epoll_create1 has no memory preconditions.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: epfd is a new descriptor nobody else owns.
    let epfd = unsafe { OwnedFd::from_raw_fd(epfd) };
    // SAFETY: eventfd has no memory preconditions.
    let evfd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if evfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: evfd is a new descriptor nobody else owns.
    let evfd = unsafe { OwnedFd::from_raw_fd(evfd) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: BREAK_DATA,
    };
    // SAFETY: both descriptors are open; ev is a valid epoll_event.
    if unsafe {
        libc::epoll_ctl(
            epfd.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            evfd.as_raw_fd(),
            &mut ev,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // A racing initialiser may have won: its poller is used, ours closed.
    let p = POLLER.get_or_init(|| Poller { epfd, evfd });
    // Before the first socket is registered, so before any G waits.
    crate::engine::hooks::set_poller(&ENGINE_SIDE);
    Ok(p)
}

/// Whether the netpoller exists (some socket was ever registered).
#[inline]
pub(crate) fn inited() -> bool {
    POLLER.get().is_some()
}

/// Gs parked waiting for I/O.
#[inline]
pub fn waiting() -> usize {
    // SeqCst: counts Gs parked on descriptors. `try_block`'s caller counted its
    // own G (program order); `check_dead` reads it beside `npidle` and
    // `nmspinning`, in the one order of their SeqCst updates; sysmon's
    // `io_unwatched` reads it again at every look.
    WAITING.load(Ordering::SeqCst)
}

/// A socket registered with the netpoller. Dropping it deregisters the
/// socket (it does not close it: drop this before the descriptor).
#[derive(Debug)]
pub struct Registration {
    pd: &'static PollDesc,
    seq: u32,
    fd: RawFd,
}

/// Registers `fd` (non-blocking, open) for edge-triggered readiness.
pub fn register(fd: RawFd) -> io::Result<Registration> {
    let poller = poller()?;
    let reused = PD_FREE.lock().pop();
    let pd = match reused.and_then(|i| PDS.get(i as usize)) {
        Some(pd) => pd,
        None => PDS.push_with(|i| PollDesc {
            index: i as u32,
            state: RankedMutex::new(
                Rank::PollDesc,
                PdState {
                    seq: 0,
                    sides: Default::default(),
                },
            ),
            edges: [AtomicU32::new(0), AtomicU32::new(0)],
        }),
    };
    let seq = {
        let mut st = pd.state.lock();
        st.seq = st.seq.wrapping_add(1);
        for side in &mut st.sides {
            side.ready = false;
        }
        for e in &pd.edges {
            e.store(0, Ordering::Release);
        }
        st.seq
    };
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET)
            as u32,
        u64: u64::from(pd.index) | (u64::from(seq) << 32),
    };
    // SAFETY: the poller's epfd is open; fd is the caller's open socket; ev
    // is a valid epoll_event.
    let r = unsafe { libc::epoll_ctl(poller.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
    if r < 0 {
        let e = io::Error::last_os_error();
        PD_FREE.lock().push(pd.index);
        return Err(e);
    }
    Ok(Registration { pd, seq, fd })
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(p) = POLLER.get() {
            let mut ev = libc::epoll_event { events: 0, u64: 0 };
            // SAFETY: both descriptors are open (the owner closes fd after
            // dropping us). An error (already gone) changes nothing.
            unsafe { libc::epoll_ctl(p.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, self.fd, &mut ev) };
        }
        {
            let mut st = self.pd.state.lock();
            // Stale events carry the old sequence number and are dropped.
            st.seq = st.seq.wrapping_add(1);
            if st.sides.iter().any(|s| !s.waiters.is_empty()) {
                crate::throw!("netpoll: socket closed while Gs wait on it");
            }
        }
        PD_FREE.lock().push(self.pd.index);
    }
}

/// How often a plain thread blocked in `poll(2)` looks at a deadline that
/// may have moved (a G is woken at once instead: `wake_waiters`).
const THREAD_RECHECK_MS: libc::c_int = 50;

/// When an I/O call gives up: a fixed deadline of the call (from a
/// per-call timeout), and a deadline shared with the socket that may move
/// while the call waits (Go's `SetDeadline`; see
/// [`Registration::wake_waiters`]). Both on the runtime clock; the earlier
/// one counts. `From<Option<u64>>` makes one with only the fixed part.
#[derive(Clone, Copy, Debug, Default)]
pub struct Deadline<'a> {
    /// The call's own deadline.
    pub fixed: Option<u64>,
    /// The socket's deadline, read at every wait (0: none).
    pub shared: Option<&'a AtomicU64>,
}

impl Deadline<'_> {
    /// The deadline in force now.
    pub fn get(&self) -> Option<u64> {
        let shared = self
            .shared
            .map(|a| a.load(Ordering::Acquire))
            .filter(|&t| t != 0);
        match (self.fixed, shared) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl From<Option<u64>> for Deadline<'_> {
    fn from(fixed: Option<u64>) -> Self {
        Deadline {
            fixed,
            shared: None,
        }
    }
}

/// The deadline `timeout` from now on the runtime clock.
pub fn deadline_after(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|d| nanotime().saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "I/O deadline passed")
}

impl Registration {
    /// The registered descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Runs `op` (a non-blocking syscall) until it stops saying
    /// `WouldBlock`, waiting for `mode` readiness in between; gives up with
    /// `TimedOut` at the deadline (see [`Deadline`]). On a G the wait parks
    /// the G; on a plain thread it blocks the thread in `poll(2)`.
    pub fn io<'d, R>(
        &self,
        mode: Mode,
        deadline: impl Into<Deadline<'d>>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_drain(mode, deadline, || op().map(|r| (r, false)))
    }

    /// As [`io`](Self::io) for a call that also says whether it left this
    /// side drained, so that the next call would find `EAGAIN` (`true` only
    /// when the kernel said so: see "Calls that know they drained the
    /// socket"). The next call then parks first, unless an edge came in.
    pub fn io_drain<'d, R>(
        &self,
        mode: Mode,
        deadline: impl Into<Deadline<'d>>,
        mut op: impl FnMut() -> io::Result<(R, bool)>,
    ) -> io::Result<R> {
        let deadline = deadline.into();
        let edges = &self.pd.edges[mode as usize];
        if drained_now(edges) {
            self.wait_inner(mode, deadline, true)?;
        }
        loop {
            let seen = edges.load(Ordering::Acquire);
            match op() {
                Ok((r, drained)) => {
                    if drained {
                        note_drained(edges, seen);
                    }
                    return Ok(r);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait_inner(mode, deadline, false)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until the descriptor may be ready for `mode` (a wake-up may be
    /// spurious: retry the call), or fails with `TimedOut` at the deadline.
    pub fn wait<'d>(&self, mode: Mode, deadline: impl Into<Deadline<'d>>) -> io::Result<()> {
        self.wait_inner(mode, deadline.into(), false)
    }

    /// Wakes every G parked on `mode` as if the descriptor turned ready, so
    /// that each looks at its deadline again (Go's `SetDeadline` on a
    /// socket with calls in flight). They retry their call, which finds
    /// `EAGAIN` and waits again unless the new deadline has passed. A plain
    /// thread blocked in `poll(2)` sees a new deadline within
    /// [`THREAD_RECHECK_MS`].
    pub fn wake_waiters(&self, mode: Mode) {
        let mut woken = Vec::new();
        {
            let mut st = self.pd.state.lock();
            if st.seq != self.seq {
                return;
            }
            let side = &mut st.sides[mode as usize];
            if side.waiters.is_empty() {
                return;
            }
            wake_side(side, &mut woken);
        }
        for g in woken {
            crate::engine::ready(g);
        }
    }

    /// [`wait`](Self::wait); `drained`: the caller saw [`DRAINED`], so a
    /// `ready` flag left by edges from before the draining call is stale if
    /// no edge came in since.
    fn wait_inner(&self, mode: Mode, deadline: Deadline<'_>, drained: bool) -> io::Result<()> {
        match current_g() {
            Some(g) => self.park(g, mode, deadline.get(), drained),
            None => self.block_thread(mode, deadline),
        }
    }

    /// A plain thread's wait: `poll(2)` on the descriptor. A deadline that
    /// another thread may move ([`Deadline::shared`]) is looked at again
    /// every [`THREAD_RECHECK_MS`], since nothing interrupts the poll.
    fn block_thread(&self, mode: Mode, deadline: Deadline<'_>) -> io::Result<()> {
        let interest = match mode {
            Mode::Read => crate::socket::Interest::Read,
            Mode::Write => crate::socket::Interest::Write,
        };
        loop {
            let mut timeout_ms = match deadline.get() {
                None => -1,
                Some(d) => {
                    let left = d.saturating_sub(nanotime());
                    if left == 0 {
                        return Err(timed_out());
                    }
                    libc::c_int::try_from(left.div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX)
                }
            };
            let sliced =
                deadline.shared.is_some() && !(0..=THREAD_RECHECK_MS).contains(&timeout_ms);
            if sliced {
                timeout_ms = THREAD_RECHECK_MS;
            }
            if crate::socket::poll_one(self.fd, interest, timeout_ms)? {
                return Ok(());
            }
            if !sliced {
                return Err(timed_out());
            }
        }
    }

    fn park(&self, g: GRef, mode: Mode, deadline: Option<u64>, drained: bool) -> io::Result<()> {
        let outcome = AtomicU8::new(0);
        let token = TOKENS.fetch_add(1, Ordering::Relaxed);
        let pd = self.pd;
        let mut st = pd.state.lock();
        if st.seq != self.seq {
            crate::throw!("netpoll: wait on a stale registration");
        }
        // Edges change only under this lock, so DRAINED still set here
        // means none came in since the draining call.
        let stale = drained && drained_now(&pd.edges[mode as usize]);
        let side = &mut st.sides[mode as usize];
        if side.ready {
            side.ready = false;
            if !stale {
                return Ok(());
            }
        }
        if let Some(d) = deadline
            && d <= nanotime()
        {
            return Err(timed_out());
        }
        side.waiters.push(Waiting {
            g,
            token,
            outcome: &outcome,
        });
        // SeqCst: see `waiting`.
        WAITING.fetch_add(1, Ordering::SeqCst);
        let mutex = RankedGuard::leak(st);
        crate::engine::park(WaitReason::IoWait, move || {
            // The timer goes in under the descriptor's lock (so it cannot
            // fire before the G is on the waiter list); the wake-ups it may
            // need come after the unlock, so this lock is never held while
            // taking the scheduler's.
            let wake = deadline.map(|d| arm_deadline(d, pd.index, mode as u8, token));
            // SAFETY: the guard of this mutex was forgotten above, so it is
            // locked and this releases it exactly once. After this a waker
            // may ready the G: nothing of it is touched below.
            unsafe { mutex.force_unlock() };
            if let Some((wake_m, wake_poller)) = wake {
                if wake_poller {
                    netpoll_break();
                }
                if wake_m {
                    crate::engine::wakep();
                }
            }
            true
        });
        match outcome.load(Ordering::Acquire) {
            WOKEN_TIMEOUT => Err(timed_out()),
            _ => Ok(()),
        }
    }
}

/// Arms an I/O deadline on the current P (or any P, see `timer::host_p`).
/// Returns whether an M must be woken for it (it is earlier than any
/// sleeping M's wake-up) and whether the blocked poller must be (it is
/// earlier than the poller's timeout); the caller does both after it
/// released the descriptor's lock.
fn arm_deadline(when: u64, pd: u32, mode: u8, token: u64) -> (bool, bool) {
    let p = crate::timer::host_p();
    // SeqCst: the adder's load of `sleep_until` (see `stop_m` in `engine/handoff.rs`),
    // made before the timer is pushed: the wake-up it decides on only makes
    // an M look at the heaps again.
    let wake_m = when < sched().sleep_until.load(Ordering::SeqCst);
    // A stale deadline finds nothing and does nothing, so it is never
    // stopped: the handle goes.
    let _ = p.timers.add_func(
        when,
        Box::new(move |_| {
            if let Some(g) = deadline(pd, mode, token) {
                crate::engine::ready(g);
            }
        }),
    );
    // SeqCst: the armer's load of `POLL_UNTIL` after its timer was pushed
    // (see `try_block`'s store).
    (wake_m, when < POLL_UNTIL.load(Ordering::SeqCst))
}

/// A deadline timer fired: take its G off the waiters if it still waits.
pub(crate) fn deadline(pd: u32, mode: u8, token: u64) -> Option<GRef> {
    let pd = PDS.get(pd as usize)?;
    let mut st = pd.state.lock();
    let side = st.sides.get_mut(usize::from(mode))?;
    let i = side.waiters.iter().position(|w| w.token == token)?;
    let w = side.waiters.swap_remove(i);
    drop(st);
    // SeqCst: see `waiting`.
    WAITING.fetch_sub(1, Ordering::SeqCst);
    // SAFETY: we removed the entry under the lock, so we alone may write the
    // outcome; the G is parked, so its stack slot is valid.
    unsafe { (*w.outcome).store(WOKEN_TIMEOUT, Ordering::Release) };
    Some(w.g)
}

/// Counts an edge on one side's word, clearing [`DRAINED`] (and setting
/// [`STICKY`] for a hang-up, error or urgent data). Caller holds the
/// descriptor's lock; a draining call's compare-exchange may race with it.
fn note_edge(edges: &AtomicU32, sticky: bool) {
    let set = if sticky { STICKY } else { 0 };
    let _ = edges.fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
        Some((w & !DRAINED).wrapping_add(EDGE) | set)
    });
}

/// A call that loaded `edges` as `seen` before it ran says it drained its
/// side: sets [`DRAINED`] unless an edge came in since (data or space may
/// have arrived after the call looked) or [`STICKY`] is set. Returns
/// whether it set it.
fn note_drained(edges: &AtomicU32, seen: u32) -> bool {
    seen & STICKY == 0
        && edges
            .compare_exchange(seen, seen | DRAINED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
}

/// Whether the last draining call's note still holds (no edge since).
#[inline]
fn drained_now(edges: &AtomicU32) -> bool {
    edges.load(Ordering::Acquire) & DRAINED != 0
}

/// Marks `side` ready: hands back its waiters, or sets the flag.
fn wake_side(side: &mut Side, out: &mut Vec<GRef>) {
    if side.waiters.is_empty() {
        side.ready = true;
        return;
    }
    for w in side.waiters.drain(..) {
        // SeqCst: see `waiting`.
        WAITING.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: removed under the lock, so ours to write; the G is parked.
        unsafe { (*w.outcome).store(WOKEN_READY, Ordering::Release) };
        out.push(w.g);
    }
}

/// One `epoll_wait` with `timeout_ms` (-1: no limit, 0: just look);
/// appends the Gs it wakes to `out`.
fn poll(timeout_ms: libc::c_int, out: &mut Vec<GRef>) {
    let Some(poller) = POLLER.get() else { return };
    const N: usize = 128;
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; N];
    // SAFETY: events is a writable array of N epoll_events.
    let n = unsafe {
        libc::epoll_wait(
            poller.epfd.as_raw_fd(),
            events.as_mut_ptr(),
            N as libc::c_int,
            timeout_ms,
        )
    };
    POLLS.store(
        POLLS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
    let Ok(n) = usize::try_from(n) else { return };
    for ev in &events[..n] {
        let (bits, data) = (ev.events, ev.u64);
        if data == BREAK_DATA {
            let mut buf = 0u64;
            // SAFETY: reading 8 bytes into a u64 from our eventfd.
            unsafe { libc::read(poller.evfd.as_raw_fd(), (&raw mut buf).cast(), 8) };
            // SeqCst: cleared after the eventfd was read, so a `netpoll_break`
            // whose swap comes later writes again. Both sides touch only this
            // word, so its coherence carries the argument (Release would do).
            BREAK_PENDING.store(false, Ordering::SeqCst);
            continue;
        }
        let Some(pd) = PDS.get((data & 0xffff_ffff) as usize) else {
            continue;
        };
        let mut st = pd.state.lock();
        if st.seq != (data >> 32) as u32 {
            continue;
        }
        let err = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
        let sticky = bits & (err | (libc::EPOLLRDHUP | libc::EPOLLPRI) as u32) != 0;
        if bits & ((libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) as u32 | err) != 0 {
            note_edge(&pd.edges[Mode::Read as usize], sticky);
            wake_side(&mut st.sides[Mode::Read as usize], out);
        }
        if bits & (libc::EPOLLOUT as u32 | err) != 0 {
            note_edge(&pd.edges[Mode::Write as usize], sticky);
            wake_side(&mut st.sides[Mode::Write as usize], out);
        }
    }
}

/// Non-blocking poll for `find_runnable` and `sysmon`: the Gs whose sockets
/// are ready, marked runnable, for the caller to queue. Empty when no G
/// waits or an M is blocked in netpoll (it gets the events).
pub(crate) fn poll_ready(out: &mut Vec<GRef>) {
    if !inited() || waiting() == 0 || BLOCKED.load(Ordering::Relaxed) {
        return;
    }
    poll(0, out);
    for &g in out.iter() {
        make_runnable(g);
    }
}

/// Whether sysmon should poll: Gs wait, nobody is blocked in netpoll, and
/// nobody polled since sysmon last looked (`seen`, updated here; sysmon
/// looks every few milliseconds at most once per tick).
pub(crate) fn stale(seen: &mut u64) -> bool {
    let polls = POLLS.load(Ordering::Relaxed);
    let idle = polls == *seen;
    *seen = polls;
    idle && inited() && waiting() != 0 && !BLOCKED.load(Ordering::Relaxed)
}

/// Waiting → Runnable for a G a netpoll woke; the caller queues it.
fn make_runnable(g: GRef) {
    if g.status() != GStatus::Waiting {
        crate::throw!("netpoll: woken g is not waiting");
    }
    g.set_wait(WaitReason::None, 0);
    g.set_status(GStatus::Runnable);
    g.on_enqueue();
}

/// For an M about to sleep with no P: if Gs wait for I/O and no other M is
/// blocked in netpoll, block in `epoll_wait` until an event, `until` (the
/// next timer, runtime clock) or [`netpoll_break`]. Returns false if it
/// did not block (the caller sleeps on its note); else it appended the Gs
/// woken, marked runnable, to `out` for the caller to queue.
pub(crate) fn try_block(until: u64, out: &mut Vec<GRef>) -> bool {
    if !inited() || waiting() == 0 {
        return false;
    }
    // SeqCst: claims the one poller seat (a compare-exchange on one word).
    // `start_m` reads `BLOCKED` under `synced`, which orders it with the clear
    // below; sysmon's `io_unwatched` reads it again at every look.
    if BLOCKED
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    let s = sched();
    // SeqCst: publishes the poll's timeout to deadline armers (`arm_deadline`).
    // As with `sleep_until` (see `stop_m` in `engine/handoff.rs`), an armer whose load comes
    // first sees `NEVER` and breaks the poll: coherence of this word carries
    // the argument.
    POLL_UNTIL.store(until, Ordering::SeqCst);
    if until != NEVER {
        // SeqCst: as `stop_m` in `engine/handoff.rs`'s.
        s.sleep_until.fetch_min(until, Ordering::SeqCst);
    }
    let timeout_ms = if until == NEVER {
        -1
    } else {
        let left = until.saturating_sub(nanotime());
        libc::c_int::try_from(left.div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX)
    };
    poll(timeout_ms, out);
    // SeqCst: as the store above.
    POLL_UNTIL.store(NEVER, Ordering::SeqCst);
    if until != NEVER {
        // SeqCst: as `stop_m` in `engine/handoff.rs`'s.
        let _ = s
            .sleep_until
            .compare_exchange(until, NEVER, Ordering::SeqCst, Ordering::Relaxed);
    }
    // SeqCst: the seat is free again (see the claim above).
    // Cleared before the caller looks for a P: see `start_m` in `engine/handoff.rs`.
    BLOCKED.store(false, Ordering::SeqCst);
    for &g in out.iter() {
        make_runnable(g);
    }
    true
}

/// Whether an M is blocked in `epoll_wait`.
#[inline]
pub(crate) fn blocked() -> bool {
    // SeqCst: see the claim in `try_block`.
    BLOCKED.load(Ordering::SeqCst)
}

/// Interrupts a blocked `epoll_wait` (Go's `netpollBreak`). Coalesced: one
/// eventfd write until the poller has read it.
pub(crate) fn netpoll_break() {
    let Some(p) = POLLER.get() else { return };
    // SeqCst: see the clear in `poll`.
    if BREAK_PENDING.swap(true, Ordering::SeqCst) {
        return;
    }
    let one = 1u64;
    // SAFETY: writing 8 bytes from a u64 to our eventfd.
    unsafe { libc::write(p.evfd.as_raw_fd(), (&raw const one).cast(), 8) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Symptom: an edge that arrives while a draining call runs is
    /// overwritten by its note, and the next call parks on a socket that
    /// has data (a hang).
    #[test]
    fn an_edge_during_the_call_cancels_its_note() {
        let e = AtomicU32::new(0);
        let seen = e.load(Ordering::Acquire);
        note_edge(&e, false);
        assert!(!note_drained(&e, seen));
        assert!(!drained_now(&e));
    }

    /// Symptom: the note outlives the next edge, so a wake-up is taken for
    /// stale and dropped.
    #[test]
    fn an_edge_after_the_note_clears_it() {
        let e = AtomicU32::new(0);
        let seen = e.load(Ordering::Acquire);
        assert!(note_drained(&e, seen));
        assert!(drained_now(&e));
        note_edge(&e, false);
        assert!(!drained_now(&e));
        // A later call drains again from the new count.
        let seen = e.load(Ordering::Acquire);
        assert!(note_drained(&e, seen));
        assert!(drained_now(&e));
    }

    /// Symptom: after a hang-up a draining call's note makes the next read
    /// park although it would return end of stream at once.
    #[test]
    fn a_hang_up_turns_notes_off_for_good() {
        let e = AtomicU32::new(0);
        note_edge(&e, true);
        for _ in 0..3 {
            let seen = e.load(Ordering::Acquire);
            assert!(!note_drained(&e, seen));
            assert!(!drained_now(&e));
            note_edge(&e, false);
        }
    }

    /// Symptom: the edge count carries into the flag bits when it wraps.
    #[test]
    fn the_edge_count_wraps_without_touching_the_flags() {
        let e = AtomicU32::new(!(DRAINED | STICKY));
        let seen = e.load(Ordering::Acquire);
        assert!(note_drained(&e, seen));
        note_edge(&e, false);
        let w = e.load(Ordering::Acquire);
        assert_eq!(w & (DRAINED | STICKY), 0, "{w:#x}");
        assert_ne!(w, seen);
    }
}
