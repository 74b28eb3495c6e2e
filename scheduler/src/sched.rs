//! Sched: the global state, the idle lists, and M creation.
//!
//! # Lock order
//!
//! [`crate::lock_rank`] declares the order of every runtime lock and checks
//! it in debug builds. The ones here: `Sched::synced` (idle Ms and Ps) ranks
//! after channel locks and before a P's timer heap; `Sched::gfree` and the
//! stack pool's lists come after the heap.
//!
//! No lock is held across a context switch or a sleep.

use crate::clock::NEVER;
use crate::config::Config;
use crate::g::GRef;
use crate::lock_rank::{Rank, RankedMutex};
use crate::m::MRef;
use crate::p::{P, PStatus};
use crate::stack::{StackConfig, StackPool};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crossbeam_deque::Injector;
use std::sync::OnceLock;

/// The idle lists, behind `Sched::synced`.
#[derive(Debug, Default)]
pub(crate) struct SchedSynced {
    /// Ms asleep on their note with no P.
    pub(crate) midle: Vec<MRef>,
    /// Ps no M holds. Their run queues are empty.
    pub(crate) pidle: Vec<&'static P>,
}

/// Global scheduler state. One per process, made on first use.
#[derive(Debug)]
pub struct Sched {
    /// The configuration the runtime started with.
    pub config: Config,
    /// All Ps.
    pub ps: &'static [P],
    /// The global run queue.
    pub(crate) global: Injector<GRef>,
    pub(crate) synced: RankedMutex<SchedSynced>,
    /// Length of `synced.pidle`, readable without the lock.
    pub(crate) npidle: AtomicUsize,
    /// Length of `synced.midle`, readable without the lock.
    pub(crate) nmidle: AtomicUsize,
    /// Ms looking for work. See `schedule.rs` for the protocol.
    pub(crate) nmspinning: AtomicUsize,
    /// Free G structs beyond the Ps' own lists.
    pub(crate) gfree: RankedMutex<Vec<GRef>>,
    /// All G stacks.
    pub stacks: StackPool,
    /// Next block of G ids.
    goidgen: AtomicU64,
    /// Earliest deadline at which a sleeping M will wake for timers
    /// ([`NEVER`] if none): a new earlier timer must wake someone.
    pub(crate) sleep_until: AtomicU64,
}

static SCHED: OnceLock<Sched> = OnceLock::new();

/// Size of the thread stack of an M (its `g0`). Gs run on their own stacks;
/// `g0` runs only the scheduler loop (and, later, signal-free runtime work).
const G0_STACK_SIZE: usize = 256 * 1024;

/// Ids are taken from the global counter in blocks of this many per P.
const GOID_BATCH: u64 = 16;

impl Sched {
    fn new(config: Config) -> Sched {
        // Before any M exists: see `barrier.rs`.
        crate::barrier::init();
        let ps: Vec<P> = (0..config.procs).map(P::new).collect();
        let ps: &'static [P] = Box::leak(ps.into_boxed_slice());
        let stacks = StackPool::new(StackConfig {
            default_size: config.stack_size,
            max_stacks: config.max_stacks,
            force_mprotect: config.force_mprotect_guards,
            ..StackConfig::default()
        });
        let synced = SchedSynced {
            midle: Vec::new(),
            pidle: ps.iter().rev().collect(),
        };
        Sched {
            ps,
            global: Injector::new(),
            npidle: AtomicUsize::new(config.procs),
            nmidle: AtomicUsize::new(0),
            nmspinning: AtomicUsize::new(0),
            gfree: RankedMutex::new(Rank::GFree, Vec::new()),
            stacks,
            goidgen: AtomicU64::new(1),
            sleep_until: AtomicU64::new(NEVER),
            synced: RankedMutex::new(Rank::Synced, synced),
            config,
        }
    }

    /// Number of Ps.
    pub fn procs(&self) -> usize {
        self.ps.len()
    }

    /// Ms created minus Ms exited, extra Ms included (see `extram`).
    pub fn mcount(&self) -> usize {
        crate::extram::mcount()
    }

    /// Ms asleep with no work.
    pub fn nmidle(&self) -> usize {
        self.nmidle.load(Ordering::Relaxed)
    }

    /// Ms looking for work.
    pub fn nmspinning(&self) -> usize {
        self.nmspinning.load(Ordering::Relaxed)
    }

    /// Ps no M holds.
    pub fn npidle(&self) -> usize {
        self.npidle.load(Ordering::Relaxed)
    }

    /// A block of fresh G ids for a P: `[start, start + GOID_BATCH)`.
    pub(crate) fn goid_batch(&self) -> u64 {
        self.goidgen.fetch_add(GOID_BATCH, Ordering::Relaxed)
    }

