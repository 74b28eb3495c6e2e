//! Sched: the global state and the idle lists (data: no scheduling
//! logic; the engine decides who takes and gives back Ps and Ms).
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
    /// Ms looking for work. See `engine/mod.rs` for the protocol.
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
        crate::mlist::mcount()
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
        crate::bell::note_busy();
        Some(p)
    }

    /// Queues `g` on the global queue, then a full fence: the StoreLoad
    /// half of the hand-shake with a P going idle (`recheck_after_idle` in
    /// `engine/handoff.rs`), which a lock-free queue does not give by itself.
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
    let s = SCHED.get_or_init(|| {
        crate::wire();
        Sched::new(Config::from_env())
    });
    after_start();
    s
}

/// What runs once the scheduler exists: the exit hook, the spare extra M
/// (foreign threads may call in from now on), sysmon.
fn after_start() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        crate::start_satellites();
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
        crate::wire();
        Sched::new(config)
    });
    after_start();
    if fresh { Ok(s) } else { Err(&s.config) }
}