    pub(crate) fn goid_batch_len() -> u64 {
        GOID_BATCH
    }

    /// One fresh G id, for spawns from threads without a P.
    pub(crate) fn goid_one(&self) -> u64 {
        self.goidgen.fetch_add(1, Ordering::Relaxed)
    }

    /// An idle P, taken off the list. Caller holds `synced`.
    pub(crate) fn pidle_get(&self, s: &mut SchedSynced) -> Option<&'static P> {
        let p = s.pidle.pop()?;
        // SeqCst: the store of a Dekker pair with sysmon's deep sleep: this
        // decrement, then `note_busy`'s load of `PARKED`, against sysmon's
        // store of `PARKED`, then its load of `npidle`.
        self.npidle.fetch_sub(1, Ordering::SeqCst);
        // A P is busy again: sysmon must watch it (StoreLoad with its
        // deep-sleep check, see sysmon.rs).
        crate::sysmon::note_busy();
        Some(p)
    }

    /// Queues `g` on the global queue, then a full fence: the StoreLoad
    /// half of the hand-shake with a P going idle (`recheck_after_idle` in
    /// `schedule.rs`), which a lock-free queue does not give by itself.
    /// Every push to the global queue goes through here.
    pub(crate) fn push_global(&self, g: crate::g::GRef) {
        self.global.push(g);
        // SeqCst: the producer's StoreLoad fence (the push, then `wakep`'s load
        // of `npidle`), paired with the fence in `recheck_after_idle` (a P
        // counted idle, then a look at the global queue).
        core::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Puts a P on the idle list. Caller holds `synced`; the P's run queue
    /// is empty.
    pub(crate) fn pidle_put(&self, s: &mut SchedSynced, p: &'static P) {
        debug_assert!(p.runq.is_empty(), "pidle_put: p has runnable Gs");
        p.set_status(PStatus::Idle);
        s.pidle.push(p);
        // SeqCst: the idle side's store for `recheck_after_idle` (this
        // increment, then its fence and look at the global queue), against
        // `push_global` (the push, its fence, then `wakep`'s load of `npidle`).
        self.npidle.fetch_add(1, Ordering::SeqCst);
    }
}

/// The scheduler, started with the environment's configuration on first use.
#[inline]
pub fn sched() -> &'static Sched {
    match SCHED.get() {
        Some(s) => s,
        None => start_default(),
    }
}

#[cold]
fn start_default() -> &'static Sched {
    let s = SCHED.get_or_init(|| Sched::new(Config::from_env()));
    after_start();
    s
}

/// What runs once the scheduler exists: the exit hook, the spare extra M
/// (foreign threads may call in from now on), sysmon.
fn after_start() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        crate::callback::register_exit_hook();
        crate::fork::register();
        crate::extram::ensure_spare();
        crate::sysmon::start();
    });
}

/// The scheduler if it has started.
pub fn try_sched() -> Option<&'static Sched> {
    SCHED.get()
}

/// Starts the scheduler with `config`. Fails (returning the running
/// configuration) if it has already started.
pub fn start(config: Config) -> Result<&'static Sched, &'static Config> {
    let mut fresh = false;
    let s = SCHED.get_or_init(|| {
        fresh = true;
        Sched::new(config)
    });
    after_start();
    if fresh { Ok(s) } else { Err(&s.config) }
}

/// Wakes an idle M with an idle P to look for work, if there is an idle P
/// and nobody is spinning already (Go's `wakep`).
pub(crate) fn wakep() {
    let s = sched();
    // SeqCst: the producer's load in the pairs above, after `push_global`'s
    // fence or `barrier::light`; ordered against `pidle_put`'s increment.
    if s.npidle.load(Ordering::SeqCst) == 0 {
        return;
    }
    // Only one M spins up at a time; the spinning M wakes the next one when
    // it finds work (`reset_spinning`).
    // SeqCst: (the compare-exchange) claims the one wake-up. Every update of
    // `nmspinning` is SeqCst, so this claim and the last spinner's decrement in
    // `find_runnable` (followed by `barrier::heavy`) fall in one order: a
    // producer sees 0 and claims, or sees a spinner and leaves the work to it.
    if s.nmspinning.load(Ordering::Relaxed) != 0
        || s.nmspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    start_m(None, true);
}

/// After making work available: wake an M if Ps are idle and nobody spins.
///
/// The barrier pairs with the one in `find_runnable` after an M stops
/// spinning: either that M sees our work, or we see it idle and wake it.
/// This is the hot side (every `ready`, every spawn), so it is the light
/// barrier and the M about to sleep pays the heavy one (`barrier.rs`).
#[inline]
pub(crate) fn wakep_if_idle() {
    crate::barrier::light();
    let s = sched();
    let npidle = s.npidle.load(Ordering::Relaxed);
    if npidle != 0 && s.nmspinning.load(Ordering::Relaxed) == 0 {
        wakep();
    } else if npidle == 0 {
        // Every P is held: if one is held by a thread blocked in plain code,
        // sysmon should know soon (see `sysmon.rs`, "Plain blocking code").
        crate::sysmon::note_work_waits();
    }
}

/// Gives `p` (or an idle P) to an idle M, or to a new one, and wakes it.
/// With `spinning`, the caller has already counted the M in `nmspinning`;
/// if no P is free the count is undone.
pub(crate) fn start_m(p: Option<&'static P>, spinning: bool) {
    start_m_or(p, spinning, AtLimit::Fatal)
}

/// [`start_m`] choosing what happens at the thread limit.
pub(crate) fn start_m_or(p: Option<&'static P>, spinning: bool, at_limit: AtLimit) {
    let s = sched();
    let mut synced = s.synced.lock();
    let from_idle = p.is_none();
    let p = match p.or_else(|| s.pidle_get(&mut synced)) {
        Some(p) => p,
        None => {
            drop(synced);
            if spinning {
                // SeqCst: undoes `wakep`'s claim, in the one order of
                // `nmspinning`'s updates (see `wakep`).
                s.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
            return;
        }
    };
    let m = synced.midle.pop();
    if m.is_none() && from_idle && crate::netpoll::blocked() {
        // No idle M, but one is blocked in netpoll: interrupt it rather than
        // start a thread. The P goes back first, under the lock; the poller
        // clears `blocked` before it takes an idle P under the same lock, so
        // either it sees this P or we saw it was no longer blocked.
        s.pidle_put(&mut synced, p);
        drop(synced);
        if spinning {
            // SeqCst: as above.
            s.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
        crate::netpoll::netpoll_break();
        return;
    }
    if m.is_some() {
        s.nmidle.fetch_sub(1, Ordering::Relaxed);
    }
    drop(synced);
    match m {
        Some(m) => {
            m.spinning.store(spinning, Ordering::Relaxed);
            m.nextp.store(p as *const P as *mut P, Ordering::Release);
            m.note.wakeup();
        }
        None => new_m(p, spinning, at_limit),
    }
}

/// What [`new_m`] does at the thread limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AtLimit {
    /// A fatal error, as Go's: the program needs a thread it may not have
    /// (e.g. every thread holds a locked G) and cannot go on.
    Fatal,
    /// sysmon handing on a P it took from a blocked M: the P goes back on
    /// the idle list (its Gs to the global queue) and the program waits for
    /// a blocked thread to return. sysmon checks for room before it
    /// retakes, so this is only the race of two threads starting at once.
    Stall,
}

/// Creates an M with a new OS thread that starts holding `p`.
fn new_m(p: &'static P, spinning: bool, at_limit: AtLimit) {
    let s = sched();
    let Ok(m) = crate::extram::register_m(s.config.max_threads) else {
        if at_limit == AtLimit::Fatal {
            let msg = format!(
                "runtime: program exceeds the limit of {} threads gort creates (max_threads, set by {})\n",
                s.config.max_threads, s.config.max_threads_source
            );
            crate::fatal::write_stderr(&[msg.as_bytes()]);
            crate::throw!("new_m: thread exhaustion");
        }
        if spinning {
            // SeqCst: as above.
            s.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
        crate::sysmon::thread_limit_stall();
        // SAFETY: no M holds `p` (it was handed here to start one with), so
        // its queue is ours to empty.
        while let Some(g) = unsafe { p.runq.get() } {
            s.push_global(g);
        }
        let mut synced = s.synced.lock();
        s.pidle_put(&mut synced, p);
        return;
    };
    m.spinning.store(spinning, Ordering::Relaxed);
    m.nextp.store(p as *const P as *mut P, Ordering::Release);
    let spawned = std::thread::Builder::new()
        .name(format!("gort-m{}", m.id))
        .stack_size(G0_STACK_SIZE)
        .spawn(move || crate::schedule::mstart(m));
    if spawned.is_err() {
        crate::fatal::write_stderr(&[b"runtime: failed to create new OS thread\n"]);
        crate::throw!("new_m: cannot create an OS thread");
    }
}

/// Bookkeeping when an M's thread exits.
pub(crate) fn m_exited(m: MRef) {
    crate::extram::unregister_m(m);
}
